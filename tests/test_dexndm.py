"""DexNDM's pipeline: the chaos-box collector and the neural dynamics models."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from controllers.dexndm.ndm import (
    CheckpointError,
    NDMConfig,
    NeuralDynamics,
    load_ndm,
    save_ndm,
)
from devices.robots.sim import SimHand, SimHandConfig
from training.datagen.dataset import NO_MODE, DatasetWriter, iter_segments
from training.dexndm.chaos_box import ChaosBoxConfig, collect, source_sequences
from training.dexndm.ndm_train import NDMTrainConfig, segment_windows, train_ndm

N = 16


def _segment(q, a, **extra):
    """One dataset segment of angles ``q`` and targets ``a`` (no keypoints or object)."""
    steps = len(q)
    return {
        "q": q,
        "target": a,
        "keypoints": np.zeros((steps, 8, 3)),
        "object": np.full((steps, 7), np.nan),
        "gravity": np.tile([0.0, 0.0, -1.0], (steps, 1)),
        "style": np.zeros(steps, np.int8),
        "mode": np.full(steps, NO_MODE, np.int8),
        **extra,
    }


def _linear_joint_dataset(root, gains, segments=24, steps=120, seed=0):
    """Trajectories of 16 independent first-order joints q' = q + k_i (a - q) under random
    step targets: a known joint-wise system."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, meta={"hand": "leap", "task": "synthetic"})
    for _ in range(segments):
        q = np.zeros((steps, N))
        a = np.zeros((steps, N))
        cur = rng.uniform(-0.5, 0.5, N)
        goal = cur.copy()
        for t in range(steps):
            if t % 8 == 0:
                goal = rng.uniform(-0.8, 0.8, N)
            q[t], a[t] = cur, goal
            cur = cur + gains * (goal - cur)
        w.add(_segment(q, a))
    w.close()
    return root


@pytest.fixture(scope="module")
def linear_data(tmp_path_factory):
    gains = np.linspace(0.15, 0.6, N)
    return _linear_joint_dataset(tmp_path_factory.mktemp("lin") / "ds", gains), gains


@pytest.mark.parametrize("kind,hidden,bound", [("joint_wise", 32, 0.03), ("whole_hand", 128, 0.15)])
def test_ndm_fits_a_known_linear_joint_system(linear_data, tmp_path, kind, hidden, bound):
    root, _ = linear_data
    cfg = NDMTrainConfig(epochs=80, batch=128, lr=3e-3, seed=0, threads=1)
    cfg.model = NDMConfig(kind=kind, window=4, hidden=hidden, layers=2)
    rep = train_ndm([root], tmp_path / "m.pt", cfg, resume=False)
    val = rep["val"]
    # the hold baseline is off by the whole step; the model by a small fraction of it (the
    # whole-hand model, seeing 16x the inputs, fits the same ~2,500 windows less closely)
    assert val["rmse_rad"] < bound * val["hold_rmse_rad"], val
    _, meta = load_ndm(tmp_path / "m.pt", hand="leap", kind=kind)
    assert meta["kind"] == kind and meta["data"][0]["task"] == "synthetic"
    with pytest.raises(CheckpointError, match=r"not (whole_hand|joint_wise)"):
        load_ndm(tmp_path / "m.pt", kind="whole_hand" if kind == "joint_wise" else "joint_wise")
    with pytest.raises(CheckpointError, match="of leap, not allegro"):
        load_ndm(tmp_path / "m.pt", hand="allegro")


def test_joint_wise_sees_only_its_own_joint_and_whole_hand_sees_all():
    torch.manual_seed(0)
    for kind, independent in (("joint_wise", True), ("whole_hand", False)):
        m = NeuralDynamics(NDMConfig(kind=kind, window=10, hidden=16, layers=2)).eval()
        hq, ha = torch.randn(5, 10, N), torch.randn(5, 10, N)
        out = m(hq, ha)
        assert out.shape == (5, N)
        hq2, ha2 = hq.clone(), ha.clone()
        hq2[:, :, 3] += 1.0
        ha2[:, :, 3] -= 1.0
        out2 = m(hq2, ha2)
        others = [i for i in range(N) if i != 3]
        same = torch.allclose(out[:, others], out2[:, others])
        assert same == independent, kind
        assert not torch.allclose(out[:, 3], out2[:, 3])
        # differentiable in the actions (the residual policy trains through it)
        a = ha.clone().requires_grad_(True)
        m(hq, a).sum().backward()
        assert a.grad is not None and torch.isfinite(a.grad).all()


def test_ndm_checkpoint_damage_is_a_clear_error(tmp_path):
    m = NeuralDynamics(NDMConfig(kind="joint_wise", hidden=8, layers=1))
    p = save_ndm(tmp_path / "m.pt", m, {"hand": "leap"})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_ndm(p)
    with pytest.raises(CheckpointError, match="no neural dynamics checkpoint"):
        load_ndm(tmp_path / "missing.pt")


