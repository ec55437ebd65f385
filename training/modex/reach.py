"""The fingertip reach task (MoDex Sec. 3.1, Table 2) in MuJoCo, planned through learned models.

Each episode starts from the hand's default pose at rest and gives every fingertip its own
target. Targets are reachable by construction: the fingertips of a random joint
configuration the hand really takes (a random actuator target, held until the hand settles;
the settled joints' forward kinematics).

- **quasi-static**: one planning step with the quasi-static models (``T0 = 1``); the chosen
  action is held for ``settle_s`` from the reset, then the fingertips are measured.
- **sequential**: model-predictive control at 20 Hz for ``steps`` control periods (12:
  0.6 s, in which the rate limit lets every joint cross its whole range) with the
  sequential models: plan ``T0`` (2) actions from the measured fingertips, execute the first,
  replan. Every executed action is rate-limited exactly as in exploration and in the app's
  safety filter (at most the joint speed limit times the period from the previous target);
  the planners see the same limit in their predictions. The fingertips are measured at the
  end of the last period.

The reach error of an episode is the mean distance between the fingertips and their
targets (the paper's R.E.); an episode succeeds when *every* fingertip is within the
threshold of its own target (each finger has its own goal, so one finger far off is a
failure even if the others make the mean look good).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

from assets.physics import DEFAULT_PHYSICS
from controllers.modex.core import (
    OffsetObserver,
    ReachModels,
    limit_sequence,
    rate_limited,
    reach_error_cm,
    worst_finger_cm,
)
from controllers.modex.hand import ExplorationHand, exploration_hand, fingertips, initial_state
from controllers.modex.planners import (
    CEMPlanner,
    GradientPlanner,
    MoDexPlanner,
    Plan,
    RandomShooting,
    quasi_static_predict,
    reach_cost,
    sequential_predict,
)

METHODS = ("FM+RS", "FM+BGD", "FM+CEM", "MoDex")

# Planning budgets in samples per planning step, as in the paper's Table 2 (Allegro row):
# FM+RS 10k / 50k, FM+BGD 38.4k, FM+CEM 1.2k / 2.0k, MoDex 1.0k / 1.2k. How FM+CEM and MoDex
# spend theirs (samples x iterations, elites, beta) is each one's best on tuning episodes
# (Allegro, seed 1000; ``bench/modex_reach.py --tune``): both do best as plain CEM (beta 0)
# with many small iterations.
BUDGETS: dict[str, dict[str, dict[str, Any]]] = {
    "quasi-static": {
        "FM+RS": {"samples": 10_000},
        "FM+BGD": {"batch": 1280, "iterations": 29},  # 1280 x (29 + 1) = 38.4k
        "FM+CEM": {"samples": 100, "iterations": 12, "elites": 10, "beta": 0.0},  # 1.2k
        "MoDex": {"samples": 100, "iterations": 10, "elites": 5, "beta": 0.0},  # 1.0k
    },
    "sequential": {
        "FM+RS": {"samples": 50_000},
        "FM+BGD": {"batch": 1280, "iterations": 29},
        "FM+CEM": {"samples": 200, "iterations": 10, "elites": 10, "beta": 0.0},  # 2.0k
        "MoDex": {"samples": 100, "iterations": 12, "elites": 10, "beta": 0.0},  # 1.2k
    },
}


def make_planner(method: str, hand: ExplorationHand, models: ReachModels, *, seed: int,
                 horizon: int, budget: dict[str, int] | None = None) -> Any:  # fmt: skip
    """The planner ``method`` with the setting's budget (or ``budget``)."""
    kw = dict(budget or BUDGETS[models.setting][method])
    low, high = hand.ctrl_low, hand.ctrl_high
    if method == "FM+RS":
        return RandomShooting(low, high, horizon=horizon, seed=seed, **kw)
    if method == "FM+BGD":
        return GradientPlanner(low, high, horizon=horizon, seed=seed, **kw)
    if method == "FM+CEM":
        return CEMPlanner(low, high, horizon=horizon, seed=seed, **kw)
    if method == "MoDex":
        return MoDexPlanner(low, high, models.propose, horizon=horizon, seed=seed, **kw)
    raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")


