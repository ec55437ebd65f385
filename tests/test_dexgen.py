"""DexGen: the guided sampler's properties, checkpoints, training (single process, resumed,
and DDP over two gloo processes), the batched assistant and the ``dexgen`` controller in a
session on the simulated LEAP hand."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from controllers import CONTROLLERS, ControllerUnavailable
from controllers.dexgen import DexGenController
from controllers.dexgen.models import (
    SIZES,
    CheckpointError,
    DexGenConfig,
    DexGenModel,
    load_model,
    state_features,
)
from controllers.dexgen.sampler import GuidedSampler, History, ddim_scheduler
from training.datagen.dataset import DatasetReader
from training.datagen.generate import generate
from training.dexgen.train import SCALES, load_batch, train
from training.envs import make_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


class HoldPolicy:
    """Zero actions: in the reference action mode, head for each goal grasp's targets."""

    def __init__(self, env):
        self.n = env.n

    def __call__(self, obs):
        return torch.zeros(obs["policy"].shape[0], self.n)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dexgen")
    env = make_env(
        "anygrasp", num_envs=6, nthread=2, families=("cube",), grasps_base=3, grasps_rrt=20,
        grasp_cache=str(root / "g"), episode_s=2.0, seed=0,
    )  # fmt: skip
    generate(env, HoldPolicy(env), root / "ds", transitions=1500, progress=False)
    return root, env


@pytest.fixture(scope="module")
def trained(data):
    root, _ = data
    res = train(root / "ds", root / "run", settings=SCALES["smoke"], progress=False)
    return root, res


def smoke_model(seed=0):
    torch.manual_seed(seed)
    m = DexGenModel(DexGenConfig(**SIZES["smoke"])).eval()
    m.motion_norm.std.fill_(0.002)  # millimetre motions, as in the data
    return m


def test_sample_shapes_and_determinism():
    m = smoke_model()
    s = GuidedSampler(m, steps=8)
    state = np.random.default_rng(0).normal(size=(5, m.config.state_dim))
    a = s.sample(state, generator=torch.Generator().manual_seed(3))
    b = s.sample(state, generator=torch.Generator().manual_seed(3))
    c = s.sample(state, generator=torch.Generator().manual_seed(4))
    assert a.motion.shape == (5, m.config.horizon, 8, 3) and a.motion_n.shape == (5, 48)
    assert torch.equal(a.motion, b.motion)
    assert not torch.allclose(a.motion, c.motion)
    tg = s.targets(state, a.motion, np.zeros((5, 16)))
    assert tg.shape == (5, 16) and torch.isfinite(tg).all()


def test_unguided_sampler_is_diffusers_ddim_and_alpha_zero_reproduces_it():
    m = smoke_model()
    s = GuidedSampler(m, steps=10)
    state = np.random.default_rng(1).normal(size=(4, m.config.state_dim)).astype(np.float32)
    cmd = np.random.default_rng(2).normal(scale=0.01, size=(4, 8, 3))
    plain = s.sample(state, generator=torch.Generator().manual_seed(0))
    zero = s.sample(state, command=cmd, guidance=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain.motion, zero.motion)  # exactly, not approximately
    # the same loop through diffusers' own DDIMScheduler.step
    sched = ddim_scheduler(m.config.train_timesteps, m.config.beta_schedule, 10)
    with torch.no_grad():
        state_n = m.state_norm(torch.as_tensor(state))
        cond = m.condition(state_n, torch.nn.functional.one_hot(torch.zeros(4).long(), 2).float())
        x = torch.randn(4, 48, generator=torch.Generator().manual_seed(0))
        for t in sched.timesteps:
            x = sched.step(m.eps(x, t.expand(4), cond), t, x).prev_sample
    torch.testing.assert_close(plain.motion_n, x, rtol=1e-4, atol=1e-5)
    assert sched.config.clip_sample  # the clean estimate is clipped, in both