def test_windows_label_the_next_angle():
    q = np.arange(12, dtype=float).reshape(6, 2)
    a = -q
    w = segment_windows(q, a, 3)
    assert len(w) == 3  # t = 2, 3, 4
    assert np.array_equal(w.hist_q[0], q[0:3]) and np.array_equal(w.q_next[0], q[3])
    assert np.array_equal(w.hist_a[-1], a[2:5]) and np.array_equal(w.q_next[-1], q[5])
    # a segment too short for one window adds none, in the segment's precision (a dataset
    # with a short segment among float32 ones stays float32)
    q32 = q.astype(np.float32)
    short = segment_windows(q32[:3], q32[:3], 3)
    assert len(short) == 0 and short.hist_q.dtype == short.q_next.dtype == np.float32


class _Spy(SimHand):
    """The simulated hand, keeping every target written to it."""

    def __init__(self, config):
        self.written = []
        super().__init__(config)

    def _write(self, target):
        self.written.append(np.array(target))
        super()._write(target)


def test_chaos_box_never_sends_a_target_outside_limits_or_rate(tmp_path):
    robot = _Spy(SimHandConfig(hand="leap", dynamics="reality", chaos_box=6))
    robot.connect()
    rng = np.random.default_rng(0)
    # wild source sequences: far outside the limits, jumping every step
    seqs = [rng.uniform(-4, 4, (30, N)) for _ in range(3)]
    cfg = ChaosBoxConfig(trajectories=4, steps=30, noise_std_rad=0.3, settle_s=0.1, seed=1)
    counts = collect(robot, seqs, tmp_path / "cb", cfg)
    w = np.array(robot.written)
    hand = robot.hand
    assert np.all(w >= hand.lower - 1e-9) and np.all(w <= hand.upper + 1e-9)
    step = np.abs(np.diff(w, axis=0))
    assert np.all(step <= robot.safety.max_step() + 1e-9)
    assert counts["limit_violations"] == 0 and counts["trajectories"] == 4
    assert counts["filter_events"].get("rate_limited", 0) > 0
    segs = list(iter_segments(tmp_path / "cb", ("q", "target", "mode", "object")))
    assert len(segs) == 4 and all(len(s["q"]) == 30 for s in segs)
    assert all((s["mode"] == NO_MODE).all() and np.isnan(s["object"]).all() for s in segs)
    # the rows' targets are the filtered ones the hand got
    sent = np.concatenate([s["target"] for s in segs])
    assert np.all(sent >= hand.lower - 1e-6) and np.all(sent <= hand.upper + 1e-6)
    man = json.loads((tmp_path / "cb" / "manifest.json").read_text())
    assert man["trajectories_done"] == 4 and len(man["noisy"]) == 4
    # the simulated hand measures its actuators' torques: they are kept, within its limit
    assert man["optional_fields"] == ["effort"]
    eff = np.concatenate([s["effort"] for s in iter_segments(tmp_path / "cb", ("effort",))])
    limit = robot.sim_physics.actuators.arrays(N)["torque_limit"]
    assert np.all(np.abs(eff) <= limit + 1e-6) and np.abs(eff).max() > 0.01
    # a rerun with more trajectories resumes: the first four stay, two are added
    cfg.trajectories = 6
    collect(robot, seqs, tmp_path / "cb", cfg)
    assert len(list(iter_segments(tmp_path / "cb"))) == 6
    robot.disconnect()


def test_chaos_box_source_needs_rollouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset"):
        source_sequences(tmp_path / "none")


