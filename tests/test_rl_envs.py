"""Parallel hand environments: every task on every hand resets and steps cleanly (smoke)."""

import numpy as np
import pytest
import torch

from training.envs import TASKS, make_config, make_env

HANDS = ("leap", "allegro")
#: tasks with objects: one family and a small grasp cache in the test's own folder (never
#: the repository's out/grasps); the full grasp counts are the grasp tests' business
GRASP_SMOKE = {"families": ("cube",), "grasps_base": 3, "grasps_rrt": 20}
SMOKE = {"anygrasp": GRASP_SMOKE, "rotate": GRASP_SMOKE}


@pytest.fixture(scope="module")
def grasp_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("grasps"))


def smoke_env(task, hand, grasp_cache, **kw):
    over = dict(SMOKE.get(task, {}))
    if task in SMOKE:
        over["grasp_cache"] = grasp_cache
    over.update({"num_envs": 4, "nthread": 1, **kw})
    return make_env(task, hand=hand, **over)


@pytest.mark.parametrize("hand", HANDS)
@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_creates_resets_and_steps(task, hand, grasp_cache):
    env = smoke_env(task, hand, grasp_cache, episode_s=0.5)
    obs = env.get_observations()
    assert obs["policy"].shape[0] == env.num_envs == 4
    assert obs["critic"].shape[1] > obs["policy"].shape[1]  # the critic sees more
    lo, hi = env.lower, env.upper
    gen = torch.Generator().manual_seed(0)
    ended = np.zeros(4, bool)
    for _ in range(14):  # past the 10-step episode: auto reset
        prev = env.target.copy()
        obs, rew, done, extras = env.step(torch.randn(4, env.num_actions, generator=gen) * 3)
        for t in (obs["policy"], obs["critic"], rew):
            assert torch.isfinite(t).all()
        assert rew.shape == (4,) and done.shape == (4,)
        sent = env.sent_target
        assert np.all(sent >= lo - 1e-12) and np.all(sent <= hi + 1e-12)
        assert np.all(np.abs(sent - prev) <= env.max_step + 1e-9)
        assert not np.any(extras["time_outs"].numpy() & env.last_terminated)
        ended |= env.last_done
    assert ended.all()  # every world ended an episode (a drop or the timeout) and restarted


def test_bad_actions_never_reach_the_hand(grasp_cache):
    env = smoke_env("free_finger", "leap", grasp_cache)
    prev = env.target.copy()
    a = torch.full((4, env.num_actions), float("nan"))
    a[0] = float("inf")
    obs, rew, _, _ = env.step(a)
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all()
    assert np.all(np.abs(env.sent_target - prev) <= env.max_step + 1e-9)


def test_same_seed_same_rollout_any_thread_count(grasp_cache):
    runs = []
    for nthread in (1, 2):
        env = make_env(
            "anygrasp",
            hand="leap",
            num_envs=6,
            nthread=nthread,
            seed=5,
            grasp_cache=grasp_cache,
            **SMOKE["anygrasp"],
        )
        gen = torch.Generator().manual_seed(1)
        for _ in range(6):
            obs, *_ = env.step(torch.randn(6, env.num_actions, generator=gen))
        runs.append(obs["critic"].numpy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_randomization_and_gravity_drift(grasp_cache):
    env = smoke_env("anygrasp", "leap", grasp_cache, num_envs=8)
    kp = env.backend.model_field("actuator_gainprm")[:, env.act, 0]
    assert np.unique(kp.round(6)).size > env.n  # per world and joint
    assert np.all(kp >= env.kp0 * 0.8 - 1e-9) and np.all(kp <= env.kp0 * 1.2 + 1e-9)
    g0 = env.gravity.copy()
    goal0, rate0 = env.gravity_goal.copy(), env.gravity_rate.copy()
    restarted = np.zeros(8, bool)
    for _ in range(10):
        env.step(torch.zeros(8, env.num_actions))
        restarted |= env.last_done
    turned = np.arccos(np.clip(np.sum(env.gravity * g0, axis=1), -1, 1))
    alive = ~restarted
    assert alive.sum() >= 4
    # the wrist turns toward its goal direction at its rate (10 steps = 0.5 s, shorter than
    # the 1 s before a new goal), along a great circle; gravity in the model follows
    to_goal = np.arccos(np.clip(np.sum(g0 * goal0, axis=1), -1, 1))
    np.testing.assert_allclose(turned[alive], np.minimum(rate0 * 0.5, to_goal)[alive], atol=1e-6)
    assert turned[alive].max() > 0.05
    np.testing.assert_allclose(env.backend.model_field("opt.gravity"), 9.81 * env.gravity)
    masses = env.backend.model_field("body_mass")[:, env.obj_body]
    assert np.unique(masses.round(9)).size > 1


def test_a_drop_ends_the_episode_and_resets_the_world(grasp_cache):
    env = smoke_env("anygrasp", "leap", grasp_cache, num_envs=3)
    qpos = env.backend.state("qpos")
    qpos[1, env.obj_qadr : env.obj_qadr + 3] = env.palm_pos + np.array([0.0, 0.0, -0.4])  # fell
    env.backend.forward(np.arange(3))
    _, rew, done, extras = env.step(torch.zeros(3, env.num_actions))
    assert done[1] == 1 and env.last_terminated[1] and not bool(extras["time_outs"][1])
    assert rew[1] < -10  # the drop penalty
    assert int(env.episode_length_buf[1]) == 0
    assert not env.dropped()[1]  # back in a cached grasp


def test_unknown_task_settings_are_named():
    with pytest.raises(ValueError, match="unknown anygrasp settings"):
        make_config("anygrasp", num_worlds=3)
    with pytest.raises(KeyError, match="known"):
        make_env("juggling")
