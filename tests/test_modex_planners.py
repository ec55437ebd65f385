"""Planners over learned MoDex models: they reach model-reachable targets, count samples the
way the paper does, stay inside the action range; the inverse model's start helps CEM."""

import numpy as np
import pytest
import torch

from controllers.modex.planners import (
    CEMPlanner,
    GradientPlanner,
    MoDexPlanner,
    RandomShooting,
    quasi_static_predict,
    reach_cost,
    sequential_predict,
)
from training.modex.data import collect
from training.modex.train import TrainConfig, train_forward, train_qs_forward, train_qs_inverse

TC = TrainConfig(steps=600, hidden=(128, 128), seed=0)


@pytest.fixture(scope="module")
def qs_models():
    torch.set_num_threads(2)
    data = collect("allegro", "quasi-static", samples=800, seed=0)
    fwd, _ = train_qs_forward(data, TC)
    inv, _ = train_qs_inverse(data, TC)
    return data, fwd, inv


def targets(fwd, data, n=12, seed=1):
    """Targets the model can reach: its own prediction of random in-range actions."""
    rng = np.random.default_rng(seed)
    m = data["manifest"]
    from controllers.modex.hand import exploration_hand

    h = exploration_hand(m["hand"])
    a = torch.as_tensor(
        rng.uniform(h.ctrl_low, h.ctrl_high, (n, h.action_dim)), dtype=torch.float32
    )
    with torch.no_grad():
        return fwd(a), h


def test_all_planners_reach_and_count_samples(qs_models):
    data, fwd, inv = qs_models
    goals, h = targets(fwd, data)
    predict = quasi_static_predict(fwd)
    s0 = torch.zeros(12)

    def propose(s, target):
        with torch.no_grad():
            return inv(target[None])[0], inv.sigma

    planners = {
        "FM+RS": (RandomShooting(h.ctrl_low, h.ctrl_high, samples=2000), 2000),
        "FM+BGD": (GradientPlanner(h.ctrl_low, h.ctrl_high, batch=32, iterations=30), 32 * 31),
        "FM+CEM": (CEMPlanner(h.ctrl_low, h.ctrl_high, samples=200, iterations=5), 1000),
        "MoDex": (MoDexPlanner(h.ctrl_low, h.ctrl_high, propose, samples=200, iterations=5), 1000),
    }
    mean_pose = fwd(torch.as_tensor((h.ctrl_low + h.ctrl_high) / 2, dtype=torch.float32)[None])
    results = {}
    for name, (planner, budget) in planners.items():
        errs = []
        for g in goals:
            plan = planner.plan(s0, g, predict, reach_cost(g))
            assert plan.samples == budget, name
            assert plan.actions.shape == (1, 16)
            assert torch.all(plan.actions >= torch.as_tensor(h.ctrl_low) - 1e-6)
            assert torch.all(plan.actions <= torch.as_tensor(h.ctrl_high) + 1e-6)
            errs.append(plan.cost)
        results[name] = float(np.mean(errs))
    base = float(np.mean([reach_cost(g)(mean_pose[:, None]).item() for g in goals]))
    for name, err in results.items():
        assert err < 0.6 * base, (name, err, base)  # every planner beats the middle pose
    # the inverse model's start: MoDex at least as good as FM+CEM at the same budget
    assert results["MoDex"] <= results["FM+CEM"] * 1.05, results


def test_modex_needs_fewer_samples_than_cem_for_the_same_error(qs_models):
    data, fwd, inv = qs_models
    goals, h = targets(fwd, data, n=10, seed=2)
    predict = quasi_static_predict(fwd)

    def propose(s, target):
        with torch.no_grad():
            return inv(target[None])[0], inv.sigma

    small = MoDexPlanner(h.ctrl_low, h.ctrl_high, propose, samples=50, iterations=3, elites=8)
    big = CEMPlanner(h.ctrl_low, h.ctrl_high, samples=200, iterations=3, elites=8)
    e_small = np.mean([small.plan(None, g, predict, reach_cost(g)).cost for g in goals])
    e_big = np.mean([big.plan(None, g, predict, reach_cost(g)).cost for g in goals])
    assert e_small <= e_big * 1.1, (e_small, e_big)  # a quarter of the samples


def test_sequential_planning_with_a_horizon():
    data = collect("allegro", "sequential", samples=1200, steps=20, seed=0)
    fwd, _ = train_forward(data, TrainConfig(steps=300, hidden=(64, 64)))
    from controllers.modex.hand import exploration_hand

    h = exploration_hand("allegro")
    s0 = torch.as_tensor(data["tips"][0, 0])
    goal = torch.as_tensor(data["tips"][3, 5])
    planner = CEMPlanner(h.ctrl_low, h.ctrl_high, horizon=3, samples=100, iterations=4)
    plan = planner.plan(s0, goal, sequential_predict(fwd), reach_cost(goal, final_only=True))
    assert plan.actions.shape == (3, 16) and plan.samples == 400
    start = reach_cost(goal)(s0[None, None]).item()
    assert plan.cost < start


def test_a_passed_deadline_stops_cem_after_one_iteration(qs_models):
    import time

    data, fwd, _ = qs_models
    goals, h = targets(fwd, data, n=1, seed=3)
    predict = quasi_static_predict(fwd)

    def planner():  # the same seed: the same first iteration
        return CEMPlanner(h.ctrl_low, h.ctrl_high, samples=64, iterations=6, elites=8, seed=4)

    cost = reach_cost(goals[0])
    late = planner().plan(None, goals[0], predict, cost, deadline=time.perf_counter())
    assert late.samples == 64  # one iteration, however late
    full = planner().plan(None, goals[0], predict, cost, deadline=time.perf_counter() + 60)
    assert full.samples == 6 * 64 and full.cost < late.cost
