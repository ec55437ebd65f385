"""The arm carrying the hand: the Panda composed with the hand (MjSpec), inverse kinematics,
the wrist-to-arm filter, the simulated arm in the session, and the report's ``arm``."""

from __future__ import annotations

import json

import mujoco
import numpy as np
import pytest
from test_session import ScriptedDevice, good_frames, step
from test_wrist import pose as _pose

from assets.arms import MOUNT_ROT, arm_limits
from devices.arms import ARMS
from devices.arms.base import pose_error
from devices.robots.ik import ArmIK
from devices.robots.scene import ARM_PREFIX, MOUNT_POS, WRIST_ORIENTATIONS, site_names
from devices.robots.sim import SimHand, SimHandConfig
from teleop_app.session import Session, SessionConfig


@pytest.fixture(scope="module")
def hand_on_arm():
    return SimHand(SimHandConfig(hand="leap", wrist="palm_down", arm="panda"))


def _arm(hand, **kw):
    hand.reset()
    arm = ARMS.make("sim", **kw)
    arm.attach(hand)
    hand.connect()
    arm.connect()
    return arm


def test_the_arm_puts_the_palm_where_the_mount_would_in_every_wrist_orientation():
    assert np.isclose(np.linalg.det(MOUNT_ROT), 1.0)
    lo, hi = arm_limits("panda")
    for wrist, r in WRIST_ORIENTATIONS.items():
        h = SimHand(SimHandConfig(hand="allegro" if wrist == "thumb_up" else "leap", wrist=wrist,
                                  arm="panda"))  # fmt: skip
        state = h.read()
        np.testing.assert_allclose(state.wrist[:3, 3], MOUNT_POS, atol=1e-3)
        assert pose_error(state.wrist, np.block([[r, np.zeros((3, 1))], [0, 0, 0, 1]]))[1] < 0.01
        q = h.arm.start_q
        assert np.all(q > lo) and np.all(q < hi)
        mujoco.mj_forward(h.model, h.data)
        assert h.data.ncon == 0  # the hand clears the arm and the floor
    m = h.model
    assert all(
        m.body_gravcomp[b] == 1.0 for b in range(m.nbody) if m.body(b).name.startswith(ARM_PREFIX)
    )


def test_ik_round_trip_from_a_nearby_start(hand_on_arm):
    """Forward kinematics of random reachable configurations, then IK from a perturbed start:
    the palm lands on the pose (sub-millimetre, sub-milliradian)."""
    h = hand_on_arm
    j = h.arm
    ik = ArmIK(h.model, list(j.joint_names), site_names()[0], j.lower, j.upper, j.start_q,
               iterations=100)  # fmt: skip
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = np.clip(j.start_q + rng.normal(0, 0.3, 7), j.lower + 0.1, j.upper - 0.1)
        pos, rot = ik.pose(q)
        res = ik.solve(q + rng.normal(0, 0.1, 7), pos, rot)
        assert res.pos_err_m < 1e-4 and res.rot_err_rad < 1e-3, res
        got = ik.pose(res.q)
        assert np.linalg.norm(got[0] - pos) < 1e-4


def test_the_arm_follows_the_wrist_inside_its_envelope(hand_on_arm):
    """A wrist trajectory that leaves the workspace box, turns past the tilt limit, jumps and
    sends NaN: every palm target stays inside the box around the start and within the speed
    limits (counted independently of the filter), the joints stay inside their limits, and
    the palm tracks the targets it was given."""
    h = hand_on_arm
    arm = _arm(h)
    start = h.read().wrist.copy()
    hold_q = h.read().q
    box_lo, box_hi = arm.filter.limits.box
    origin = np.array([1.0, 2.0, 1.5])
    for k in range(160):
        t = k * 0.05
        p = origin + np.array([0.6 * np.sin(0.8 * t), 0.1 * np.sin(t), 0.1 * np.sin(1.3 * t)])
        pose = _pose(p, 2.5 * np.sin(0.4 * t))  # past the 120 degree tilt limit
        if k == 80:
            pose = _pose(origin + 5.0)  # a jump
        if k == 81:
            pose = np.full((4, 4), np.nan)
        arm.read()
        target, _ = arm.send(pose)
        h.send(hold_q)
        if target is not None:
            rel = target[:3, 3] - start[:3, 3]
            assert np.all(rel >= box_lo - 1e-9) and np.all(rel <= box_hi + 1e-9)
        q = h.data.qpos[h.arm.qadr]
        assert np.all(q >= h.arm.lower - 1e-3) and np.all(q <= h.arm.upper + 1e-3)
    rep = arm.report()
    assert rep["workspace_violations"] == 0 and rep["speed_violations"] == 0
    assert rep["targets_clipped_by_workspace"] > 0
    assert rep["events"]["wrist_tilt_limited"] > 0 and rep["events"]["invalid_wrist"] == 1
    assert rep["commands_sent"] == 160  # the NaN pose: the last safe target again
    assert rep["targets_unreachable"] > 0  # 2.5 rad of turn: past what the joints allow