class ReachTask:
    """Episodes of the reach task on ``hand`` in simulation."""

    def __init__(
        self,
        hand: str,
        *,
        settle_s: float = 0.5,
        steps: int = 12,
        offset_gain: float = 0.0,
        physics_model: str = DEFAULT_PHYSICS,
    ) -> None:
        """``steps``: control periods of a sequential episode; ``offset_gain``: its MPC's
        :class:`OffsetObserver` (0: plain MPC, the paper's protocol); ``physics_model``: the
        app's hands' physics (``assets.physics``)."""
        OffsetObserver(offset_gain)  # checks the gain
        self.offset_gain = offset_gain
        self.hand = exploration_hand(hand, physics_model)
        self.model = self.hand.model
        self.data = mujoco.MjData(self.model)
        self.state0 = initial_state(self.hand)
        self.settle_steps = round(settle_s / self.model.opt.timestep)
        self.steps = steps
        self.reset()
        self.tips0 = self.tips()

    def reset(self) -> None:
        mujoco.mj_resetData(self.model, self.data)  # also the solver's warm start and ctrl
        mujoco.mj_setState(self.model, self.data, self.state0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(self.model, self.data)

    def tips(self) -> np.ndarray:
        return fingertips(self.hand, self.data.sensordata.copy())

    def hold(self, action: np.ndarray, nstep: int) -> None:
        self.data.ctrl[:] = action
        mujoco.mj_step(self.model, self.data, nstep=nstep)
        mujoco.mj_forward(self.model, self.data)  # sensors of the final state

    def targets(self, n: int, seed: int) -> np.ndarray:
        """``n`` reachable fingertip targets (n, H): settled random configurations."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.hand.state_dim), dtype=np.float32)
        for i in range(n):
            self.reset()
            self.hold(rng.uniform(self.hand.ctrl_low, self.hand.ctrl_high), 2 * self.settle_steps)
            out[i] = self.tips()
        self.reset()
        return out

    def run_quasi_static(self, planner: Any, models: ReachModels, target: np.ndarray):
        goal = torch.as_tensor(target)
        self.reset()
        t0 = time.perf_counter()
        plan: Plan = planner.plan(
            torch.as_tensor(self.tips0), goal, quasi_static_predict(models.forward),
            reach_cost(goal),
        )  # fmt: skip
        ms = (time.perf_counter() - t0) * 1e3
        self.hold(plan.actions[0].numpy(), self.settle_steps)
        return self.tips(), [plan.samples], [ms]

    def run_sequential(self, planner: Any, models: ReachModels, target: np.ndarray):
        goal = torch.as_tensor(target)
        self.reset()
        previous = torch.as_tensor(self.hand.default_ctrl, dtype=torch.float32)
        observer = OffsetObserver(self.offset_gain)
        samples, times = [], []
        s_before = torch.as_tensor(self.tips())  # at rest: the period before is the same pose
        for _ in range(self.steps):
            s = torch.as_tensor(self.tips())
            base = sequential_predict(models.forward, s_before, previous)
            predict = rate_limited(base, previous, self.hand.max_step)
            aim = observer.aim(goal)
            t0 = time.perf_counter()
            plan: Plan = planner.plan(s, aim, predict, reach_cost(aim))
            times.append((time.perf_counter() - t0) * 1e3)
            samples.append(plan.samples)
            executed = limit_sequence(plan.actions[None, :1], previous, self.hand.max_step)[0, 0]
            self.hold(executed.numpy(), self.hand.substeps)
            previous, s_before = executed, s
            if observer.gain > 0:
                with torch.no_grad():
                    predicted = base(s, executed[None, None])[0, 0]
                observer.update(torch.as_tensor(self.tips()), predicted)
        return self.tips(), samples, times


@dataclass
class MethodResult:
    method: str
    success_rate: float
    reach_error_cm: float
    samples_per_step: float
    plan_ms_p50: float
    errors_cm: list[float] = field(default_factory=list)
    worst_cm: list[float] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "success_rate": self.success_rate,
            "reach_error_cm": self.reach_error_cm,
            "samples_per_step": self.samples_per_step,
            "plan_ms_p50": self.plan_ms_p50,
        }


def evaluate_reach(
    hand: str,
    setting: str,
    *,
    episodes: int = 100,
    seed: int = 0,
    methods: tuple[str, ...] = METHODS,
    threshold_cm: float = 1.0,
    horizon: int | None = None,
    root: str | Path | None = None,
    steps: int = 12,
    progress: Callable[[str, int, float], None] | None = None,
    budgets: dict[str, dict[str, Any]] | None = None,
    episodes_for: dict[str, int] | None = None,
    offset_gain: float = 0.0,
    physics_model: str = DEFAULT_PHYSICS,
) -> list[MethodResult]:
    """Run ``episodes`` reach episodes per method on the same targets; results per method.
    ``budgets``: planner settings per method instead of :data:`BUDGETS`; ``episodes_for``:
    fewer episodes (the first of the same targets) for some methods; ``offset_gain``: the
    sequential MPC's :class:`OffsetObserver` (0, plain MPC, is the paper's protocol);
    ``physics_model``: what the hand runs (models trained on other physics are refused)."""
    task = ReachTask(hand, steps=steps, offset_gain=offset_gain, physics_model=physics_model)
    models = ReachModels.load(hand, setting, root, physics=task.hand.physics())
    targets = task.targets(episodes, seed)
    quasi = setting == "quasi-static"
    t0 = 1 if quasi else (2 if horizon is None else horizon)
    if t0 < 1 or steps < 1 or episodes < 1:
        raise ValueError("horizon, steps and episodes must be >= 1")
    results = []
    for method in methods:
        budget = (budgets or {}).get(method)
        planner = make_planner(method, task.hand, models, seed=seed, horizon=t0, budget=budget)
        errors, worst, samples, times = [], [], [], []
        n = min(episodes, (episodes_for or {}).get(method, episodes))
        for i, target in enumerate(targets[:n]):
            run = task.run_quasi_static if quasi else task.run_sequential
            tips, used, ms = run(planner, models, target)
            errors.append(reach_error_cm(tips, target))
            worst.append(worst_finger_cm(tips, target))
            samples += used
            times += ms
            if progress is not None:
                progress(method, i, errors[-1])
        err = np.asarray(errors)
        results.append(
            MethodResult(
                method=method,
                success_rate=float(np.mean(np.asarray(worst) <= threshold_cm)),
                reach_error_cm=float(err.mean()),
                samples_per_step=float(np.mean(samples)),
                plan_ms_p50=float(np.median(times)),
                errors_cm=[round(float(e), 4) for e in err],
                worst_cm=[round(float(e), 4) for e in worst],
            )
        )
    return results


def cem_grid(setting: str, method: str) -> list[dict[str, Any]]:
    """CEM settings with the same samples per step as ``BUDGETS`` (samples x iterations
    kept), elites 5 % or 10 %, moving average ``beta`` 0 or 0.5."""
    base = BUDGETS[setting][method]
    total = base["samples"] * base["iterations"]
    out = []
    for iterations in (4, 5, 6, 8, 10, 12):
        if total % iterations:
            continue
        samples = total // iterations
        for frac in (0.05, 0.1):
            for beta in (0.0, 0.5):
                elites = max(2, round(frac * samples))
                out.append(dict(samples=samples, iterations=iterations, elites=elites, beta=beta))
    return out


def tune(
    hand: str, setting: str, method: str, *, episodes: int, seed: int = 1000, **kw: Any
) -> list[tuple[dict[str, Any], MethodResult]]:
    """Every :func:`cem_grid` setting of ``method`` on ``episodes`` tuning targets (a seed
    the benchmark does not use), best (lowest mean reach error) first."""
    rows = []
    for budget in cem_grid(setting, method):
        (res,) = evaluate_reach(hand, setting, episodes=episodes, seed=seed, methods=(method,),
                                budgets={method: budget}, **kw)  # fmt: skip
        rows.append((budget, res))
    return sorted(rows, key=lambda r: (r[1].reach_error_cm, -r[1].success_rate))
