"""PPO (rsl-rl) runs and resumes; data generation writes a dataset the reader serves."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import torch

from teleop_app.cli import main
from training.datagen.dataset import FIELDS, DatasetReader, DatasetWriter
from training.datagen.generate import generate
from training.envs import make_env
from training.rl.ppo import Policy, train


def smoke_anygrasp(root, **kw):
    """A smoke-scale anygrasp env on one cube, grasps cached under ``root``."""
    over = dict(
        nthread=1, families=("cube",), grasps_base=3, grasps_rrt=20, grasp_cache=str(root / "g")
    )
    return make_env("anygrasp", **{**over, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl")
    res = train(
        "anygrasp",
        scale="smoke",
        out=root / "run",
        env_overrides={"grasp_cache": str(root / "g")},
        progress=False,
    )
    return root, res


def test_ppo_smoke_trains_saves_and_resumes(run):
    root, res = run
    assert res.iterations == 2 and res.env_steps == 2 * 8 * 8
    for k in ("reward", "goals_per_min", "loss_value", "loss_surrogate"):
        assert np.isfinite(res.curve[-1][k]), k
    out = root / "run"
    assert (out / "checkpoint.pt").is_file() and (out / "policy.pt").is_file()
    assert list((out / "tb").glob("events.out.tfevents.*"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "anygrasp" and cfg["env"]["num_envs"] == 8
    # resume: continue from iteration 2 to 3, keeping the curve
    from training.rl.ppo import scale_preset

    _, s = scale_preset("smoke", "anygrasp")
    s.iterations = 3
    res2 = train(
        "anygrasp",
        scale="smoke",
        out=out,
        env_overrides={"grasp_cache": str(root / "g")},
        settings=s,
        progress=False,
    )
    assert [r["iteration"] for r in res2.curve] == [1, 2, 3]
    assert res2.env_steps == 3 * 8 * 8


def test_resume_restores_the_trained_weights(tmp_path):
    """Resuming with no iterations left exports exactly the saved weights (not a fresh init)."""
    from training.rl.ppo import scale_preset

    kw = {"progress": False}
    train("free_finger", scale="smoke", out=tmp_path / "a", **kw)
    first = torch.load(tmp_path / "a" / "policy.pt", weights_only=False)["actor_state_dict"]
    _, s = scale_preset("smoke", "free_finger")
    s.iterations = 2  # already done: nothing to train
    train("free_finger", scale="smoke", out=tmp_path / "a", settings=s, **kw)
    again = torch.load(tmp_path / "a" / "policy.pt", weights_only=False)["actor_state_dict"]
    train(
        "free_finger",
        scale="smoke",
        out=tmp_path / "b",
        settings=dataclasses.replace(s, iterations=0),
        **kw,
    )
    fresh = torch.load(tmp_path / "b" / "policy.pt", weights_only=False)["actor_state_dict"]
    for k in first:
        torch.testing.assert_close(again[k], first[k])
    assert any(not torch.equal(fresh[k], first[k]) for k in first if k.startswith("mlp"))


def test_policy_loads_and_acts_and_bad_files_are_refused(run, tmp_path):
    root, _ = run
    env = smoke_anygrasp(root, num_envs=2)
    pol = Policy(root / "run" / "policy.pt", env)
    a = pol(env.get_observations())
    assert a.shape == (2, env.num_actions) and torch.isfinite(a).all()
    np.testing.assert_array_equal(a.numpy(), pol(env.get_observations()).numpy())  # deterministic
    bad = tmp_path / "p.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="cannot load policy"):
        Policy(bad, env)


def test_generated_dataset_loads_with_correct_shapes(run, tmp_path):
    root, _ = run
    env = smoke_anygrasp(root, num_envs=4, episode_s=1.5)
    pol = Policy(root / "run" / "policy.pt", env)
    counts = generate(env, pol, tmp_path / "ds", transitions=200, future=3, progress=False)
    r = DatasetReader(tmp_path / "ds", history=4, future=3)
    assert len(r) == counts["transitions"] >= 200
    assert counts["rows_kept"] > 0
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert m["meta"]["expert"] == "ppo" and m["meta"]["task"] == "anygrasp"
    assert m["counts"]["transitions"] == len(r)
    rng = np.random.default_rng(0)
    b = r.get(rng.choice(len(r), 32, replace=False))
    n = env.n
    assert b.keypoints.shape == (32, 4, 8, 3) and b.future_keypoints.shape == (32, 3, 8, 3)
    assert b.q.shape == b.prev_target.shape == b.control_error.shape == (32, 4, n)
    assert b.action.shape == (32, n) and b.gravity.shape == (32, 3)
    assert np.all(b.action >= env.lower - 1e-5) and np.all(b.action <= env.upper + 1e-5)


class Recorder:
    """Wraps a policy and logs, for world 0, what the env holds at every call: the state the
    generator records for that row, and the target sent on the previous step."""

    def __init__(self, env, policy, drop_at=None):
        self.env, self.policy, self.drop_at = env, policy, drop_at
        self.q, self.kp, self.sent, self.ends = [], [], [], []
        self.calls = 0

    def after_step(self):
        env = self.env
        self.sent.append(env.sent_target[0].copy())
        if env.last_done[0]:
            self.ends.append((self.calls, bool(env.last_terminated[0])))

    def __call__(self, obs):
        env = self.env
        if self.calls:
            self.after_step()
        self.q.append(env.q[0].copy())
        self.kp.append(env.keypoints()[0].copy())
        if self.calls == self.drop_at:  # the object leaves the hand during this step
            qpos = env.backend.state("qpos")
            qpos[0, env.obj_qadr : env.obj_qadr + 3] = env.palm_pos + np.array([0.0, 0.0, -0.4])
        self.calls += 1
        return self.policy(obs)


@pytest.mark.parametrize("drop_at", [None, 60])
def test_dataset_rows_are_the_simulated_steps(run, tmp_path, drop_at):
    """With one world, the first segment's rows are exactly the states the env went through
    and the targets it sent; an episode ending in a drop keeps all but its last 2 s."""
    root, _ = run
    env = smoke_anygrasp(root, num_envs=1, episode_s=5.0, seed=4)
    env.cfg.dr.force_scale = 0.0  # no random drops before the forced one
    rec = Recorder(env, Policy(root / "run" / "policy.pt", env), drop_at=drop_at)
    generate(env, rec, tmp_path / "ds", transitions=1, progress=False)
    rec.after_step()  # the last step (the generator stopped after it)
    ch = np.load(tmp_path / "ds" / "chunk_00000" / "segments.npy")
    start, length = ch[0]
    assert start == 0
    q = np.load(tmp_path / "ds" / "chunk_00000" / "q.npy")[:length]
    target = np.load(tmp_path / "ds" / "chunk_00000" / "target.npy")[:length]
    kp = np.load(tmp_path / "ds" / "chunk_00000" / "keypoints.npy")[:length]
    # the episodes world 0 went through: (first row, rows, dropped); the first one long
    # enough to keep (7 rows: 4 of history, 2 future, 1) is the dataset's first segment
    episodes, first = [], 0
    for end, dropped in rec.ends:
        episodes.append((first, end - first, dropped))
        first = end
    kept = [(s0, n - 40 if d else n, d, n) for s0, n, d in episodes if (n - 40 if d else n) >= 7]
    s0, keep, dropped, n = kept[0]
    assert length == keep  # a drop's last 2 s (40 rows) discarded
    if drop_at is not None:
        assert any(d for _, _, d in episodes[: episodes.index((s0, n, dropped)) + 1])
    else:
        assert n == 100 or dropped  # the 5 s timeout, or a drop
    np.testing.assert_allclose(q, np.array(rec.q[s0 : s0 + length]), atol=1e-6)
    np.testing.assert_allclose(kp, np.array(rec.kp[s0 : s0 + length]), atol=1e-6)
    np.testing.assert_allclose(target, np.array(rec.sent[s0 : s0 + length]), atol=1e-6)


def test_drop_filter_and_crash_safety(tmp_path):
    """Segments are whole episodes minus the last 2 s before a drop; a chunk folder left
    half-written by a crash is dropped on reopen, finished chunks stay."""
    w = DatasetWriter(tmp_path / "ds", chunk_rows=50)
    seg = {
        f: np.zeros(
            (30, 16)
            if f in ("q", "target")
            else (30, 8, 3)
            if f == "keypoints"
            else (30, 7)
            if f == "object"
            else (30, 3)
            if f == "gravity"
            else (30,)
        )
        for f in FIELDS
    }
    seg["q"][:, 0] = np.arange(30)
    w.add(seg)
    w.add(seg)  # 60 rows: one chunk flushed
    assert (tmp_path / "ds" / "chunk_00000").is_dir()
    os.makedirs(tmp_path / "ds" / "chunk_00001.tmp")  # a crash mid-chunk
    w2 = DatasetWriter(tmp_path / "ds")
    assert not (tmp_path / "ds" / "chunk_00001.tmp").exists()
    assert w2.rows == 60
    r = DatasetReader(tmp_path / "ds", history=4, future=2)
    assert len(r) == 2 * (30 - 4 - 2)
    assert r.get(np.array([0])).q[0, -1, 0] == 4  # the first transition has 4 rows behind it
    shutil.rmtree(tmp_path / "ds" / "chunk_00000")
    with pytest.raises(ValueError, match="unreadable"):
        DatasetReader(tmp_path / "ds")


def test_cli_trains_and_generates(tmp_path, capsys):
    g = str(tmp_path / "g")
    assert (
        main(
            [
                "train",
                "rl",
                "--task",
                "free_finger",
                "--scale",
                "smoke",
                "--out",
                str(tmp_path / "ff"),
            ]
        )
        == 0
    )
    assert (tmp_path / "ff" / "policy.pt").is_file()
    capsys.readouterr()
    rc = main(
        [
            "data",
            "generate",
            "--task",
            "free_finger",
            "--scale",
            "smoke",
            "--policy",
            str(tmp_path / "ff" / "policy.pt"),
            "--out",
            str(tmp_path / "ds"),
            "--transitions",
            "100",
            "--grasp-cache",
            g,
        ]
    )
    assert rc == 0
    assert len(DatasetReader(tmp_path / "ds")) >= 100
    # the scripted expert needs no policy; exploration is recorded in the manifest
    rc = main(["data", "generate", "--task", "free_finger", "--scale", "smoke", "--expert",
               "reference", "--explore", "0.1", "--goal-timeout", "0.7", "--out",
               str(tmp_path / "ref"), "--transitions", "100"])  # fmt: skip
    assert rc == 0
    meta = DatasetReader(tmp_path / "ref").manifest["meta"]
    assert meta["expert"] == "reference" and meta["explore_rad"] == 0.1
    assert meta["env"]["goal_timeout_s"] == 0.7
    assert (
        main(
            [
                "data",
                "generate",
                "--task",
                "free_finger",
                "--policy",
                str(tmp_path / "missing.pt"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        != 0
    )
    assert "no policy at" in capsys.readouterr().err


def test_evaluation_counts_one_episode_per_world_and_noise_hurts(run):
    """The eval harness: every world runs one episode (time to drop censored at the episode
    length); the noisy operator (the one DexGen's evaluation uses) drops objects sooner than
    the same policy without noise."""
    from training.rl.evaluate import evaluate, make_eval_env

    root, _ = run
    policy_path = root / "run" / "policy.pt"
    over = Policy.env_overrides(policy_path)
    assert over["action_mode"] == "reference"
    kw = dict(
        families=("cube",), grasps_base=3, grasps_rrt=20, grasp_cache=str(root / "g"), per_family=1
    )
    res = {}
    for noise in (0.0, 1.0):
        env = make_eval_env("leap", 12, 0, 2.0, nthread=1, **over, **kw)
        pol = Policy(policy_path, env)
        res[noise] = evaluate(env, pol, noise=noise, seed=0)
    clean, noisy = res[0.0], res[1.0]
    for r in (clean, noisy):
        assert r["episodes"] == 12 and r["episode_s"] == 2.0
        assert 0 < r["time_to_drop_s_mean"] <= 2.0 and r["goals_per_min"] >= 0
        assert sum(v["episodes"] for v in r["by_wrist"].values()) == 12
    assert noisy["time_to_drop_s_mean"] < clean["time_to_drop_s_mean"]


def test_free_finger_goals_are_replaced_when_not_reached_in_time():
    env = make_env("free_finger", num_envs=4, nthread=1, seed=3, goal_timeout_s=0.5)
    zeros = torch.zeros(4, env.num_actions)
    first = env.goal_tips.copy()
    for _ in range(12):  # 0.6 s: past the timeout, reached or not
        env.step(zeros)
    assert np.all(np.abs(env.goal_tips - first).max(axis=(1, 2)) > 1e-6)


def test_anygrasp_goal_timeout_walks_the_reference_expert_from_grasp_to_grasp(tmp_path):
    """With a goal timeout an unreached goal is replaced by a grasp near it, so the scripted
    expert's targets (the goal grasp's) change; without one (training) the goal stays."""
    moved = {}
    for timeout in (None, 0.5):
        env = smoke_anygrasp(tmp_path, num_envs=4, seed=3, goal_timeout_s=timeout)
        env.reset()
        zeros = torch.zeros(4, env.num_actions)
        first_idx, first = env.goal_idx.copy(), env.reference_targets().copy()
        reached, done = np.zeros(4, bool), np.zeros(4, bool)
        for _ in range(12):  # 0.6 s
            env.step(zeros)
            reached |= env.last_reached
            done |= env.last_done
        keep = ~reached & ~done
        changed = (env.goal_idx != first_idx) | (
            np.abs(env.reference_targets() - first).max(axis=1) > 1e-9
        )
        moved[timeout] = (changed[keep], keep)
    assert moved[0.5][1].any() and moved[0.5][0].all()
    assert moved[None][1].any() and not moved[None][0].any()


def _target_spread(env, explorer, steps):
    zeros = torch.zeros(env.num_envs, env.num_actions)
    start, dev = env.target.copy(), []
    for _ in range(steps):
        explorer.step(zeros)
        dev.append(env.target - start)
    # each joint's spread over time (second half), averaged over joints and worlds
    return float(np.std(np.array(dev)[steps // 2 :], axis=0).mean())


@pytest.mark.parametrize("mode", ["delta", "reference"])
def test_exploration_offsets_move_the_targets_and_stay_bounded(mode):
    from training.datagen.generate import Explorer

    kw = dict(num_envs=6, nthread=1, seed=0, episode_s=60.0, action_mode=mode)
    # reference mode heads for a fixed goal (no timeout) so that the offset alone moves it
    if mode == "reference":
        kw["goal_timeout_s"] = 1e9
    # no spread: exactly the env's own step
    plain, off = make_env("free_finger", **kw), make_env("free_finger", **kw)
    a = torch.full((6, plain.num_actions), 0.3)
    for _ in range(5):
        plain.step(a)
        Explorer(off, 0.0, 0.5).step(a)
    np.testing.assert_array_equal(plain.target, off.target)
    env = make_env("free_finger", **kw)
    ex = Explorer(env, 0.1, 0.5, seed=1)
    ex.scale[:] = 0.1  # every world at the full spread
    # 20 s = 40 time constants: an offset integrated without mean reversion would spread to
    # 0.1 * sqrt(2 * 0.05 / 0.5) * sqrt(400) ~ 0.9 rad; the process stays near its 0.1 rad
    spread = _target_spread(env, ex, 400)
    assert 0.03 < spread < 0.2, spread


def test_exploration_widens_the_motion_in_the_data(tmp_path):
    def motion(explore):
        env = smoke_anygrasp(tmp_path, num_envs=6, episode_s=2.0, seed=0)
        zero = lambda obs: torch.zeros(6, env.num_actions)  # noqa: E731
        generate(env, zero, tmp_path / f"ds{explore}", transitions=600, progress=False,
                 explore_rad=explore)  # fmt: skip
        r = DatasetReader(tmp_path / f"ds{explore}")
        b = r.get(np.arange(len(r)))
        assert r.manifest["meta"]["explore_rad"] == explore
        return np.median(np.abs(b.action - b.prev_target[:, -1]))

    assert motion(0.2) > 3 * motion(0.0)
    # the data-motion bench tells the two datasets apart the same way
    from bench.data_motion import main as data_motion

    out = tmp_path / "motion.json"
    assert data_motion([str(tmp_path / "ds0.0"), str(tmp_path / "ds0.2"), "--json", str(out)]) == 0
    calm, explored = json.loads(out.read_text())
    assert explored["target_mrad_p50"] > 3 * calm["target_mrad_p50"]
    assert explored["keypoint_mm_p90"] > calm["keypoint_mm_p90"]
    assert calm["samples"] == calm["transitions"] >= 600


def test_several_datasets_read_as_one(tmp_path):
    env = make_env("free_finger", num_envs=4, nthread=1, seed=0, episode_s=1.0)
    zero = lambda obs: torch.zeros(4, env.num_actions)  # noqa: E731
    generate(env, zero, tmp_path / "a", transitions=200, progress=False)
    generate(env, zero, tmp_path / "b", transitions=300, progress=False)
    a, b = DatasetReader(tmp_path / "a"), DatasetReader(tmp_path / "b")
    both = DatasetReader([tmp_path / "a", tmp_path / "b"])
    assert len(both) == len(a) + len(b) and both.parts == [(0, len(a)), (len(a), len(both))]
    assert both.rows == a.manifest["rows"] + b.manifest["rows"]
    np.testing.assert_array_equal(both.get(np.array([len(a) + 5])).q, b.get(np.array([5])).q)
    train_idx, val = both.split(0.1)
    assert len(train_idx) + len(val) == len(both) and not set(train_idx) & set(val)
    # both folders validate on their own tails
    assert val.min() < len(a) <= val.max()
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    m["meta"]["hand"] = "allegro"
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="different hands"):
        DatasetReader([tmp_path / "a", tmp_path / "c"])


def test_a_new_policy_starts_at_zero_actions_which_hold_in_delta_mode(tmp_path):
    import copy

    from rsl_rl.algorithms import PPO

    from training.rl.ppo import rsl_config, scale_preset, zero_action_head

    env = smoke_anygrasp(tmp_path, num_envs=3, action_mode="delta")
    _, s = scale_preset("smoke", "anygrasp")
    alg = PPO.construct_algorithm(env.get_observations(), env, copy.deepcopy(rsl_config(s)), "cpu")
    actor = alg.get_policy()
    zero_action_head(actor)
    with torch.inference_mode():
        a = actor(env.get_observations())
    assert torch.count_nonzero(a) == 0
    before = env.target.copy()
    env.step(a)
    np.testing.assert_allclose(env.target, before)  # delta mode: a = 0 holds the targets


def test_held_only_reads_the_episodes_that_ran_to_the_timeout(tmp_path):
    """1 s episodes at 20 Hz: 20-row segments ran to the timeout, shorter ones dropped."""
    env = {"episode_s": 1.0}
    w = DatasetWriter(tmp_path / "ds", meta={"env": env, "rate_hz": 20.0})
    shapes = {"q": (16,), "target": (16,), "keypoints": (8, 3), "object": (7,), "gravity": (3,)}
    for n, tag in ((20, 1.0), (12, 2.0), (20, 3.0), (8, 4.0)):
        seg = {f: np.zeros((n, *shapes.get(f, ()))) for f in FIELDS}
        seg["q"][:, 0] = tag
        w.add(seg)
    w.close()
    every = DatasetReader(tmp_path / "ds")
    held = DatasetReader(tmp_path / "ds", held_only=True)
    assert len(every) == 14 + 6 + 14 + 2 and len(held) == 2 * 14
    assert set(held.get(np.arange(len(held))).q[:, -1, 0]) == {1.0, 3.0}
    bare = DatasetWriter(tmp_path / "bare")  # a dataset without the episode length
    bare.add({f: np.zeros((20, *shapes.get(f, ()))) for f in FIELDS})
    bare.close()
    with pytest.raises(ValueError, match="episode length"):
        DatasetReader(tmp_path / "bare", held_only=True)


def test_eval_bench_runs_the_scripted_expert_with_a_goal_timeout(tmp_path):
    """`bench/anygrasp_eval.py --reference` evaluates the scripted expert (no policy file)
    and records the goal timeout; asking for two baselines at once is an error."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "anygrasp_eval.py"
    spec = importlib.util.spec_from_file_location("anygrasp_eval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "ref.json"
    argv = ["--episodes", "3", "--episode-s", "0.5", "--threads", "1", "--reference"]
    assert mod.main([*argv, "--goal-timeout", "0.2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["episodes"] == 3 and res["goal_timeout_s"] == 0.2
    assert res["policy"].startswith("reference") and 0 < res["time_to_drop_s_mean"] <= 0.5
    with pytest.raises(SystemExit):
        mod.main([*argv, "--zero"])
