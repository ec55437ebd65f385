"""The dexndm controller: the generalist (+ residual) turning the object about the axis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from controllers.base import CONTROLLERS
from controllers.dexndm import DexNDMController, DexNDMControllerConfig
from controllers.dexndm.controller import DEFAULT_RESIDUAL, RESIDUAL_KINDS, generalist_path
from controllers.dexndm.ndm import NDMConfig, NeuralDynamics, save_ndm
from controllers.dexndm.residual import ResidualConfig, ResidualPolicy, save_residual
from devices.robots.sim import SimHand, SimHandConfig
from devices.tick import Command
from training.dexndm.evaluate import rotation_episode, summarize


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dexndm")
    torch.manual_seed(0)
    ndm = NeuralDynamics(NDMConfig(kind="joint_wise", hidden=8, layers=1))
    save_ndm(root / "ndm.pt", ndm, {"hand": "leap"})
    res = ResidualPolicy(ResidualConfig(hidden=16, layers=1, max_rad=0.02))
    with torch.no_grad():
        res.net[-1].weight.normal_(0, 1.0)  # a residual that corrects something
    save_residual(root / "res.pt", res, {"hand": "leap", "ndm": str(root / "ndm.pt")})
    return root


def _hand():
    return SimHand(SimHandConfig(hand="leap", object="cube", object_scale=1.4))


def test_registered_and_available_with_the_shipped_generalist():
    assert "dexndm" in CONTROLLERS.names()
    assert DexNDMController.availability("leap") is None
    assert "no rotation generalist" in DexNDMController.availability("allegro")
    assert DexNDMController.command_fields == frozenset({"axis"})


@pytest.mark.parametrize("kind", RESIDUAL_KINDS)
def test_the_shipped_residuals_load_by_kind_with_their_models(kind):
    """Each shipped residual (the default is the joint-wise blend) corrects the shipped
    generalist and finds the dynamics model it was trained through (a blend: its torque
    member's); the torque ones' models also predict torques, and a blend holds its torque
    member and its angle-only one, with their weights."""
    c = DexNDMController(DexNDMControllerConfig(hand="leap", residual=kind))
    assert c.residual_path.name == f"residual_{kind}_leap.pt"
    assert not [n for n in c.notes if "residual" in n]  # trained for this generalist
    base = kind.removesuffix("_effort").removesuffix("_blend")
    assert c.ndm is not None and c.ndm.cfg.effort == (kind != base)
    assert c.ndm.cfg.kind == base
    if kind.endswith("_blend"):
        parts = c.residual_meta["blend"]
        assert [p["effort_weight"] > 0 for p in parts] == [True, False]
        assert all(p["ndm_kind"] == base for p in parts) and parts[1]["weight"] > 0
        assert c.residual.cfg.members == 2 and len(c.residual.cfg.weights) == 2
        assert all(p["data"] for p in parts)  # which rollouts each member was trained on
        robot = _hand()
        robot.start_rotation(c.sim_start(), 0.3)
        state = robot.read()
        c.reset(state)
        _, info = c.step(state, Command(t=0.0, axis=np.array([0.0, 0.0, 1.0])))
        assert info["residual_rad"] > 0 and "residual_spread_rad" not in info  # not an ensemble
    default = DexNDMController(DexNDMControllerConfig(hand="leap"))
    assert default.residual_path.name == f"residual_{DEFAULT_RESIDUAL}_leap.pt"


def test_turns_about_the_commanded_axis_and_holds_without_one():
    c = DexNDMController(DexNDMControllerConfig(hand="leap", residual="none", ndm="none"))
    robot = _hand()
    robot.start_rotation(c.sim_start(), 0.3)
    state = robot.read()
    c.reset(state)
    target, info = c.step(state, Command(t=0.0))
    assert np.array_equal(target, state.target) and info["axis"] == "none"
    target, info = c.step(state, Command(t=0.0, axis=np.array([0.0, 0.0, 2.0])))  # normalised
    assert info["axis"] == "+z" and info["residual_rad"] == 0.0
    assert np.abs(target - state.target).max() <= c.gen.cfg.action_scale_rad + 1e-9
    c.update(axis_source="-z")  # a fixed axis overrides the command
    _, info = c.step(state, Command(t=0.0, axis=np.array([0.0, 0.0, 1.0])))
    assert info["axis"] == "-z" and info["axis_z"] == -1.0


def test_an_axis_beyond_the_generalists_training_is_noticed_and_measured():
    """The shipped generalist was trained about +-z only: the controller says so once (its
    notice) and reports each tick how far the commanded axis is from those it knows."""
    c = DexNDMController(DexNDMControllerConfig(hand="leap", residual="none", ndm="none"))
    assert set(c.gen.trained_axes) == {"z+", "z-"}
    assert "trained about +z, -z only" in c.notice
    state = _hand().read()
    c.reset(state)
    for axis, off in (([0, 0, 1.0], 0.0), ([0, -1.0, 0], 90.0), ([0, 1.0, 1.0], 45.0)):
        _, info = c.step(state, Command(t=0.0, axis=np.array(axis)))
        assert info["axis_off_deg"] == pytest.approx(off)


def test_the_six_axis_generalist_turns_the_cube_about_x_and_y_where_the_default_does_not():
    """``generalist=six_axes`` (distilled from the six palm-up specialists and the base-up
    -z one) turns the cube about +-x and +-y on the simulated hand through the controller
    (8 s, two starts each; its first version, palm up only: 2.0-7.1 rad), where the default
    generalist (+-z only) does not (-1.3 to +0.1); it knows every palm axis, and no residual
    was trained for it, so it runs alone."""
    robot = _hand()
    six = DexNDMController(DexNDMControllerConfig(hand="leap", generalist="six_axes"))
    assert six.residual is None and len(six.gen.trained_axes) == 6
    assert "no shipped residual" in six.notice and "trained about" not in six.notice
    default = DexNDMController(DexNDMControllerConfig(hand="leap", residual="none", ndm="none"))
    for axis in ("+x", "-x", "+y", "-y"):
        turned = {}
        for name, c in (("six", six), ("default", default)):
            res = [rotation_episode(robot, c, axis, c.sim_start(), np.random.default_rng(s), 8.0)
                   for s in (0, 1)]  # fmt: skip
            turned[name] = np.mean([r.rotr for r in res])
        assert turned["six"] > 1.0 and turned["default"] < 0.5, (axis, turned)
    with pytest.raises(ValueError, match="no shipped generalist"):
        generalist_path("leap", "seven_axes")


def test_the_fast_generalist_turns_the_cube_both_ways_through_the_controller():
    """``generalist=fast`` (distilled from a blind +z specialist and the -z one) loads, runs
    without a residual (none was trained for it) and turns the cube about +z and -z on the
    simulated hand (8 s, two starts each; measured 7.3 / 5.4 rad about +z, 9.4 / 7.7 about
    -z, no drop)."""
    robot = _hand()
    c = DexNDMController(DexNDMControllerConfig(hand="leap", generalist="fast"))
    assert c.residual is None and "trained about +z, -z only" in c.notice
    for axis in ("+z", "-z"):
        res = [rotation_episode(robot, c, axis, c.sim_start(), np.random.default_rng(s), 8.0)
               for s in (0, 1)]  # fmt: skip
        assert min(r.rotr for r in res) > 3.5, (axis, [r.rotr for r in res])


def test_the_wrist_beyond_the_generalists_training_is_warned_of_and_measured(caplog):
    """The six-axis generalist was trained palm up and base up (fingers down): on a hand
    mounted thumb down the controller warns at reset and reports 90 degrees each tick; at
    the two it knows, 0 and no warning."""
    c = DexNDMController(DexNDMControllerConfig(hand="leap", generalist="six_axes"))
    assert set(c.gen.trained_wrists) == {"palm_up", "palm_up>base_up:90"}
    for wrist, off in (("palm_up", 0.0), ("base_up", 0.0), ("thumb_down", 90.0)):
        robot = SimHand(SimHandConfig(hand="leap", object="cube", object_scale=1.4, wrist=wrist))
        state = robot.read()
        caplog.clear()
        with caplog.at_level("WARNING", logger="controllers.dexndm.controller"):
            c.reset(state)
        assert ("degrees from those the generalist was trained at" in caplog.text) == (off > 0)
        _, info = c.step(state, Command(t=0.0, axis=np.array([0.0, 0.0, 1.0])))
        assert info["wrist_off_deg"] == pytest.approx(off, abs=1e-6)


def test_the_six_axis_generalist_turns_the_cube_fingers_down_where_the_default_drops_it():
    """Base up (fingers down, the hand's mount turned 90 degrees from palm up): the six-axis
    generalist, distilled with the base-up -z specialist too, turns the cube about -z
    through the controller on the simulated hand (8 s, two starts; measured 2.0 (then
    dropped) and 9.8 rad); the default generalist, palm up only, does not."""
    robot = SimHand(SimHandConfig(hand="leap", object="cube", object_scale=1.4, wrist="base_up"))
    turned = {}
    for gen in ("six_axes", ""):
        c = DexNDMController(DexNDMControllerConfig(hand="leap", generalist=gen, residual="none",
                                                    ndm="none"))  # fmt: skip
        res = [rotation_episode(robot, c, "-z", c.sim_start(), np.random.default_rng(s), 8.0)
               for s in (0, 1)]  # fmt: skip
        turned[gen] = np.mean([r.rotr for r in res])
    assert turned["six_axes"] > 3.0 and turned[""] < 1.0, turned


def test_the_shipped_generalist_turns_the_cube_both_ways_in_simulation():
    c = DexNDMController(DexNDMControllerConfig(hand="leap", residual="none", ndm="none"))
    robot = _hand()
    rng = np.random.default_rng(0)
    rest = c.sim_start()
    for axis in ("+z", "-z"):
        res = [rotation_episode(robot, c, axis, rest, rng, episode_s=4.0)]
        s = summarize(res, 4.0, 1.0 / robot.rate_hz)
        assert s["rotr"] > 0.3, (axis, s)  # turned the asked way, not the other


def test_the_shipped_generalist_reverses_when_the_operator_switches_axes():
    """X (+z) for 4 s, then Y (-z) for 4 s, in one episode on the simulated hand
    (``rotation_episode``'s switch, what `bench/dexndm_eval.py --then` runs): the cube turns
    about +z, then about -z (the generalist was distilled with axis switches and DAgger; the
    first one kept turning +z); RotR is the turn about the axis in force at each tick."""
    c = DexNDMController(DexNDMControllerConfig(hand="leap", residual="none", ndm="none"))
    robot = _hand()
    rest = c.sim_start()
    res = rotation_episode(
        robot, c, "+z", rest, np.random.default_rng(0), episode_s=8.0, then="-z", switch_s=4.0
    )
    assert not res.dropped and res.steps == 160
    assert res.rotr_before > 0.3 and res.rotr_after > 0.3, res
    assert res.rotr == pytest.approx(res.rotr_before + res.rotr_after)
    s = summarize([res], 8.0, 1.0 / robot.rate_hz)
    assert s["rotr_before"] == round(res.rotr_before, 3)
    assert s["rotr_after"] == round(res.rotr_after, 3)
    with pytest.raises(ValueError, match="switch_s"):
        rotation_episode(robot, c, "+z", rest, np.random.default_rng(0), 8.0, "-z", 9.0)


def test_residual_on_off_scale_and_the_dynamics_readout(files):
    cfg = DexNDMControllerConfig(
        hand="leap", residual=str(files / "res.pt"), ndm=str(files / "ndm.pt")
    )
    c = DexNDMController(cfg)
    robot = _hand()
    robot.start_rotation(c.sim_start())
    state = robot.read()
    c.reset(state)
    cmd = Command(t=0.0, axis=np.array([0.0, 0.0, 1.0]))
    t_on, info = c.step(state, cmd)
    assert 0 < info["residual_rad"] <= 0.02 + 1e-9 and np.isfinite(info["ndm_error_rad"])
    c.reset(state)
    c.update(residual_on=False)
    t_off, info_off = c.step(state, cmd)
    assert info_off["residual_rad"] == 0.0
    assert 0 < np.abs(t_on - t_off).max() <= 0.02 + 1e-9
    c.reset(state)
    c.update(residual_on=True, residual_scale=0.5)
    _, info_half = c.step(state, cmd)
    assert info_half["residual_rad"] == pytest.approx(info["residual_rad"] / 2, rel=1e-5)
    with pytest.raises(ValueError, match="residual scale"):
        c.update(residual_scale=3.0)


@pytest.mark.parametrize("t_res", [4, 14])
def test_a_residual_may_see_another_history_than_the_generalist(files, t_res):
    """A residual trained with its own T (shorter or longer than the generalist's) sees the
    generalist's observation built from its own last T steps."""
    from controllers.dexndm.controller import gravity_in_palm
    from controllers.dexndm.generalist import generalist_obs

    torch.manual_seed(1)
    res = ResidualPolicy(ResidualConfig(hidden=16, layers=1, max_rad=0.02, history=t_res))
    with torch.no_grad():
        res.net[-1].weight.normal_(0, 1.0)
    path = files / f"res_{t_res}.pt"
    save_residual(path, res, {"hand": "leap", "ndm": str(files / "ndm.pt")})
    c = DexNDMController(
        DexNDMControllerConfig(hand="leap", residual=str(path), ndm=str(files / "ndm.pt"))
    )
    T = c.gen.cfg.history
    assert c.residual.cfg.history == t_res != T
    robot = _hand()
    robot.start_rotation(c.sim_start())
    state = robot.read()
    c.reset(state)
    axis = np.array([0.0, 0.0, 1.0])
    for _ in range(3):
        before = state
        target, info = c.step(state, Command(t=0.0, axis=axis))
        robot.send(target)
        state = robot.read()
    assert 0 < info["residual_rad"] <= 0.02 + 1e-9
    hq, ht = np.array(c._hq), np.array(c._ht)
    g = gravity_in_palm(before.wrist)[None]
    step = (
        c.gen.cfg.action_scale_rad
        * c.gen.act_obs(generalist_obs(hq[None, -T:], ht[None, -T:], axis[None], g))[0]
    )
    with torch.no_grad():
        want = c.residual(
            torch.as_tensor(generalist_obs(hq[None, -t_res:], ht[None, -t_res:], axis[None], g),
                            dtype=torch.float32),
            torch.as_tensor(step[None], dtype=torch.float32),
        )[0].numpy()  # fmt: skip
    np.testing.assert_allclose(c._res_prev, want, atol=1e-6)


def test_an_ensemble_residual_sends_its_members_mean_and_reports_their_spread(tmp_path, files):
    from controllers.dexndm.residual import ensemble, load_residual

    torch.manual_seed(2)
    other = ResidualPolicy(ResidualConfig(hidden=16, layers=1, max_rad=0.02))
    with torch.no_grad():
        other.net[-1].weight.normal_(0, 1.0)
    model, meta = load_residual(files / "res.pt", hand="leap")
    metas = [{**meta, "config": {"seed": s}} for s in (0, 1)]
    ens, ens_meta = ensemble([(model, metas[0]), (other, metas[1])])
    path = tmp_path / "ens.pt"
    save_residual(path, ens, ens_meta)
    cmd = Command(t=0.0, axis=np.array([0.0, 0.0, 1.0]))
    robot = _hand()
    plain = DexNDMController(DexNDMControllerConfig(hand="leap", residual="none", ndm="none"))
    robot.start_rotation(plain.sim_start())
    state = robot.read()
    sent = {}
    for name, res in (("a", files / "res.pt"), ("ens", path)):
        c = DexNDMController(DexNDMControllerConfig(hand="leap", residual=str(res), ndm="none"))
        c.reset(state)
        sent[name], info = c.step(state, cmd)
        sent[name + "_res"] = c._res_prev.copy()
        sent[name + "_info"] = info
    assert "residual_spread_rad" not in sent["a_info"]
    assert sent["ens_info"]["residual_spread_rad"] > 0.0
    # the ensemble's correction is the mean of its members': member b's is 2 x ens - a
    b_res = 2 * sent["ens_res"] - sent["a_res"]
    assert np.abs(b_res - sent["a_res"]).max() > 0 and np.abs(b_res).max() <= 0.02 + 1e-6
    spread = np.abs(b_res - sent["a_res"]).mean() / 2  # two members: std = |a - b| / 2
    assert sent["ens_info"]["residual_spread_rad"] == pytest.approx(spread, rel=1e-4)


def test_a_missing_or_damaged_model_is_a_clear_error(tmp_path, files):
    from controllers.base import ControllerUnavailable

    with pytest.raises(ControllerUnavailable, match="no DexNDM residual checkpoint"):
        DexNDMController(DexNDMControllerConfig(hand="leap", residual=str(tmp_path / "x.pt")))
    bad = tmp_path / "bad.pt"
    bad.write_bytes((files / "res.pt").read_bytes()[:100])
    with pytest.raises(ControllerUnavailable, match="damaged"):
        DexNDMController(DexNDMControllerConfig(hand="leap", residual=str(bad)))


def test_run_reports_the_rotation_about_the_commanded_axis(tmp_path):
    """`run --controller dexndm` on the simulated hand: the session starts the cube in the
    generalist's grasp and the report's object section follows the axis in use."""
    import json

    from teleop_app.cli import main

    rep = tmp_path / "r.json"
    args = ["run", "--hand", "leap", "--robot", "sim:object_scale=1.4", "--object", "cube",
            "--controller", "dexndm", "--set", "axis_source=+z", "--set", "residual=none",
            "--device", "replay:assets/clips/demo.npz", "--duration", "4", "--fast",
            "--report", str(rep)]  # fmt: skip
    assert main(args) == 0
    obj = json.loads(rep.read_text())["object"]
    assert obj["ticks_with_axis"] >= 70 and obj["dropped"] is False
    assert obj["rotation_about_command_axis_rad"] > 0.3


def test_a_residual_for_another_generalist_is_noticed(tmp_path, files, caplog):
    """The shipped residual records the generalist it corrects and runs with it without a
    notice; a residual trained on another generalist's rollouts runs, and the operator is
    told (the controller's notice, the session's log) — not counted as other physics."""
    import logging

    from controllers.dexndm.controller import generalist_path
    from controllers.dexndm.generalist import RotationGeneralist
    from controllers.dexndm.residual import load_residual

    shipped = DexNDMController(DexNDMControllerConfig(hand="leap"))
    gen_fp = RotationGeneralist.load(generalist_path("leap"), hand="leap").meta["data_fingerprint"]
    assert shipped.residual_meta["base_policy"]["data_fingerprint"] == gen_fp
    assert not [n for n in shipped.notes if "generalist (" in n or "residual" in n]
    model, meta = load_residual(files / "res.pt", hand="leap")
    other = tmp_path / "res_other.pt"
    base = {"path": "out/gen_other.pt", "data_fingerprint": "sha256:" + "ab" * 32, "history": 10}
    save_residual(other, model, {**meta, "base_policy": base})
    c = DexNDMController(DexNDMControllerConfig(hand="leap", residual=str(other), ndm="none"))
    assert "another generalist" in c.notice and "out/gen_other.pt" in c.notice
    assert c.residual_mismatch in c.notes and shipped.residual_mismatch == ""
    assert c.check_physics(None) == "" and "another generalist" in c.notice  # kept
    # unrecorded (older residuals, the fixture's): nothing to compare, nothing said
    unrecorded = DexNDMController(
        DexNDMControllerConfig(hand="leap", residual=str(files / "res.pt"), ndm="none")
    )
    assert not [n for n in unrecorded.notes if "residual" in n]
    # another generalist with the default residual: that residual is not run, and it is said
    gen = RotationGeneralist.load(generalist_path("leap"), hand="leap")
    other_gen = tmp_path / "gen_other.pt"
    gen.save(other_gen, {**gen.meta, "data_fingerprint": "sha256:" + "cd" * 32})
    alone = DexNDMController(DexNDMControllerConfig(hand="leap", generalist=str(other_gen)))
    assert alone.residual is None and alone.residual_path is None and alone.ndm is None
    assert "no shipped residual for this generalist (gen_other.pt)" in alone.notice
    named = DexNDMController(DexNDMControllerConfig(hand="leap", generalist=str(other_gen),
                                                    residual="joint_wise"))  # fmt: skip
    assert named.residual is not None and "another generalist" in named.notice
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    cfg = session_config(hand="leap", device="replay", controller="dexndm", obj="cube",
                         controller_options={"residual": str(other), "ndm": "none"})  # fmt: skip
    records = []
    with caplog.at_level(logging.WARNING), Session(cfg) as session:
        session.subscribe(records.append)
        session.run(ticks=2)
        physics = session.controller.physics_notice
    assert "another generalist" in caplog.text
    assert all(r.info.get("other_physics", 0.0) == float(physics != "") for r in records)