def test_the_palm_tracks_a_moderate_wrist_motion(hand_on_arm):
    """15 cm and 0.4 rad of wrist motion at about 0.15 m/s: the palm stays within a servo
    lag of the targets (Menagerie's gains: about 0.1 s of lag)."""
    h = hand_on_arm
    arm = _arm(h)
    hold_q = h.read().q
    for k in range(120):
        t = k * 0.05
        p = np.array([1.0, 2.0, 1.5]) + np.array([0.15 * np.sin(t), 0.1 * np.sin(0.7 * t), 0.0])
        arm.read()
        arm.send(_pose(p, 0.4 * np.sin(0.5 * t)))
        h.send(hold_q)
    rep = arm.report()
    assert rep["tracking_error_mm"]["p50"] < 20 and rep["tracking_error_deg"]["p50"] < 3, rep
    assert rep["ik_residual_mm"]["p95"] < 1.0 and rep["targets_unreachable"] == 0


def test_a_fault_holds_until_the_operator_recovers(hand_on_arm):
    h = hand_on_arm
    arm = _arm(h)
    arm.read()
    arm.send(_pose())
    arm.raise_fault("reflex", "cartesian_reflex")
    before = h.data.ctrl[h.arm.act].copy()
    target, events = arm.send(_pose((0.1, 0, 0)))
    assert events == ["arm_fault"] and np.array_equal(h.data.ctrl[h.arm.act], before)
    assert arm.clear_fault() and arm.fault is None
    target, events = arm.send(_pose((0.3, 0, 0)))  # a new origin where the arm stands
    np.testing.assert_allclose(target[:3, 3], h.read().wrist[:3, 3], atol=0.01)
    assert arm.report()["faults"][0]["source"] == "arm reflex"


def test_sim_arm_refuses_a_real_hand_and_needs_its_scene():
    with pytest.raises(ValueError, match="carries the simulated hand"):
        ARMS.get("sim").robot_options("dynamixel", {})
    plain = SimHand(SimHandConfig(hand="leap"))
    with pytest.raises(ValueError, match="arm=panda"):
        ARMS.make("sim").attach(plain)


def test_session_with_the_arm_turns_the_hand_with_the_wrist():
    """In a session the operator's wrist drives the arm: turning the wrist 90 degrees about
    the vertical turns the palm (what controllers read as the wrist) with it, the hand's own
    mount filter never runs, and the report carries the arm."""
    frames = good_frames(60)
    for i, f in enumerate(frames):
        f.wrist[:] = _pose((0.5, 0.0, 1.0), np.radians(90) * min(i / 30, 1.0))
    cfg = SessionConfig(hand="leap", arm="sim", robot_options={"wrist": "palm_down"}, fast=True)
    session = Session(cfg, device=ScriptedDevice(frames))
    with session:
        recs = [step(session) for _ in range(60)]
    rep = session.report()
    r0, r1 = recs[1].state.wrist[:3, :3], recs[-1].state.wrist[:3, :3]
    turn = r1 @ r0.T
    assert np.degrees(np.arccos(np.clip((np.trace(turn) - 1) / 2, -1, 1))) == pytest.approx(
        90, abs=5
    )
    assert turn[2, 2] == pytest.approx(1.0, abs=0.02)  # about the vertical
    assert recs[-1].arm is not None and recs[-1].arm.target is not None
    assert rep["arm"]["commands_sent"] > 50 and rep["arm"]["workspace_violations"] == 0
    assert "wrist_events" not in rep  # the mount's filter is not on the path
    json.dumps(rep)  # JSON all the way


