"""PPO (rsl-rl) runs and resumes; data generation writes a dataset the reader serves."""

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


def test_policy_loads_and_acts_and_bad_files_are_refused(run, tmp_path):
    root, _ = run
    env = make_env(
        "anygrasp",
        num_envs=2,
        nthread=1,
        families=("cube",),
        grasps_base=3,
        grasps_rrt=20,
        grasp_cache=str(root / "g"),
    )
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
    env = make_env(
        "anygrasp",
        num_envs=4,
        nthread=1,
        families=("cube",),
        grasps_base=3,
        grasps_rrt=20,
        grasp_cache=str(root / "g"),
        episode_s=1.5,
    )
    pol = Policy(root / "run" / "policy.pt", env)
    counts = generate(env, pol, tmp_path / "ds", transitions=200, future=3, progress=False)
    r = DatasetReader(tmp_path / "ds", history=4, future=3)
    assert len(r) == counts["transitions"] >= 200
    assert counts["rows_kept"] + counts["rows_discarded"] >= counts["rows_kept"] > 0
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
    np.testing.assert_allclose(b.control_error, b.prev_target - b.q, atol=1e-6)
    # transitions are consecutive rows: the next one's newest keypoints are this one's first future
    i = np.arange(len(r) - 1)
    same = (r.index[i, 0] == r.index[i + 1, 0]) & (r.index[i + 1, 1] == r.index[i, 1] + 1)
    k = i[same][:20]
    a, c = r.get(k), r.get(k + 1)
    np.testing.assert_array_equal(a.future_keypoints[:, 0], c.keypoints[:, -1])
    np.testing.assert_array_equal(a.action, c.prev_target[:, -1])


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
