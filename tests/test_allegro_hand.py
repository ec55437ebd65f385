"""The Allegro hand v4 over CAN (``--robot allegro_can``) against an emulated hand on a
python-can virtual bus: start-up as Wonik's driver does it, the host PD loop at the hand's
rate turning filtered targets into clamped torques, faults that hold the hand and name the
finger, servo off on exit, and the session at 20 Hz."""

import itertools
import json
import time

import numpy as np
import pytest

from assets.hands import load_hand
from devices.robots import allegro_protocol as proto
from devices.robots.allegro_can import AllegroCANError
from devices.robots.base import ROBOTS
from devices.robots.emulators.allegro_can import AllegroCANHand

ALLEGRO = load_hand("allegro")
_channels = itertools.count()


def _channel() -> str:
    return f"allegro-test-{next(_channels)}-{time.monotonic_ns()}"


def _eventually(cond, timeout=1.0) -> bool:
    """The emulator handles frames in its own thread: wait for what it should reach."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def _start_q() -> np.ndarray:
    return np.clip(np.full(16, 0.3), ALLEGRO.lower, ALLEGRO.upper)


def test_start_up_and_pd_tracking():
    ch = _channel()
    with AllegroCANHand(channel=ch, start_q=_start_q()) as emu:
        hand = ROBOTS.make("allegro_can", hand="allegro", channel=ch, interface="virtual")
        hand.connect()
        try:
            assert emu.servo_on and emu.period_ms == (3, 0, 0)
            # the hand starts where it is: measured = the emulator's, no jump
            np.testing.assert_allclose(hand.read().q, emu.q, atol=1e-3)
            goal = _start_q()
            goal[[1, 5, 9, 13]] += 0.4
            for _ in range(30):  # 1.5 s at 20 Hz through the safety filter
                hand.send(goal)
                time.sleep(0.05)
            np.testing.assert_allclose(emu.q, goal, atol=0.05)
            np.testing.assert_allclose(hand.read().q, emu.q, atol=0.01)
            rep = hand.hand_report()
            assert rep["bus"]["hand"]["hand_version"] == 4 and rep["faults"] == []
            pd = rep["bus"]["timing_ms"]["pd_period"]
            assert pd["n"] > 200 and pd["p50"] == pytest.approx(3.0, rel=0.5)
            assert emu.stats.get("rx:pwm_over_limit", 0) == 0  # the host clamps
        finally:
            hand.disconnect()
        assert _eventually(lambda: not emu.servo_on)
        last = {f: pwm for _, f, pwm in emu.torque_log}
        assert all(v == (0, 0, 0, 0) for v in last.values())  # zero torque, then servo off


def test_torques_stay_inside_the_clamps_for_a_far_target():
    ch = _channel()
    with AllegroCANHand(channel=ch, start_q=_start_q()) as emu:
        hand = ROBOTS.make("allegro_can", hand="allegro", channel=ch, interface="virtual", kp=50.0)
        hand.connect()
        try:
            hand._write(ALLEGRO.upper.copy())  # straight to the PD loop: a huge error
            time.sleep(0.2)
        finally:
            hand.disconnect()
    pwm = np.array([p for _, _, p in emu.torque_log])
    fingers = np.array([f for _, f, _ in emu.torque_log])
    assert np.all(np.abs(pwm) <= proto.PWM_LIMITS[fingers] + 1e-9)
    assert np.any(np.abs(pwm) == proto.PWM_LIMITS[fingers])  # it did saturate


def test_no_hand_or_the_wrong_one_is_a_clear_error():
    with pytest.raises(AllegroCANError, match="did not answer the info request"):
        ROBOTS.make(
            "allegro_can", hand="allegro", channel=_channel(), interface="virtual"
        ).connect()
    ch = _channel()
    with (
        AllegroCANHand(channel=ch, hardware_version=0x0300),
        pytest.raises(AllegroCANError, match="version 3"),
    ):
        ROBOTS.make("allegro_can", hand="allegro", channel=ch, interface="virtual").connect()
    with pytest.raises(ValueError, match="not a 16-joint Allegro"):
        ROBOTS.make("allegro_can", hand="leap", channel="x", interface="virtual")


def _run(tmp_path, ch: str, seconds: float):
    from teleop_app.cli import main

    report = tmp_path / "report.json"
    rc = main(["run", "--hand", "allegro", "--robot",
               f"allegro_can:channel={ch},interface=virtual,health_hz=5",
               "--device", "replay:assets/clips/demo.npz", "--controller", "retarget",
               "--duration", str(seconds), "--report", str(report)])  # fmt: skip
    return rc, json.loads(report.read_text())


def test_session_at_20hz_with_the_pd_loop(tmp_path):
    ch = _channel()
    with AllegroCANHand(channel=ch) as emu:
        rc, rep = _run(tmp_path, ch, 3.0)
        q_end = emu.q
        assert _eventually(lambda: not emu.servo_on)
    assert rc == 0
    assert rep["rate_hz"] == pytest.approx(20.0, rel=0.1) and rep["limit_violations"] == 0
    hand = rep["hand"]
    assert hand["backend"] == "allegro_can" and hand["faults"] == []
    # measured when the session closed; the fingers coast a little after servo off
    np.testing.assert_allclose(hand["measured_q"], q_end, atol=0.15)
    assert all(h["temperature_c"] == 30 for h in hand["health"].values())
    assert np.ptp(q_end) > 0.1  # the clip moved the fingers


def test_a_silent_finger_holds_the_hand_and_is_named():
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    ch = _channel()
    with AllegroCANHand(channel=ch) as emu:
        cfg = session_config(
            hand="allegro",
            robot=f"allegro_can:channel={ch},interface=virtual",
            device="replay:assets/clips/demo.npz",
            controller="retarget",
        )
        session = Session(cfg)
        with session:
            session.run(0.5)
            emu.silence_finger(2)
            session.run(1.0)
            cleared = session.clear_fault()  # applied by the loop's next tick
            session.run(0.1)
            assert not cleared.result(timeout=5)  # still silent
            emu.unsilence_finger(2)
            session.run(0.2)
            cleared = session.clear_fault()
            session.run(0.2)
            assert cleared.result(timeout=5)
        rep = session.report()
    faults = rep["hand"]["faults"]
    assert faults[0]["source"] == "finger 2"
    assert faults[0]["reason"] == "no position frames for 100 ms"
    assert rep["safety_events"]["hand_fault"] >= 10
    assert rep["hand"]["fault_active"] is None


def test_overheating_is_a_fault():
    ch = _channel()
    with AllegroCANHand(channel=ch) as emu:
        hand = ROBOTS.make(
            "allegro_can", hand="allegro", channel=ch, interface="virtual", health_hz=50
        )
        hand.connect()
        try:
            emu.set_temperature(1, 65)
            for _ in range(10):
                hand.read()
                time.sleep(0.03)
            assert str(hand.fault) == "finger 1: overheating (65 C, limit 60 C)"
        finally:
            hand.disconnect()


def test_silent_fingers_versus_a_starved_host():
    from devices.robots.allegro_can import _silent_fingers

    assert _silent_fingers(np.array([0.003, 0.2, 0.004, 0.003]), 0.1) == {1}
    assert _silent_fingers(np.array([0.2, 0.2, 0.25, 0.2]), 0.1) == set()  # starved, not lost
    assert _silent_fingers(np.array([0.5, 0.5, 0.6, 0.5]), 0.1) == {0, 1, 2, 3}
    # a sender stalled between fingers of one burst: the others moved on by one frame only
    age = np.array([0.003, 0.003, 0.15, 0.15])
    assert _silent_fingers(age, 0.1, np.array([0, 0, 2, 1]), 48) == set()
    assert _silent_fingers(age, 0.1, np.array([0, 0, 100, 99]), 48) == {2, 3}


def test_gravity_compensation_torques_follow_the_mount():
    from devices.robots.allegro_can import _GravityModel

    up, down = _GravityModel(ALLEGRO, "palm_up"), _GravityModel(ALLEGRO, "palm_down")
    q = _start_q()
    np.testing.assert_allclose(up(q), -down(q), atol=1e-9)
    assert np.abs(up(q)).max() > 1e-3


def test_robot_check_on_the_allegro(tmp_path, capsys):
    from teleop_app.cli import main

    ch = _channel()
    with AllegroCANHand(channel=ch, start_q=_start_q()):
        js = tmp_path / "check.json"
        assert main(["robot-check", "--robot", f"allegro_can:channel={ch},interface=virtual",
                     "--hand", "allegro", "--move", "--joints", "ffj1", "thj2",
                     "--json", str(js)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "| finger 0 |" in out and "moving ffj1 by" in out
    rows = {r["joint"]: r for r in json.loads(js.read_text())["joints"]}
    for j in ("ffj1", "thj2"):
        assert rows[j]["result"] == "ok"
        assert rows[j]["moved"] == pytest.approx(rows[j]["step"], abs=0.05)
        assert rows[j]["others"] < 0.05
