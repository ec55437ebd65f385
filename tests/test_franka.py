"""The real-arm backend (``--arm franka``) against ``franky-sim``: a libfranka network-protocol
server (MuJoCo behind it) on a loopback address, driven by the real client library
(franky-control) in the backend's worker process. Connect, stream a wrist trajectory, a
lost link that faults and holds, the operator's recovery, and a session from the command
line. franky-sim enforces no limits and raises no reflexes: the workspace and speed limits
checked here are ours."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from test_wrist import pose

franky = pytest.importorskip("franky", reason="franky-control is not installed")
franky_sim = pytest.importorskip("franky_sim", reason="franky-sim is not installed")

from devices.arms import ARMS  # noqa: E402
from devices.arms.franka import FrankaArm, FrankaError  # noqa: E402


class Server:
    """A franky-sim server with one robot, in this process (its 1 kHz loop on a thread)."""

    def __init__(self) -> None:
        from franky_sim import SimulationServer
        from franky_sim.mujoco_simulator import MujocoSimulator

        self.sim = MujocoSimulator(enable_visualization=False)
        self.sim.__enter__()
        self.robot = self.sim.add_robot()
        self.server = SimulationServer(self.sim)
        self.server.__enter__()
        self.server.run_async()
        self.host = self.robot.hostname

    def stop(self) -> None:
        if self.server is not None:
            self.server.__exit__(None, None, None)
            self.server = None

    def close(self) -> None:
        self.stop()
        self.sim.__exit__(None, None, None)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _stream(arm, n, amp=0.08, dt=0.05):
    for k in range(n):
        t = k * dt
        arm.read()
        arm.send(pose((amp * np.sin(t), 0.5 * amp * np.sin(0.7 * t), 0.0), 0.3 * np.sin(0.5 * t)))
        time.sleep(dt)


def test_listed_and_available():
    assert "franka" in ARMS.names() and FrankaArm.availability() is None


def test_streams_a_wrist_trajectory_and_tracks_it(server):
    arm = ARMS.make("franka", host=server.host, realtime=False)
    arm.connect()
    try:
        start = arm.read()
        assert start.q.shape == (7,) and np.isclose(np.linalg.det(start.palm[:3, :3]), 1.0)
        _stream(arm, 60)
        # far outside the workspace box and back: clipped, never sent
        arm.read()
        arm.send(pose((3.0, 0.0, 0.0)))
        time.sleep(0.05)
        rep = arm.report()
    finally:
        arm.disconnect()
    assert rep["commands_sent"] == 61 and rep["faults"] == []
    assert rep["targets_clipped_by_workspace"] == 1
    assert rep["workspace_violations"] == 0 and rep["speed_violations"] == 0
    # the arm's own motion generator follows the palm targets
    assert rep["tracking_error_mm"]["p50"] < 15 and rep["tracking_error_deg"]["p50"] < 2
    assert rep["mode"] == "Move" and rep["worker_latency_ms_p50"] < 50


def test_a_lost_link_faults_holds_and_needs_the_operator(server):
    arm = ARMS.make("franka", host=server.host, realtime=False, stale_s=0.2)
    arm.connect()
    try:
        _stream(arm, 10)
        server.stop()  # the robot is gone
        for _ in range(20):
            arm.read()
            _, events = arm.send(pose((0.05, 0.0, 0.0)))
            if arm.fault is not None:
                break
            time.sleep(0.05)
        assert arm.fault is not None and arm.fault.source == "arm link"
        sent = arm.commands
        _, events = arm.send(pose((0.06, 0.0, 0.0)))
        assert events == ["arm_fault"] and arm.commands == sent  # held: nothing sent
        assert not arm.clear_fault()  # the arm is still gone
    finally:
        arm.disconnect()


def test_a_missing_arm_is_a_clear_error():
    arm = ARMS.make("franka", host="127.0.0.1", realtime=False, timeout_s=1.0)
    with pytest.raises(FrankaError, match=r"franka at 127\.0\.0\.1"):
        arm.connect()
    assert arm._proc is None  # the worker is gone too


def test_run_with_the_franka_arm_on_franky_sim(server, tmp_path):
    """`dexteleop run --arm franka:host=...` (real time: a real arm never runs on a virtual
    clock) with the simulated hand on the replayed clip: the report's arm section."""
    from teleop_app.cli import main

    out = tmp_path / "r.json"
    spec = f"franka:host={server.host},realtime=false"
    clip = "replay:assets/clips/demo.npz"
    assert main(["run", "--hand", "leap", "--arm", spec, "--device", clip,
                 "--duration", "2", "--report", str(out)]) == 0  # fmt: skip
    arm = json.loads(out.read_text())["arm"]
    assert arm["backend"] == "franka" and arm["commands_sent"] > 20 and arm["faults"] == []
    assert arm["workspace_violations"] == 0 and arm["speed_violations"] == 0
    assert main(["run", "--hand", "leap", "--arm", spec, "--device",
                 "replay:assets/clips/demo.npz", "--duration", "1", "--fast"]) == 2  # fmt: skip


def test_a_reflex_reported_by_the_arm_faults_and_needs_a_recovery(server, monkeypatch):
    """A joint reflex in the arm's state stream (injected into franky-sim's robot state, as
    the real arm reports one): the backend faults and holds, the recovery is refused while
    the arm still reports it, and succeeds once it is gone."""
    from franky_sim.base_simulator import BaseRobot

    reflex = {"on": False}
    original = BaseRobot.state

    def state(robot):
        s = original.fget(robot)
        if reflex["on"]:
            errors = (False,) * 6 + (True,) + (False,) * 34  # libfranka's joint_reflex
            s = s.replace(current_errors=errors, errors=errors, reflex_reason=errors)
        return s

    monkeypatch.setattr(BaseRobot, "state", property(state))
    arm = ARMS.make("franka", host=server.host, realtime=False)
    arm.connect()
    try:
        _stream(arm, 5)
        reflex["on"] = True
        time.sleep(0.1)
        arm.read()
        assert arm.fault is not None and arm.fault.source == "arm reflex"
        assert "reflex" in arm.fault.reason
        sent = arm.commands
        _, events = arm.send(pose((0.05, 0.0, 0.0)))
        assert events == ["arm_fault"] and arm.commands == sent
        assert not arm.clear_fault()  # the arm still reports it
        reflex["on"] = False
        time.sleep(0.1)
        assert arm.clear_fault() and arm.fault is None
        _stream(arm, 3)
        assert arm.fault is None and arm.commands == sent + 3
    finally:
        arm.disconnect()


def test_an_estop_holds_the_arm_and_the_release_resumes(server):
    """While the session holds (e-stop, stale input) nothing new reaches the arm: it stands
    at its last target; after the release it follows the operator again."""
    arm = ARMS.make("franka", host=server.host, realtime=False)
    arm.connect()
    try:
        _stream(arm, 10)
        sent = arm.commands
        time.sleep(0.3)
        before = arm.read().palm[:3, 3]
        for k in range(10):  # the operator keeps moving during the e-stop
            arm.read()
            _, events = arm.send(pose((0.1 + 0.02 * k, 0.0, 0.0)), hold="emergency_stop")
            assert events == ["emergency_stop"]
            time.sleep(0.05)
        held = arm.read().palm[:3, 3]
        assert arm.commands == sent and np.linalg.norm(held - before) < 1e-3
        _stream(arm, 5)
        assert arm.commands == sent + 5 and arm.fault is None
    finally:
        arm.disconnect()