def test_run_with_the_sim_arm_from_the_command_line(tmp_path):
    from teleop_app.cli import main

    out = tmp_path / "r.json"
    assert main(["run", "--hand", "leap", "--arm", "sim", "--device",
                 "replay:assets/clips/demo.npz", "--duration", "2", "--fast",
                 "--report", str(out)]) == 0  # fmt: skip
    arm = json.loads(out.read_text())["arm"]
    assert arm["backend"] == "sim" and arm["commands_sent"] > 0
    assert arm["workspace_violations"] == 0 and arm["speed_violations"] == 0
    assert main(["run", "--hand", "leap", "--arm", "sim:max_tilt_deg=-1", "--device",
                 "replay:assets/clips/demo.npz", "--duration", "1", "--fast"]) == 2  # fmt: skip


def test_recordings_carry_the_arm_and_replay_on_the_simulated_arm(tmp_path):
    """`record --arm sim`: each tick's arm joints, measured palm and palm target; the
    counterfactual replay runs the episode on the simulated arm again and records the same
    features (the same commands: the same arm motion, from the recorded start)."""
    from teleop_app.cli import main
    from teleop_app.recording.reader import RecordedDataset
    from teleop_app.recording.replay import counterfactual

    ds = tmp_path / "ds"
    assert main(["record", "--out", str(ds), "--hand", "leap", "--arm", "sim",
                 "--duration", "2", "--fast"]) == 0  # fmt: skip
    data = RecordedDataset(ds)
    assert data.features["observation.arm.state"]["names"][0] == "joint1"
    ep = data.episode(0)
    q = np.asarray(ep["observation.arm.state"], float)
    palm = np.asarray(ep["observation.arm.palm"], float).reshape(-1, 4, 4)
    assert q.shape == (40, 7) and np.all(np.isfinite(q))
    np.testing.assert_allclose(palm[:, 3], np.tile([0, 0, 0, 1.0], (40, 1)), atol=1e-6)
    sent = np.asarray(ep["action.arm.palm"], float)
    assert np.isfinite(sent[-1]).all()
    report, run = counterfactual(ds, 0)
    assert run["arm"] == "sim" and report["exact_start"]
    assert report["arm"]["replayed_on"] == "sim"
    assert report["arm"]["palm_difference_mm"]["max"] < 1.0  # the same commands, the same arm
    json.dumps(report)


def test_the_hardware_panel_shows_the_arm_and_its_faults():
    """The app's hardware monitor shows an arm row (mode, model, answering) and the arm's
    faults with the hand's; the session's Clear fault is the arm's explicit recovery."""
    from teleop_app.app_models import ERROR, health_rows, read_hardware

    session = Session(SessionConfig(hand="leap", arm="sim", fast=True),
                      device=ScriptedDevice(good_frames(5)))  # fmt: skip
    with session:
        step(session)
        health, fault, faults = read_hardware(session)
        assert health["arm"]["model"] == "panda (sim)" and health["arm"]["answering"]
        assert health["arm"]["joint"].startswith("joint position (IK), ")
        assert fault is None and faults == []
        session.arm.raise_fault("link", "no state from the arm for over 0.25 s")
        assert step(session).events[0] == "arm_fault"  # the hand holds too
        health, fault, faults = read_hardware(session)
        assert fault.startswith("arm link") and not health["arm"]["answering"]
        rows = {r.name: r for r in health_rows(health, fault.partition(":")[0])}
        assert rows["arm"].problems["name"] == ERROR
        fut = session.clear_fault()
        step(session)
        assert fut.result() and session.arm.fault is None


def test_a_hand_on_a_real_arm_is_drawn_from_the_measured_joints():
    """Without a simulator (a real hand on a real arm) the 3D view composes the same scene
    and sets the arm's measured joints: the palm lands where the simulated arm puts it."""
    from teleop_app.video import MeasuredScene

    sim = SimHand(SimHandConfig(hand="leap", wrist="palm_up", arm="panda"))
    measured = MeasuredScene(sim.hand, arm="panda")
    data = mujoco.MjData(measured.model)
    measured.load(sim.hand.default_open, data, sim.arm.start_q)
    site = measured.model.site(site_names()[0]).id
    np.testing.assert_allclose(data.site_xpos[site], sim.read().wrist[:3, 3], atol=1e-6)
    np.testing.assert_allclose(
        data.site_xmat[site].reshape(3, 3), sim.read().wrist[:3, :3], atol=1e-6
    )
