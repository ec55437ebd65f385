"""The sampling-MPC rotation expert and the DAgger specialists distilled from it: planning
worlds that are exact copies of the worlds they plan for, targets inside the limits and the
rate limit, rotation in the commanded direction, and a student that the evaluation, the
generalist's distillation and PPO all read."""

import json

import numpy as np
import pytest
import torch

from training.envs import make_env
from training.envs.base import Randomization
from training.rl.mpc import MPCSettings, RotationMPC


def _env(tmp_path, **kw):
    over = dict(num_envs=2, nthread=1, seed=0, families=("cube",), per_family=1,
                grasps_base=3, grasps_rrt=20, grasp_cache=str(tmp_path / "g"))  # fmt: skip
    return make_env("rotate", **{**over, **kw})


def test_planning_worlds_are_copies_of_the_world_they_plan_for(tmp_path):
    # randomization on in the env (gains, masses, friction, forces): the planner must copy
    # all of it; with no sampling noise and a one-step horizon, every planning world of a
    # world ends where that world ends after the planned step
    env = _env(tmp_path, axes=("z+",))
    env.cfg.dr.action_noise = 0.0  # the env's own target noise is not the planner's to know
    mpc = RotationMPC(env, MPCSettings(samples=3, horizon=1, noise_rad=0.0, nthread=1))
    for _ in range(3):
        env.step_targets(env.target)  # some motion and a random force first
    # make the worlds differ in ways the planner must copy
    env.gravity[1] = env.gravity_goal[1] = [0.0, 1.0, 0.0]  # a turned wrist
    env._write_gravity(slice(None))
    env._fields["body_mass"][1, env.obj_body] *= 2.0
    env.backend.set_const(np.array([1]))
    mpc._sync_models(np.arange(env.num_envs))
    qpos_before = env.backend.state("qpos").copy()
    targets = mpc.plan()
    np.testing.assert_array_equal(env.backend.state("qpos"), qpos_before)  # env untouched
    env.cfg.dr.force_prob = 0.0  # keep this step's force as the planner held it
    env.cfg.dr.force_decay = 1.0
    env.step_targets(targets)
    q_env = env.backend.state("qpos")
    q_plan = mpc.plan_env.backend.state("qpos").reshape(env.num_envs, mpc.group, -1)
    for w in range(env.num_envs):
        for g in range(mpc.group):
            np.testing.assert_allclose(q_plan[w, g], q_env[w], atol=1e-9)


def test_targets_stay_inside_the_limits_and_the_rate_limit(tmp_path):
    env = _env(tmp_path, axes=("z+",))
    mpc = RotationMPC(env, MPCSettings(samples=6, horizon=2, noise_rad=1.0, nthread=1))
    for _ in range(5):
        prev = env.target.copy()
        t = mpc.plan()
        assert np.all(t >= env.lower - 1e-12) and np.all(t <= env.upper + 1e-12)
        assert np.all(np.abs(t - prev) <= env.max_step + 1e-9)
        env.step_targets(t)


@pytest.mark.parametrize("axis", ["z+", "z-"])
def test_the_expert_turns_the_cube_about_the_commanded_axis(tmp_path, axis):
    env = _env(tmp_path, axes=(axis,), dr=Randomization(enabled=False))
    mpc = RotationMPC(env, MPCSettings(samples=24, horizon=6, seed=1, nthread=1))
    rot = np.zeros(env.num_envs)
    for _ in range(30):  # 1.5 s
        env.step_targets(mpc.plan())
        rot += np.sum(env.last_omega * env.last_axis, axis=1) * env.dt
    assert not env.last_terminated.any()
    # holding the grasp turns it by a few hundredths of a radian at most
    assert rot.mean() > 0.3, rot


def test_dagger_writes_a_student_that_evaluation_distillation_and_ppo_read(tmp_path):
    from training.rl.distill import rotation_env_overrides, rotation_policy
    from training.rl.mpc_distill import DaggerSettings, train_dagger
    from training.rl.ppo import PPOSettings, train

    over = dict(families=("cube",), per_family=1, grasps_base=3, grasps_rrt=20,
                grasp_cache=str(tmp_path / "g"), axes=("z+",))  # fmt: skip
    s = DaggerSettings(
        worlds=2, rounds=2, steps=4, epochs=2, mpc=MPCSettings(samples=3, horizon=2, nthread=1)
    )
    out = tmp_path / "run"
    rep = train_dagger(out=out, env_overrides=over, settings=s, progress=False)
    assert [r["round"] for r in rep["rounds"]] == [1, 2]
    assert rep["rounds"][0]["expert_share"] == 1.0  # round 0: the expert drives
    assert rep["rounds"][1]["samples"] == 16
    assert all(np.isfinite(r["bc_loss"]) for r in rep["rounds"])
    # resumes: one more round on top of the saved data
    s.rounds = 3
    rep = train_dagger(out=out, env_overrides=over, settings=s, progress=False)
    assert len(rep["rounds"]) == 3 and rep["rounds"][2]["samples"] == 24
    assert json.loads((out / "report.json").read_text())["rounds"][2]["round"] == 3
    # the student as a rotate policy: delta actions at the rate limit, oracle observations
    env_over = rotation_env_overrides(out / "policy.pt")
    assert env_over["action_mode"] == "delta" and env_over["oracle"] is True
    env = _env(tmp_path, axes=("z+",), **env_over)
    assert env_over["action_scale_rad"] == pytest.approx(env.max_step)
    policy = rotation_policy(out / "policy.pt", env)
    a = policy(env.get_observations())
    assert a.shape == (2, env.n) and torch.isfinite(a).all()
    # PPO continues from the distilled actor (its training state at iteration 0)
    res = train(
        "rotate",
        scale="smoke",
        out=out,
        env_overrides={**over, **env_over, "num_envs": 2, "nthread": 1},
        settings=PPOSettings(iterations=1, steps_per_env=4, minibatches=1),
        progress=False,
        device="cpu",
    )
    assert res.iterations == 1


def test_the_picture_script_shows_the_expert(tmp_path, capsys):
    """bench/rotation_picture.py --mpc: the expert's episode, from a start set with --set."""
    import imageio.v2 as imageio

    from bench.rotation_picture import main as picture

    out = tmp_path / "mpc.png"
    assert picture(["--mpc", "samples=4", "horizon=2", "--set", "start=palm",
                    "--seconds", "0.5", "--frames", "3", "--out", str(out)]) == 0  # fmt: skip
    img = imageio.imread(out)
    assert img.shape[:2] == (360, 3 * 400)
    assert "3 frames" in capsys.readouterr().out