def _linear_rollouts(root, gains, segments=16, steps=80, seed=0, meta=None):
    """Rollouts (with axis and gravity) of the linear joint system under smooth random
    target steps, as `data generate --task rotate` writes them."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, meta={"hand": "leap", "task": "rotate", **(meta or {})})
    for _ in range(segments):
        q, a = np.zeros((steps, N)), np.zeros((steps, N))
        cur = rng.uniform(-0.3, 0.3, N)
        tgt = cur.copy()
        for t in range(steps):
            tgt = np.clip(tgt + rng.normal(0, 0.05, N), -0.8, 0.8)
            q[t], a[t] = cur, tgt
            cur = cur + gains * (tgt - cur)
        w.add(
            _segment(
                q, a, mode=np.full(steps, 2, np.int8), axis=np.tile([0.0, 0.0, 1.0], (steps, 1))
            )
        )
    w.close()
    return root


@pytest.fixture(scope="module")
def residual_setup(tmp_path_factory):
    """Simulated rollouts of one linear hand, and dynamics models of it and of a slower one."""
    root = tmp_path_factory.mktemp("res")
    sim_gains = np.full(N, 0.5)
    sim = _linear_rollouts(root / "sim", sim_gains)
    cfg = NDMTrainConfig(epochs=60, batch=128, lr=3e-3, seed=0, threads=1)
    cfg.model = NDMConfig(kind="joint_wise", window=4, hidden=32, layers=2)
    train_ndm([sim], root / "same.pt", cfg, resume=False)
    slow = _linear_rollouts(root / "slow", np.full(N, 0.25), seed=1)
    cfg.model = NDMConfig(kind="joint_wise", window=4, hidden=32, layers=2)
    train_ndm([slow], root / "slow.pt", cfg, resume=False)
    return root, sim


def _train_res(root, sim, ndm, out):
    from controllers.dexndm.residual import ResidualConfig
    from training.dexndm.residual_train import ResidualTrainConfig, train_residual

    cfg = ResidualTrainConfig(epochs=20, batch=128, lr=2e-3, seed=0, threads=1)
    cfg.model = ResidualConfig(hidden=64, layers=2, max_rad=0.3)
    return train_residual([sim], root / ndm, root / out, cfg)


def test_residual_stays_zero_when_the_dynamics_agree(residual_setup):
    root, sim = residual_setup
    rep = _train_res(root, sim, "same.pt", "res_same.pt")
    v = rep["val"]
    assert v["residual_mean_abs_rad"] < 0.005, v
    assert v["ndm_error_with"] <= v["ndm_error_without"] * 1.2 + 1e-3


def test_residual_closes_the_gap_to_a_slower_hand(residual_setup):
    """A hand half as fast: the residual asks for more, and the model's hand ends nearer
    where the simulated one did."""
    root, sim = residual_setup
    rep = _train_res(root, sim, "slow.pt", "res_slow.pt")
    v = rep["val"]
    assert v["ndm_error_with"] < 0.5 * v["ndm_error_without"], v
    assert v["residual_mean_abs_rad"] > 0.01
    from controllers.dexndm.residual import load_residual

    _, meta = load_residual(root / "res_slow.pt", hand="leap")
    assert meta["ndm_kind"] == "joint_wise" and meta["ndm"].endswith("slow.pt")


def test_the_rolled_objective_replays_the_rollout_step_by_step(residual_setup):
    """horizon K > 1: the model rolled on its own predictions, each new target corrected
    from the observation its predicted angles make; checked against the same roll written
    out one step at a time from the recorded rows."""
    from controllers.dexndm.generalist import generalist_obs
    from controllers.dexndm.ndm import load_ndm
    from controllers.dexndm.residual import ResidualConfig, ResidualPolicy
    from training.dexndm.residual_train import Rollouts, _rollout

    root, sim = residual_setup
    ndm, _ = load_ndm(root / "slow.pt")
    T, W, K = 3, ndm.cfg.window, 4
    torch.manual_seed(0)
    res = ResidualPolicy(ResidualConfig(history=T, hidden=16, layers=1, max_rad=0.2))
    with torch.no_grad():
        res.net[-1].weight.normal_(0, 0.5)  # a residual that corrects something
    data = Rollouts([sim], T, W, 0.1, horizon=K)
    one = Rollouts([sim], T, W, 0.1)
    # each of the 14 training segments (2 of 16 held out) ends K - 1 samples earlier
    assert len(data.train) == len(one.train) - (K - 1) * 14
    rows = data.train[[0, 7, 40]]
    b = data.batch(rows)
    with torch.no_grad():
        preds, corr, _ = _rollout(res, ndm, b, K, use=True)
        assert corr.shape == (3, W + K - 1, N)
        q, a, ax, g = data.q, data.a, data.axis, data.gravity
        for i, t in enumerate(rows.tolist()):
            qs = {k: q[k] for k in range(t - W - T + 2, t + 1)}  # recorded, then predicted
            r = {}
            for k in range(t - W + 1, t + K):
                obs = generalist_obs(
                    torch.stack([qs[m] for m in range(k - T + 1, k + 1)])[None],
                    a[k - T : k][None], ax[k][None], g[k][None],
                )  # fmt: skip
                r[k] = res(obs, (a[k] - a[k - 1])[None])[0]
                if k >= t:
                    win = range(k - W + 1, k + 1)
                    qs[k + 1] = ndm(
                        torch.stack([qs[m] for m in win])[None],
                        torch.stack([a[m] + r[m] for m in win])[None],
                    )[0]  # fmt: skip
                    torch.testing.assert_close(preds[k - t][i], qs[k + 1], atol=1e-5, rtol=0)
            torch.testing.assert_close(corr[i], torch.stack([r[k] for k in sorted(r)]))
    # K = 1 is the one-step objective: the first prediction is the same either way
    torch.testing.assert_close(_rollout(res, ndm, one.batch(rows), 1, True)[0][0], preds[0])


def test_a_rolled_residual_closes_the_gap_over_its_horizon(residual_setup):
    """Against the half-as-fast hand, trained over 3 rolled steps: the model's hand three
    steps on ends far nearer the simulated one's than without the residual, and nearer than
    with the one-step residual of the same recipe."""
    from controllers.dexndm.ndm import load_ndm
    from controllers.dexndm.residual import ResidualConfig, load_residual
    from training.dexndm.residual_train import (
        ResidualTrainConfig,
        Rollouts,
        _evaluate,
        train_residual,
    )

    root, sim = residual_setup
    cfg = ResidualTrainConfig(epochs=15, batch=128, lr=2e-3, seed=0, threads=1)
    cfg.model = ResidualConfig(hidden=64, layers=2, max_rad=0.3)
    err = {}
    for K in (1, 3):
        v = train_residual([sim], root / "slow.pt", root / f"res_k{K}.pt", replace(cfg, horizon=K))
        ndm, _ = load_ndm(root / "slow.pt")
        data = Rollouts([sim], 10, ndm.cfg.window, 0.1, horizon=3)
        err[K] = _evaluate(load_residual(root / f"res_k{K}.pt")[0], ndm, data, data.val)
    v = v["val"]
    assert v["horizon"] == 3 and err[3]["horizon"] == 3
    assert v["ndm_rmse_rad_at_horizon_with"] < 0.6 * v["ndm_rmse_rad_at_horizon_without"], v
    assert err[3]["ndm_rmse_rad_at_horizon_with"] < err[1]["ndm_rmse_rad_at_horizon_with"]
    assert v["ndm_error_with"] < 0.5 * v["ndm_error_without"], v  # and one step on
    with pytest.raises(ValueError, match="horizon"):
        train_residual([sim], root / "slow.pt", root / "bad.pt", replace(cfg, horizon=0))


def test_residual_sees_its_base_policys_history(residual_setup):
    """Rollouts of a generalist that sees 6 steps (its file's env.history, kept in the
    rollouts' manifest by `data generate`): the residual's observation is that generalist's."""
    from controllers.dexndm.residual import ResidualConfig, load_residual
    from training.dexndm.residual_train import (
        ResidualTrainConfig,
        base_policy,
        train_residual,
    )

    root, sim = residual_setup
    gen6 = {"policy": "out/gen6.pt",
            "policy_meta": {"env": {"history": 6}, "data_fingerprint": "sha256:66"}}  # fmt: skip
    six = _linear_rollouts(root / "six", np.full(N, 0.5), segments=4, meta=gen6)
    assert base_policy([six]) == {"path": "out/gen6.pt", "data_fingerprint": "sha256:66",
                                  "history": 6}  # fmt: skip
    assert base_policy([sim]) is None
    cfg = ResidualTrainConfig(epochs=1, batch=128, seed=0, threads=1)
    cfg.model = ResidualConfig(hidden=16, layers=1)
    train_residual([six], root / "same.pt", root / "res_six.pt", cfg)
    model, meta = load_residual(root / "res_six.pt", hand="leap")
    assert model.cfg.history == 6 and cfg.model.history == 10  # the caller's is left alone
    assert meta["base_policy"]["data_fingerprint"] == "sha256:66"  # what it corrects
    # a history of its own, shorter than its base policy's
    cfg.history = 3
    train_residual([six], root / "same.pt", root / "res_three.pt", cfg)
    assert load_residual(root / "res_three.pt", hand="leap")[0].cfg.history == 3
    seven = _linear_rollouts(root / "seven", np.full(N, 0.5), segments=2,
                             meta={"policy_meta": {"env": {"history": 7}}})  # fmt: skip
    with pytest.raises(ValueError, match="different histories"):
        base_policy([six, seven])
    # the same history, another generalist: a residual corrects one policy
    gen6b = {"policy": "out/other.pt",
             "policy_meta": {"env": {"history": 6}, "data_fingerprint": "sha256:67"}}  # fmt: skip
    other = _linear_rollouts(root / "other", np.full(N, 0.5), segments=2, meta=gen6b)
    with pytest.raises(ValueError, match="different base policies"):
        base_policy([six, other])
    assert base_policy([six, six])["path"] == "out/gen6.pt"


def test_optional_fields_are_all_or_nothing(tmp_path):
    def seg(axis: bool):
        z = np.zeros((5, N))
        return _segment(z, z, axis=np.ones((5, 3))) if axis else _segment(z, z)

    w = DatasetWriter(tmp_path / "ds")
    w.add(seg(True))
    with pytest.raises(ValueError, match="differ from the dataset's"):
        w.add(seg(False))
    w.close()
    (s,) = list(iter_segments(tmp_path / "ds", ("q", "axis")))
    assert s["axis"].shape == (5, 3)


def test_ndm_trains_on_the_first_trajectories_only_when_asked(linear_data, tmp_path):
    root, _ = linear_data
    cfg = NDMTrainConfig(epochs=1, batch=256, seed=0, threads=1, max_segments=5)
    cfg.model = NDMConfig(kind="joint_wise", window=4, hidden=8, layers=1)
    rep = train_ndm([root], tmp_path / "m.pt", cfg, resume=False)
    assert rep["data"][0]["segments"] == 5
    assert rep["train_windows"] + rep["val_windows"] == 5 * (120 - 4)


def test_dexndm_bench_reads_both_axis_spellings():
    """``--axes z+ z-`` (rotation_eval's spelling) and ``--axes=+z``: argparse would read a
    bare ``-z`` as an option."""
    import argparse

    from bench.dexndm_eval import _axis

    assert [_axis(a) for a in ("z+", "z-", "+x", "-y", "y-")] == ["+z", "-z", "+x", "-y", "-y"]
    for bad in ("z", "w+", "+zz", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="not a palm axis"):
            _axis(bad)


def test_an_ensemble_averages_residuals_trained_alike_but_for_their_seed(residual_setup):
    """Two residuals through the slower hand's model, seeds 0 and 1, made one by `train
    dexndm-ensemble`: its correction is its members' mean (their spread is how far they
    disagree), it survives a save and a load, it closes the gap at least as well as its
    members on average, and residuals trained differently are refused."""
    from controllers.dexndm.ndm import load_ndm
    from controllers.dexndm.residual import ResidualConfig, ensemble, load_residual
    from teleop_app.cli import main as cli_main
    from training.dexndm.residual_train import (
        ResidualTrainConfig,
        Rollouts,
        _evaluate,
        train_residual,
    )

    root, sim = residual_setup
    cfg = ResidualTrainConfig(epochs=6, batch=128, lr=2e-3, threads=1)
    cfg.model = ResidualConfig(hidden=32, layers=2, max_rad=0.3)
    for seed in (0, 1):
        train_residual([sim], root / "slow.pt", root / f"ens_m{seed}.pt", replace(cfg, seed=seed))
    out = root / "ens.pt"
    members = [str(root / f"ens_m{s}.pt") for s in (0, 1)]
    assert cli_main(["train", "dexndm-ensemble", *members, "--out", str(out)]) == 0
    ens, meta = load_residual(out, hand="leap")
    assert ens.cfg.members == 2 and [m["seed"] for m in meta["members"]] == [0, 1]
    assert meta["ndm"].endswith("slow.pt") and meta["ndm_kind"] == "joint_wise"
    ndm, _ = load_ndm(root / "slow.pt")
    data = Rollouts([sim], 10, ndm.cfg.window, 0.1)
    b = data.batch(data.val[:64])
    m0, m1 = (load_residual(p)[0] for p in members)
    with torch.no_grad():
        outs = torch.stack([m0(b["obs"], b["step"]), m1(b["obs"], b["step"])])
        torch.testing.assert_close(ens(b["obs"], b["step"]), outs.mean(0))
        spread = ens.spread(b["obs"][:, -1], b["step"][:, -1])
        want = outs[:, :, -1].std(dim=0, unbiased=False).mean(-1)
        torch.testing.assert_close(spread, want)
        assert float(spread.mean()) > 1e-4  # two seeds, two networks
        assert float(m0.spread(b["obs"], b["step"]).abs().max()) == 0.0
    errs = [_evaluate(m, ndm, data, data.val)["ndm_error_with"] for m in (m0, m1, ens)]
    assert errs[2] <= 1.02 * (errs[0] + errs[1]) / 2, errs
    # refused: one seed twice, a different cap, another dynamics model, an ensemble of one
    with pytest.raises(ValueError, match="share a seed"):
        ensemble([load_residual(members[0]), load_residual(members[0])])
    train_residual(
        [sim], root / "slow.pt", root / "ens_cap.pt",
        replace(cfg, seed=2, epochs=1, model=replace(cfg.model, max_rad=0.2)),
    )  # fmt: skip
    with pytest.raises(ValueError, match="network differs"):
        ensemble([load_residual(members[0]), load_residual(root / "ens_cap.pt")])
    train_residual([sim], root / "same.pt", root / "ens_same.pt", replace(cfg, seed=3, epochs=1))
    with pytest.raises(ValueError, match="trained differently \\(ndm"):
        ensemble([load_residual(members[0]), load_residual(root / "ens_same.pt")])
    with pytest.raises(ValueError, match="at least two"):
        ensemble([load_residual(members[0])])
    with pytest.raises(ValueError, match="single residuals"):
        ensemble([(ens, meta), load_residual(members[1])])


def test_a_blend_sends_the_weighted_sum_of_residuals_trained_for_different_objectives(
    residual_setup,
):
    """`train dexndm-blend A B --weights 1 0.5`: residuals of one base policy through
    different dynamics models and caps; the blend sends 1 x A's correction + 0.5 x B's (each
    member under its own cap), survives a save and a load and a rescale, records each member,
    and refuses what is not one base policy's single residuals."""
    from controllers.dexndm.ndm import load_ndm
    from controllers.dexndm.residual import ResidualConfig, blend, ensemble, load_residual
    from teleop_app.cli import main as cli_main
    from training.dexndm.residual_train import ResidualTrainConfig, Rollouts, train_residual

    root, sim = residual_setup
    cfg = ResidualTrainConfig(epochs=4, batch=128, lr=2e-3, threads=1, seed=0)
    cfg.model = ResidualConfig(hidden=32, layers=2, max_rad=0.3)
    train_residual([sim], root / "slow.pt", root / "bl_a.pt", cfg)
    small = replace(cfg, seed=1, epochs=2, model=replace(cfg.model, max_rad=0.1))
    train_residual([sim], root / "same.pt", root / "bl_b.pt", small)
    paths = [str(root / "bl_a.pt"), str(root / "bl_b.pt")]
    out = root / "blend.pt"
    args = ["train", "dexndm-blend", *paths, "--weights", "1", "0.5", "--out", str(out)]
    assert cli_main(args) == 0
    mixed, meta = load_residual(out, hand="leap")
    assert mixed.cfg.members == 2 and mixed.cfg.max_rad == pytest.approx(0.3)
    assert [m["weight"] for m in meta["blend"]] == [1.0, 0.5]
    assert [m["cap_rad"] for m in meta["blend"]] == pytest.approx([0.3, 0.1])
    assert meta["blend"][0]["ndm"].endswith("slow.pt") and meta["blend"][1]["ndm"].endswith(
        "same.pt"
    )
    assert meta["ndm"].endswith("slow.pt")  # the controller reads the first one's model
    assert all(m["data"] for m in meta["blend"])  # each member's rollouts
    (a, meta_a), (b, meta_b) = (load_residual(p) for p in paths)
    ndm, _ = load_ndm(root / "slow.pt")
    data = Rollouts([sim], 10, ndm.cfg.window, 0.1)
    batch = data.batch(data.val[:64])
    obs, step = batch["obs"][:, 0], batch["step"][:, 0]
    with torch.no_grad():
        want = a(obs, step) + 0.5 * b(obs, step)
        assert float(want.abs().max()) > 1e-3  # not two zero corrections
        torch.testing.assert_close(mixed(obs, step), want)
        torch.testing.assert_close(mixed.scaled(0.5)(obs, step), 0.5 * want)
    # refused: one residual, weights that do not match, a weight that is not finite,
    # a residual of another base policy, an ensemble as a member
    with pytest.raises(ValueError, match="at least two"):
        blend([(a, meta_a)], [1.0])
    with pytest.raises(ValueError, match="2 weights for 3"):
        blend([(a, meta_a), (b, meta_b), (a, meta_a)], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        blend([(a, meta_a), (b, meta_b)], [1.0, float("nan")])
    other = {**meta_b, "base_policy": {"path": "another.pt"}}
    with pytest.raises(ValueError, match="another base_policy"):
        blend([(a, meta_a), (b, other)], [1.0, 1.0])
    train_residual([sim], root / "slow.pt", root / "bl_a2.pt", replace(cfg, seed=2))
    ens, ens_meta = ensemble([(a, meta_a), load_residual(root / "bl_a2.pt")])
    with pytest.raises(ValueError, match="ensemble or a blend"):
        blend([(ens, ens_meta), (b, meta_b)], [1.0, 1.0])
    assert cli_main([*args[:-2], "--weights", "1", "--out", str(root / "x.pt")]) != 0


def test_observation_noise_trains_a_smoother_residual_that_still_closes_the_gap(residual_setup):
    """`--obs-noise`: noise on the residual's observed histories while training (the
    dynamics model's window clean). Against the slower hand it still closes most of the
    gap, and its correction changes less when the observed angles move a little."""
    from controllers.dexndm.ndm import load_ndm
    from controllers.dexndm.residual import ResidualConfig, load_residual
    from training.dexndm.residual_train import ResidualTrainConfig, Rollouts, train_residual

    root, sim = residual_setup
    cfg = ResidualTrainConfig(epochs=12, batch=128, lr=2e-3, seed=0, threads=1)
    cfg.model = ResidualConfig(hidden=64, layers=2, max_rad=0.3)
    sens = {}
    for noise in (0.0, 0.1):
        rep = train_residual(
            [sim], root / "slow.pt", root / f"res_n{noise}.pt", replace(cfg, obs_noise_rad=noise)
        )
        v = rep["val"]
        assert v["ndm_error_with"] < 0.6 * v["ndm_error_without"], (noise, v)
        assert rep["config"]["obs_noise_rad"] == noise
        model, _ = load_residual(root / f"res_n{noise}.pt")
        ndm, _ = load_ndm(root / "slow.pt")
        data = Rollouts([sim], 10, ndm.cfg.window, 0.1)
        b = data.batch(data.val[:256])
        obs, step = b["obs"][:, -1], b["step"][:, -1]
        g = torch.Generator().manual_seed(1)
        bump = torch.zeros_like(obs)
        bump[:, : 2 * N * 10] = 0.05 * torch.randn(obs.shape[0], 2 * N * 10, generator=g)
        with torch.no_grad():
            sens[noise] = float((model(obs + bump, step) - model(obs, step)).abs().mean())
    assert sens[0.1] < sens[0.0], sens
    with pytest.raises(ValueError, match="observation noise"):
        train_residual([sim], root / "slow.pt", root / "bad.pt", replace(cfg, obs_noise_rad=-1.0))


def test_gap_bench_feedforward_corrects_targets_by_the_stand_ins_gains(tmp_path):
    """bench/dexndm_gap.py's upper bound: the target gets S (kp_nom / kp - 1)(target - q) plus
    the extra friction's share per joint, while the wrapped controller keeps seeing the
    targets it asked for; and a short run of the bench writes a row per (row, axis) with the
    share of the gap each closes (0 on the stand-in, 1 on the nominal hand)."""
    from bench.dexndm_gap import Feedforward
    from bench.dexndm_gap import main as gap_main

    robot = SimHand(SimHandConfig(hand="leap", dynamics="reality"))
    seen = []

    class Fixed:  # a controller asking for the same target every tick
        def __init__(self, target):
            self.target = target

        def sim_start(self):
            return None

        def reset(self, state):
            pass

        def step(self, state, command):
            seen.append(np.asarray(state.target).copy())
            return self.target.copy(), {}

    state = robot.read()
    asked = state.q + 0.1
    ff = Feedforward(Fixed(asked), robot, 0.5)
    ff.reset(state)
    kp, fl = np.asarray(robot.reality.kp), np.asarray(robot.reality.frictionloss)
    want = asked + 0.5 * ((3.0 / kp - 1) * 0.1 + (fl - 0.01) / kp)
    out, _ = ff.step(state, None)
    np.testing.assert_allclose(out, want, atol=1e-12)
    ff.step(replace(state, target=out), None)
    np.testing.assert_allclose(seen[-1], asked, atol=1e-12)  # its own target, not the corrected

    path = tmp_path / "gap.json"
    gap_main(
        [
            "--axes",
            "z-",
            "--episodes",
            "1",
            "--episode-s",
            "1",
            "--revert",
            "latency",
            "--feedforward",
            "0.5",
            "--json",
            str(path),
        ]
    )
    recs = json.loads(path.read_text())["records"]
    assert [r["row"] for r in recs] == ["nominal", "stand-in", "revert=latency", "feedforward=0.5"]
    by = {r["row"]: r for r in recs}
    assert by["stand-in"]["gap_closed"] == 0 and by["nominal"]["gap_closed"] == 1
    assert by["revert=latency"]["robot"].endswith("reality_revert=latency")


def _pressing_rollouts(root, kp, segments=16, steps=80, seed=0):
    """Fingers pressed on an object: the angles barely move whatever the targets ask (q is
    blocked), each actuator's torque is ``kp_i (a - q)``; rows as `data generate --task
    rotate` writes them, with ``effort``."""
    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, meta={"hand": "leap", "task": "rotate"})
    for _ in range(segments):
        q, a, tau = np.zeros((steps, N)), np.zeros((steps, N)), np.zeros((steps, N))
        cur = rng.uniform(-0.3, 0.3, N)
        off = rng.uniform(-0.08, 0.08, N)
        for t in range(steps):
            off = np.clip(off + rng.normal(0, 0.01, N), -0.08, 0.08)
            q[t], a[t] = cur, cur + off
            nxt = cur + rng.normal(0, 0.005, N)
            if t + 1 < steps:
                tau[t + 1] = kp * (a[t] - nxt)
            cur = nxt
        tau[0] = tau[1]
        w.add(
            _segment(
                q,
                a,
                mode=np.full(steps, 2, np.int8),
                axis=np.tile([0.0, 0.0, 1.0], (steps, 1)),
                effort=tau,
            )
        )
    w.close()
    return root


def test_ndm_with_effort_learns_each_joints_torque_and_refuses_data_without(tmp_path, linear_data):
    kp = np.linspace(1.0, 4.0, N)
    data = _pressing_rollouts(tmp_path / "press", kp)
    cfg = NDMTrainConfig(epochs=40, batch=128, lr=3e-3, seed=0, threads=1)
    cfg.model = NDMConfig(kind="joint_wise", window=4, hidden=32, layers=2, effort=True)
    rep = train_ndm([data], tmp_path / "eff.pt", cfg, resume=False)
    spread = float(np.std(kp[None] * 0.08))  # the torques' scale
    assert rep["val"]["effort_rmse_nm"] < 0.1 * spread + 0.01, rep["val"]
    ndm, _ = load_ndm(tmp_path / "eff.pt", hand="leap")
    # a joint's torque follows its own gain: twice the push, twice the torque
    q = torch.zeros(1, 4, N)
    a = torch.zeros(1, 4, N)
    a[:, -1] = 0.04
    _, e1 = ndm.predict(q, a)
    a[:, -1] = 0.08
    _, e2 = ndm.predict(q, a)
    slope = ((e2 - e1) / 0.04)[0].detach().numpy()
    np.testing.assert_allclose(slope, kp, rtol=0.25, atol=0.3)
    assert ndm.predict(q, a)[0].shape == (1, N) and ndm(q, a).shape == (1, N)
    # data without torques
    root, _ = linear_data
    with pytest.raises(ValueError, match="no effort"):
        train_ndm([root], tmp_path / "x.pt", cfg, resume=False)


def test_effort_weight_makes_the_residual_push_as_hard_as_in_simulation(tmp_path):
    """Fingers pressed on the object: the target hand's servos are half as stiff, so its
    torques are half the simulator's for the same targets. The angles do not move either
    way, so the paper's angle-only objective asks for nothing; with the torque error in the
    loss, the residual doubles each joint's push, (kp_sim / kp - 1)(a - q)."""
    from controllers.dexndm.residual import ResidualConfig, load_residual
    from training.dexndm.residual_train import ResidualTrainConfig, Rollouts, train_residual

    kp_sim = np.full(N, 3.0)
    sim = _pressing_rollouts(tmp_path / "sim", kp_sim, segments=48)
    weak = _pressing_rollouts(tmp_path / "weak", kp_sim / 2, seed=1)
    ncfg = NDMTrainConfig(epochs=40, batch=128, lr=3e-3, seed=0, threads=1)
    ncfg.model = NDMConfig(kind="joint_wise", window=4, hidden=32, layers=2, effort=True)
    train_ndm([weak], tmp_path / "weak.pt", ncfg, resume=False)
    got = {}
    for w in (0.0, 1.0):
        # two steps of history: target minus angle is in sight without 300 inputs to fit
        cfg = ResidualTrainConfig(epochs=20, batch=128, lr=2e-3, seed=0, threads=1, history=2)
        cfg.model = ResidualConfig(hidden=64, layers=2, max_rad=0.3)
        cfg.effort_weight = w
        rep = train_residual([sim], tmp_path / "weak.pt", tmp_path / f"res{w}.pt", cfg)
        res, _ = load_residual(tmp_path / f"res{w}.pt", hand="leap")
        data = Rollouts([sim], res.cfg.history, 4, 0.1, effort=True)
        b = data.batch(data.val)
        with torch.no_grad():
            corr = res(b["obs"], b["step"])[:, -1]
        push = b["a_win"][:, -1] - b["q_win"][:, -1]
        got[w] = (corr, push, rep["val"])
    corr0, push, _ = got[0.0]
    corr1, _, v1 = got[1.0]

    def slope(c):
        return float((c * push).sum() / (push * push).sum())

    assert abs(slope(corr0)) < 0.3, slope(corr0)  # angles alone: no push asked for
    # kp_sim / kp - 1 = 1 (the label's own angle noise is partly fitted)
    assert 0.7 < slope(corr1) < 1.5, (slope(corr1), v1)
    assert v1["ndm_effort_rmse_nm_with"] < 0.5 * v1["ndm_effort_rmse_nm_without"], v1
    # a model without torques is refused
    ncfg.model = NDMConfig(kind="joint_wise", window=4, hidden=32, layers=2)
    train_ndm([weak], tmp_path / "plain.pt", ncfg, resume=False)
    cfg = ResidualTrainConfig(epochs=1, threads=1, effort_weight=1.0)
    with pytest.raises(ValueError, match="predicts no torques"):
        train_residual([sim], tmp_path / "plain.pt", tmp_path / "r.pt", cfg)