def test_guidance_pulls_samples_toward_the_command_and_more_with_larger_alpha():
    m = smoke_model()
    s = GuidedSampler(m, steps=10)
    rng = np.random.default_rng(0)
    state = rng.normal(size=(64, m.config.state_dim))
    cmd = rng.normal(scale=0.004, size=(64, 8, 3))
    dist = []
    for alpha in (0.0, 0.2, 0.5, 1.0):
        gen = torch.Generator().manual_seed(0)
        smp = s.sample(state, command=cmd, guidance=alpha, generator=gen)
        dist.append(float(smp.dist.mean()))
    assert dist[0] > dist[1] > dist[2] > dist[3]
    assert dist[3] < 0.1 * dist[0]
    with pytest.raises(ValueError, match="guidance"):
        s.sample(state, command=cmd, guidance=1.5)
    with pytest.raises(ValueError, match="guidance"):
        s.sample(state, command=cmd, guidance=float("nan"))


def test_bfloat16_sampler_agrees_with_float32():
    m = smoke_model()
    state = np.random.default_rng(0).normal(size=(8, m.config.state_dim))
    a = GuidedSampler(m).sample(state, generator=torch.Generator().manual_seed(0))
    b = GuidedSampler(m, dtype=torch.bfloat16).sample(
        state, generator=torch.Generator().manual_seed(0)
    )
    scale = a.motion.abs().mean()
    assert (a.motion - b.motion).abs().mean() < 0.05 * scale


def test_history_fills_on_start_and_rolls():
    h = History(2, 3, 2)
    kp = np.ones((2, 8, 3))
    h.push(kp, np.array([[1.0, 1.0], [2.0, 2.0]]), np.zeros((2, 2)))
    assert np.all(h.q[0] == 1.0) and np.all(h.q[1] == 2.0)
    h.push(kp[:1], np.array([[5.0, 5.0]]), np.zeros((1, 2)), ids=[0])
    assert h.q[0, :, 0].tolist() == [1.0, 1.0, 5.0] and np.all(h.q[1] == 2.0)
    h.restart([0])
    h.push(kp[:1], np.array([[7.0, 7.0]]), np.zeros((1, 2)), ids=[0])
    assert np.all(h.q[0] == 7.0)
    f = h.features()
    assert f.shape == (2, 3 * (24 + 3 * 2))


def test_dataset_batches_match_the_reader(data):
    root, _ = data
    r = DatasetReader(root / "ds", history=4, future=2)
    idx = np.array([5, 0, 17])
    b = load_batch(r, idx)
    raw = r.get(np.sort(idx))
    np.testing.assert_allclose(
        b.motion.numpy().reshape(3, 2, 8, 3), raw.future_keypoints - raw.keypoints[:, -1:]
    )
    np.testing.assert_allclose(b.dact.numpy(), raw.action - raw.prev_target[:, -1], atol=1e-7)
    np.testing.assert_allclose(
        b.state.numpy(), state_features(raw.keypoints, raw.q, raw.prev_target)
    )


def test_forward_kinematics_matches_the_simulated_keypoints(data):
    """The assistant's command space: pinocchio FK of the simulated joint angles gives the
    keypoints the environment (and the dataset) reports."""
    from devices.retargeting.kinematics import hand_kinematics

    _, env = data
    kin = hand_kinematics("leap")
    kp = env.keypoints()
    for i, q in enumerate(env.q):
        np.testing.assert_allclose(kin.keypoints(q), kp[i], atol=1e-6)


def test_training_lowers_the_losses_saves_and_resumes(trained, data):
    root, res = trained
    rep = res.report
    assert res.steps == SCALES["smoke"].steps
    curve = rep["curve"]
    assert curve[-1]["diffusion"] < curve[0]["diffusion"]
    assert curve[-1]["inverse_nll"] < curve[0]["inverse_nll"]
    assert rep["modes"] == ["anygrasp"] and rep["world_size"] == 1
    model, meta = load_model(res.checkpoint, hand="leap")
    assert meta["step"] == res.steps and meta["modes"] == ["anygrasp"]
    # the normalisers came from the data
    r = DatasetReader(root / "ds")
    b = load_batch(r, np.arange(len(r)))
    np.testing.assert_allclose(model.motion_norm.mean.numpy(), b.motion.numpy().mean(0), atol=2e-4)
    # resume: 10 more steps continue from the saved state
    s = dataclasses.replace(SCALES["smoke"], steps=SCALES["smoke"].steps + 10)
    more = train(root / "ds", root / "run", settings=s, progress=False)
    assert more.steps == s.steps
    assert [c["step"] for c in more.report["curve"]][: len(curve)] == [c["step"] for c in curve]


def test_checkpoint_round_trip_and_bad_files(trained, tmp_path):
    _, res = trained
    model, meta = load_model(res.checkpoint)
    path = model.save(tmp_path / "copy.pt", **meta)
    again, _ = load_model(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    state = np.random.default_rng(0).normal(size=(3, model.config.state_dim))
    x = GuidedSampler(model).sample(state, generator=torch.Generator().manual_seed(1))
    y = GuidedSampler(again).sample(state, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x.motion, y.motion)
    with pytest.raises(CheckpointError, match="allegro"):
        load_model(path, hand="allegro")
    with pytest.raises(CheckpointError, match="no DexGen checkpoint"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(bad)
    raw = torch.load(path, weights_only=True)
    raw["state"]["unet.out.bias"][0] = float("nan")
    torch.save(raw, bad)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_model(bad)
    raw = torch.load(path, weights_only=True)
    raw["config"]["unet_width"] = 32
    torch.save(raw, bad)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(bad)


def test_ddp_over_two_gloo_processes(data, tmp_path):
    root, _ = data
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training.dexgen.train", "--data", str(root / "ds"), "--scale", "smoke",
        "--steps", "6", "--device", "cpu", "--out", str(tmp_path / "ddp"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads((tmp_path / "ddp" / "report.json").read_text())
    assert rep["world_size"] == 2 and rep["step"] == 6
    a, b = rep["rank_checksums"]
    assert a == pytest.approx(b, rel=1e-9, abs=1e-9)  # the same weights in both processes
    load_model(tmp_path / "ddp" / "dexgen.pt")


def test_assistant_runs_batched_in_the_environment(trained, data):
    from training.dexgen.assist import Assistant

    _, res = trained
    _, env = data
    model, _ = load_model(res.checkpoint)
    a = Assistant(model, "leap", env.num_envs, guidance=0.5)
    env.reset()
    for _ in range(5):
        op = env.target + 0.05
        out = a(env, op)
        assert out.shape == op.shape and np.all(np.isfinite(out))
        env.step_targets(out)
    s = a.summary()
    assert np.isfinite(s["intervention_mm_mean"]) and a.samples == 3  # every 2nd step


# -- the controller --------------------------------------------------------------------


def run_session(ticks, changes=None, **options):
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    cfg = session_config(
        hand="leap", device="replay", controller="dexgen", controller_options=options, fast=True
    )
    session = Session(cfg)
    records = []
    session.subscribe(records.append)
    with session:
        if changes is not None:
            session.run(ticks=ticks // 2)
            future = session.update_controller(**changes)  # applied at the next tick
            session.run(ticks=ticks - ticks // 2)
            future.result(timeout=10)
        else:
            session.run(ticks=ticks)
    return records


def test_controller_registered_and_missing_model_reported(tmp_path, monkeypatch):
    import controllers.dexgen.models as dcli

    assert "dexgen" in CONTROLLERS.names()
    monkeypatch.setattr(dcli, "SHIPPED", tmp_path)
    reason = DexGenController.availability("leap")
    assert reason and "dexteleop train dexgen --hand leap" in reason
    with pytest.raises(ControllerUnavailable, match="no DexGen checkpoint"):
        CONTROLLERS.make("dexgen", hand="leap")


def test_controller_in_a_session_stays_safe_and_reports(trained):
    from assets.hands import load_hand

    _, res = trained
    hand = load_hand("leap")
    records = run_session(40, changes={"guidance": 1.0, "ddim_steps": 4},
                          checkpoint=str(res.checkpoint))  # fmt: skip
    active = [r for r in records if r.info.get("holding") == 0.0]
    assert len(active) > 20
    max_step = hand.spec.max_joint_speed_rad_s / 20.0
    prev = None
    for r in records:
        assert np.all(r.sent >= hand.lower - 1e-9) and np.all(r.sent <= hand.upper + 1e-9)
        if prev is not None:
            assert np.all(np.abs(r.sent - prev) <= max_step + 1e-9)
        prev = r.sent
    for r in active:
        assert np.isfinite(r.info["guidance_dist_mm"]) and np.isfinite(r.info["intervention_mm"])
        assert np.all(np.isfinite(r.target))
    assert {r.settings["guidance"] for r in active} == {0.5, 1.0}
    sampled = [r for r in active if "sample_ms" in r.info]
    assert 0.4 * len(active) <= len(sampled) <= 0.6 * len(active) + 2  # 10 Hz at 20 Hz


def test_controller_refuses_modes_without_data_and_holds_on_bad_state(trained):
    from devices.tick import Command, HandState

    _, res = trained
    ctl = CONTROLLERS.make("dexgen", hand="leap", checkpoint=str(res.checkpoint))
    with pytest.raises(ValueError, match="no free_finger data"):
        ctl.update(mode="free_finger")
    with pytest.raises(ValueError):
        ctl.update(guidance=2.0)
    n = ctl.hand.n_joints
    kp = np.zeros((8, 3))
    st = HandState(t=0.0, q=np.zeros(n), dq=np.zeros(n), target=np.zeros(n), keypoints=kp,
                   wrist=np.eye(4))  # fmt: skip
    bad = HandState(t=0.0, q=np.full(n, np.nan), dq=np.zeros(n), target=np.zeros(n),
                    keypoints=kp, wrist=np.eye(4))  # fmt: skip
    ctl.reset(st)
    out, info = ctl.step(bad, Command(t=0.0, keypoints=kp))
    assert info["holding"] == 1.0 and np.array_equal(out, bad.target)
    out, info = ctl.step(st, Command(t=0.0, keypoints=None))
    assert info["holding"] == 1.0
    out, info = ctl.step(st, Command(t=0.0, keypoints=np.full((8, 3), np.nan)))
    assert info["holding"] == 1.0 and info["reason"] == "bad keypoint command"


def test_controller_runs_in_bfloat16_close_to_float32(trained):
    """precision=bfloat16 (the paper-size latency option): the same ticks give targets near
    the float32 controller's; an unknown precision is refused."""
    from devices.tick import Command, HandState

    _, res = trained
    outs = {}
    for precision in ("float32", "bfloat16"):
        ctl = CONTROLLERS.make("dexgen", hand="leap", checkpoint=str(res.checkpoint),
                               precision=precision, guidance=0.5)  # fmt: skip
        n = ctl.hand.n_joints
        q = 0.5 * (ctl.hand.lower + ctl.hand.upper)
        kp = ctl.hand.keypoints(q)
        st = HandState(t=0.0, q=q, dq=np.zeros(n), target=q, keypoints=kp, wrist=np.eye(4))
        ctl.reset(st)
        outs[precision], info = ctl.step(st, Command(t=0.0, keypoints=kp + 0.005))
        assert info["holding"] == 0.0 and np.all(np.isfinite(outs[precision]))
    step = np.abs(outs["float32"] - q).max()  # how far the controller moved the target
    assert step > 1e-4
    assert np.abs(outs["bfloat16"] - outs["float32"]).max() <= 0.1 * step
    with pytest.raises(ValueError, match="precision"):
        CONTROLLERS.make("dexgen", hand="leap", checkpoint=str(res.checkpoint), precision="fp8")


def test_future_horizon_is_configurable(data, tmp_path):
    root, _ = data
    s = dataclasses.replace(SCALES["smoke"], steps=4, horizon=3, val_every=4, save_every=4)
    res = train(root / "ds", tmp_path / "t3", settings=s, progress=False)
    model, _ = load_model(res.checkpoint)
    assert model.config.horizon == 3 and model.config.motion_dim == 72
    smp = GuidedSampler(model).sample(
        np.zeros((2, model.config.state_dim)), command=np.zeros((2, 8, 3)), guidance=0.5
    )
    assert smp.motion.shape == (2, 3, 8, 3)


def test_one_model_trains_on_anygrasp_and_free_finger_data(data, tmp_path):
    root, _ = data
    ff = make_env("free_finger", num_envs=4, nthread=2, seed=0, episode_s=2.0)
    generate(ff, HoldPolicy(ff), tmp_path / "ff", transitions=400, progress=False,
             explore_rad=0.1)  # fmt: skip
    s = dataclasses.replace(SCALES["smoke"], steps=6, val_every=6, save_every=6)
    res = train([root / "ds", tmp_path / "ff"], tmp_path / "both", settings=s, progress=False)
    assert res.report["modes"] == ["anygrasp", "free_finger"]
    assert res.report["data"] == [str(root / "ds"), str(tmp_path / "ff")]
    ctl = CONTROLLERS.make("dexgen", hand="leap", checkpoint=str(res.checkpoint))
    ctl.update(mode="free_finger")  # refused for a model without free-finger data (above)
    assert ctl.settings()["mode"] == "free_finger"
    # the replay bench drives an empty hand in the free-finger mode
    from bench.dexgen_replay import main as replay

    out = tmp_path / "ff.json"
    replay(["--clips", "pinch_index", "--object", "none", "--mode", "free_finger",
            "--seconds", "1", "--guidance", "0.5", "--checkpoint", str(res.checkpoint),
            "--json", str(out)])  # fmt: skip
    dg = [r for r in json.loads(out.read_text())["runs"] if r["controller"] == "dexgen"]
    assert dg[0]["mode"] == "free_finger" and dg[0]["object"] == "none"
    assert dg[0]["ticks"] == 20 and np.isfinite(dg[0]["intervention_mm"])


def test_assist_and_latency_benches_write_their_records(trained, tmp_path):
    from bench.dexgen_assist import main as assist
    from bench.dexgen_latency import main as latency

    _, res = trained
    out = tmp_path / "assist.json"
    assist(["--episodes", "3", "--episode-s", "1", "--noise", "0.5", "--guidance", "0.5",
            "--slow", "0.2", "--checkpoint", str(res.checkpoint), "--json", str(out),
            "--plot", str(tmp_path / "assist.png")])  # fmt: skip
    recs = json.loads(out.read_text())
    assert len(recs) == 4
    for r in recs:
        assert {"noise", "guidance", "assisted", "hold_s_mean", "goals_per_min", "episodes"} <= set(
            r
        )
        assert r["episodes"] == 3 and 0 < r["hold_s_mean"] <= 1.0 + 1e-9
        assert r["assisted"] == (r["guidance"] is not None)
    assert [r["guidance"] for r in recs] == [None, 0.5, None, 0.5]
    assert (tmp_path / "assist.png").stat().st_size > 10_000
    # an expert on other physics than the model's data: refused, nothing written
    from assets import CHECKPOINTS_DIR

    other = CHECKPOINTS_DIR / "rl" / "anygrasp_leap_menagerie.pt"
    refused = tmp_path / "refused.json"
    assert assist(["--episodes", "1", "--episode-s", "0.1", "--guidance", "0.5",
                   "--policy", str(other), "--checkpoint", str(res.checkpoint),
                   "--json", str(refused)]) == 2  # fmt: skip
    assert not refused.exists()
    out = tmp_path / "latency.json"
    latency(["--repeats", "2", "--checkpoint", str(res.checkpoint), "--json", str(out)])
    recs = json.loads(out.read_text())
    assert {(r["model"].split(" ")[0], r["guided"], r["dtype"]) for r in recs} == {
        (m, g, d)
        for m, d in (("paper-768", "float32"), ("paper-768", "bfloat16"), ("demo", "float32"))
        for g in (False, True)
    }
    assert all(r["ddim_steps"] == 10 and r["p99_ms"] >= r["p50_ms"] > 0 for r in recs)


def test_replay_bench_runs_clips_and_recorded_episodes(trained, tmp_path):
    from bench.dexgen_replay import main as replay
    from teleop_app.cli import main as cli

    _, res = trained
    ds = tmp_path / "rec"
    assert cli(["record", "--out", str(ds), "--object", "cube", "--duration", "1", "--fast"]) == 0
    out = tmp_path / "replay.json"
    replay(["--clips", "pinch_index", "--recorded", str(ds), "--seconds", "1", "--guidance",
            "0.5", "--checkpoint", str(res.checkpoint), "--json", str(out)])  # fmt: skip
    runs = json.loads(out.read_text())["runs"]
    assert [(r["clip"], r["controller"]) for r in runs] == [
        ("pinch_index", "retarget"), ("pinch_index", "dexgen"),
        ("rec#0", "retarget"), ("rec#0", "dexgen"),
    ]  # fmt: skip
    for r in runs:
        assert r["ticks"] == 20 and np.isfinite(r["follow_mm"]) and not r["dropped"]
    assert all(np.isfinite(r["intervention_mm"]) for r in runs if r["controller"] == "dexgen")
