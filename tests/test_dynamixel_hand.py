"""The LEAP hand over Dynamixel (``--robot dynamixel``) against an emulated Protocol 2.0 bus
on a pseudo-terminal, through ROBOTIS's own ``dynamixel-sdk``: start-up order, the motor map,
every goal inside the limits and the rate limit, faults that hold the hand and name the
servo, torque off on exit, and the session at 20 Hz."""

import json
import time

import numpy as np
import pytest

from assets.hands import load_hand
from devices.robots.base import ROBOTS
from devices.robots.dynamixel import (
    ADDR_BUS_WATCHDOG,
    ADDR_D_GAIN,
    ADDR_GOAL_CURRENT,
    ADDR_GOAL_POSITION,
    ADDR_OPERATING_MODE,
    ADDR_P_GAIN,
    ADDR_TORQUE_ENABLE,
    TICKS_PER_RAD,
    DynamixelError,
    DynamixelHand,
    hw_error_text,
    latency_timer_ms,
)
from devices.robots.emulators.dynamixel import DynamixelBus

LEAP = load_hand("leap")
MAP = LEAP.spec.hardware


def _hand(bus: DynamixelBus, **kw) -> DynamixelHand:
    return ROBOTS.make("dynamixel", hand="leap", port=bus.port, **kw)


def _start_ticks(q: np.ndarray) -> dict[int, int]:
    hw = MAP.to_hardware(q)
    return {i: round(hw[i] * TICKS_PER_RAD) for i in range(16)}


def test_motor_map_round_trip():
    rng = np.random.default_rng(0)
    q = rng.uniform(LEAP.lower, LEAP.upper, size=(50, 16))
    hw = MAP.to_hardware(q)
    np.testing.assert_allclose(MAP.from_hardware(hw), q, atol=1e-12)
    # LEAP: real = sim + pi; motor 0 is the index side joint (Menagerie's if_rot, joint 1)
    home = MAP.to_hardware(np.zeros(16))
    np.testing.assert_allclose(home, np.pi)
    one = np.zeros(16)
    one[LEAP.joint_names.index("if_rot")] = 0.3
    assert np.argmax(MAP.to_hardware(one)) == 0
    one[:] = 0
    one[LEAP.joint_names.index("th_cmc")] = 0.3
    assert np.argmax(MAP.to_hardware(one)) == 12
    v = rng.normal(size=16)  # velocities: order and sign only
    np.testing.assert_allclose(MAP.from_hardware(MAP.to_hardware(v, offset=False), offset=False), v)


def test_start_up_order_and_settings():
    """Ping, torque off, mode 5, gains (side joints at 0.75), goal current, watchdog, goal =
    measured position, torque on; the measured pose is the bus's, in the spec's order."""
    q0 = np.clip(np.linspace(-0.2, 0.6, 16), LEAP.lower, LEAP.upper)
    with DynamixelBus(start_positions=_start_ticks(q0)) as bus:
        hand = _hand(bus, kp=800, kd=200, current_limit=300, watchdog_ms=400)
        hand.connect()
        try:
            np.testing.assert_allclose(hand.read().q, q0, atol=2 / TICKS_PER_RAD)
            for i in range(16):
                s = bus.servo(i)
                assert s.torque and s.mode == 5 and s.goal_current == 300
                side = i in (0, 4, 8)
                assert s.gains == ((600, 0, 150) if side else (800, 0, 200))
                assert s.bus_watchdog == 20  # 400 ms in 20 ms steps
                assert abs(s.goal - s.position) <= 2  # torque came on where it stood
                writes = [(w.address, w.data) for w in bus.writes if w.id == i]
                addrs = [a for a, _ in writes]
                order = [ADDR_OPERATING_MODE, ADDR_P_GAIN, ADDR_D_GAIN, ADDR_GOAL_CURRENT,
                         ADDR_BUS_WATCHDOG, ADDR_GOAL_POSITION]  # fmt: skip
                firsts = [addrs.index(a) for a in order]
                assert firsts[0] > addrs.index(ADDR_TORQUE_ENABLE)  # torque off first
                assert writes[addrs.index(ADDR_TORQUE_ENABLE)][1] == b"\x00"
                assert firsts[0] < firsts[3] < firsts[5]
                on = max(k for k, (a, d) in enumerate(writes) if a == ADDR_TORQUE_ENABLE)
                assert writes[on][1] == b"\x01" and on > firsts[5]
            h = hand.health()
            assert h["servo 0"]["model"] == "XC330-M288-T" and h["servo 0"]["firmware"] == 52
            assert h["servo 0"]["joint"] == "if_rot" and h["servo 1"]["joint"] == "if_mcp"
        finally:
            hand.disconnect()
        assert not any(bus.servo(i).torque for i in range(16))  # torque off on exit


def test_a_lost_status_packet_at_start_up_is_tried_again():
    """A ping or a register write whose status is lost (noise, or later than the SDK's ~34 ms
    on a busy host) is sent again rather than failing the start-up; a servo that never
    answers is still named."""
    with DynamixelBus() as bus:
        bus.lose_replies("ping", 1)
        bus.lose_replies("write", 2)
        hand = _hand(bus)
        hand.connect()
        try:
            assert bus.stats["replies_lost"] == 3
            assert all(bus.servo(i).torque and bus.servo(i).mode == 5 for i in range(16))
        finally:
            hand.disconnect()
    with DynamixelBus() as bus:
        bus.lose_replies("write", 3)  # three in a row for one register: named
        with pytest.raises(DynamixelError, match="servo 0: write 0 to address 64 failed"):
            _hand(bus).connect()


def test_missing_or_wrong_servos_are_named():
    ids = [i for i in range(16) if i not in (5, 9)]
    with DynamixelBus(ids=ids) as bus, pytest.raises(DynamixelError, match="servos 5, 9 did not"):
        _hand(bus).connect()
    with DynamixelBus(model_number=1060) as bus, pytest.raises(DynamixelError, match="model 1060"):
        _hand(bus).connect()
    with pytest.raises(DynamixelError, match="no such port"):
        ROBOTS.make("dynamixel", hand="leap", port="/dev/does-not-exist").connect()
    with pytest.raises(ValueError, match="drives the LEAP hand"):
        ROBOTS.make("dynamixel", hand="allegro")
    with pytest.raises(ValueError, match="baud"):
        ROBOTS.make("dynamixel", hand="leap", baud=12345)
    with DynamixelBus() as bus:
        import dynamixel_sdk as sdk

        port = sdk.PortHandler(bus.port)
        assert port.openPort() and port.setBaudRate(4_000_000)
        res, err = sdk.PacketHandler(2.0).write2ByteTxRx(port, 6, 38, 300)  # current limit
        port.closePort()
        assert (res, err) == (sdk.COMM_SUCCESS, 0)
        with pytest.raises(DynamixelError, match=r"servo 6: current_limit 350 mA is above"):
            _hand(bus).connect()


def test_latency_timer_is_read_from_sysfs(tmp_path):
    (tmp_path / "ttyUSB0").mkdir()
    (tmp_path / "ttyUSB0" / "latency_timer").write_text("16\n")
    assert latency_timer_ms("/dev/ttyUSB0", sysfs=tmp_path) == 16
    assert latency_timer_ms("/dev/pts/7", sysfs=tmp_path) is None
    assert hw_error_text(0x24) == "overheating, overload (hardware error 0x24)"


def _run(tmp_path, port: str, duration: float, extra=()):
    from teleop_app.cli import main

    report = tmp_path / "report.json"
    rc = main(["run", "--hand", "leap", "--robot", f"dynamixel:port={port},health_hz=5",
               "--device", "replay:assets/clips/demo.npz", "--controller", "retarget",
               "--duration", str(duration), "--report", str(report), *extra])  # fmt: skip
    return rc, json.loads(report.read_text()) if report.exists() else None


def test_session_at_20hz_inside_limits_and_rate_limit(tmp_path):
    with DynamixelBus() as bus:
        rc, rep = _run(tmp_path, bus.port, 3.0)
        assert rc == 0
        assert rep["rate_hz"] == pytest.approx(20.0, rel=0.1)
        assert rep["limit_violations"] == 0
        hand = rep["hand"]
        assert hand["backend"] == "dynamixel" and hand["drives_hardware"]
        assert hand["settings"]["port"] == bus.port and hand["faults"] == []
        # the report's measured joints are the bus's (read before torque went off)
        bus_q = MAP.from_hardware(np.array([bus.servo(i).position_rad for i in range(16)]))
        np.testing.assert_allclose(hand["measured_q"], bus_q, atol=0.03)
        assert hand["bus"]["timing_ms"]["read"]["n"] >= 55
        goals = [w for w in bus.writes if w.address == ADDR_GOAL_POSITION]
        assert not any(bus.servo(i).torque for i in range(16))
    lo = np.round(MAP.to_hardware(LEAP.lower) * TICKS_PER_RAD) - 1
    hi = np.round(MAP.to_hardware(LEAP.upper) * TICKS_PER_RAD) + 1
    per_servo: dict[int, list] = {}
    for w in goals:
        per_servo.setdefault(w.id, []).append((w.t, int.from_bytes(w.data, "little", signed=True)))
    speed = LEAP.spec.max_joint_speed_rad_s * TICKS_PER_RAD  # ticks per second
    moved = 0
    for i, seq in per_servo.items():
        t, g = np.array(seq).T
        assert np.all((g >= lo[i]) & (g <= hi[i])), f"servo {i}: a goal outside its limits"
        dg, dt = np.abs(np.diff(g)), np.diff(t)
        # the filter's step over the session's period; bus timestamps jitter by a few ms
        assert np.all(dg <= speed * np.maximum(dt, 0.05) * 1.25 + 1), f"servo {i}: too fast"
        moved += int(np.ptp(g) > 20)
    assert moved >= 8  # the replayed clip moved most of the hand
    assert len(per_servo) == 16 and min(len(s) for s in per_servo.values()) >= 55


@pytest.mark.parametrize(
    ("fault", "servo", "reason"),
    [("silence", 5, "no reply"), ("overload", 7, "overload (hardware error 0x20)")],
)
def test_a_failing_servo_holds_the_hand_and_is_named(fault, servo, reason):
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    with DynamixelBus() as bus:
        cfg = session_config(
            hand="leap",
            robot=f"dynamixel:port={bus.port},health_hz=5",
            device="replay:assets/clips/demo.npz",
            controller="retarget",
        )
        session = Session(cfg)
        t0 = time.monotonic()
        with session:
            session.run(1.0)
            getattr(bus, fault)(servo)
            n_goals = len([w for w in bus.writes if w.address == ADDR_GOAL_POSITION])
            records = []
            session.subscribe(records.append)
            session.run(1.5)
        assert time.monotonic() - t0 < 12  # no hang
        rep = session.report()
        faults = rep["hand"]["faults"]
        assert faults and faults[0]["source"] == f"servo {servo}"
        assert faults[0]["reason"] == reason
        assert rep["safety_events"].get("hand_fault", 0) >= 10
        held = [r for r in records if "hand_fault" in r.events]
        assert held and held[-1].info["hand_fault"] == f"servo {servo}: {reason}"
        # once held, every goal sent is the same: the hand does not move
        goals = [w for w in bus.writes if w.address == ADDR_GOAL_POSITION][n_goals:]
        last = {}
        for w in goals[-16 * 5 :]:
            last.setdefault(w.id, set()).add(w.data)
        assert all(len(v) == 1 for v in last.values())


def _overload(hand: DynamixelHand, bus: DynamixelBus, i: int) -> None:
    """Servo ``i`` overloads between two of the hand's reads (a health poll sees it)."""
    hand.read()
    bus.overload(i)
    time.sleep(0.02)
    hand.read()


def test_clearing_an_overload_reboots_the_servo():
    with DynamixelBus() as bus:
        hand = _hand(bus, health_hz=100)
        hand.connect()
        try:
            _overload(hand, bus, 3)
            assert str(hand.fault) == "servo 3: overload (hardware error 0x20)"
            assert not bus.servo(3).torque
            assert hand.clear_fault()
            assert hand.fault is None and bus.servo(3).torque and bus.servo(3).hardware_error == 0
            bus.silence(4)
            hand.read()
            assert str(hand.fault) == "servo 4: no reply"
            assert not hand.clear_fault()  # still silent
            bus.unsilence(4)
            assert hand.clear_fault()
            assert [str(f) for f in hand.faults] == [
                "servo 3: overload (hardware error 0x20)",
                "servo 4: no reply",
            ]
        finally:
            hand.disconnect()


def test_clearing_a_fault_does_not_trip_the_other_servos_watchdogs():
    """A reboot while the others hear nothing for longer than their bus watchdog (20 ms
    here, 500 ms by default on a loaded machine) would trip them and lock their goals: the
    clear turns the watchdogs off while it checks the servos, and on again at the end."""
    with DynamixelBus() as bus:
        hand = _hand(bus, health_hz=100, watchdog_ms=20)
        hand.connect()
        try:
            _overload(hand, bus, 3)
            assert hand.fault is not None
            assert hand.clear_fault(), [str(f) for f in hand.faults]
            assert hand.fault is None
            # armed again (1), or tripped since (-1): nothing drives the servos here
            assert all(bus.servo(i).bus_watchdog != 0 for i in range(16))
        finally:
            hand.disconnect()


def test_hold_on_disconnect_keeps_torque():
    with DynamixelBus() as bus:
        hand = _hand(bus, on_disconnect="hold", watchdog_ms=0)
        hand.connect()
        hand.disconnect()
        assert all(bus.servo(i).torque for i in range(16))


def test_fast_mode_is_refused_on_real_hands(tmp_path):
    with DynamixelBus() as bus:
        rc, _ = _run(tmp_path, bus.port, 1.0, extra=["--fast"])
        assert rc != 0


def test_robot_check_moves_each_joint_and_verifies_it(tmp_path, capsys):
    from teleop_app.cli import main

    with DynamixelBus() as bus:
        port = bus.port
        assert main(["robot-check", "--robot", f"dynamixel:port={port}", "--hand", "leap"]) == 0
        out = capsys.readouterr().out
        assert "| servo 0 |" in out and "nothing moved" in out
        # without --move: only the start-up's goal = measured position, one per servo
        assert sum(w.address == ADDR_GOAL_POSITION for w in bus.writes) == 16
        js = tmp_path / "check.json"
        assert main(["robot-check", "--robot", f"dynamixel:port={port}", "--hand", "leap",
                     "--move", "--joints", "if_mcp", "th_cmc", "--json", str(js)]) == 0  # fmt: skip
        assert "moving if_mcp by +0.15 rad: index if_mcp: closes" in capsys.readouterr().out
        rows = {r["joint"]: r for r in json.loads(js.read_text())["joints"]}
        for j in ("if_mcp", "th_cmc"):
            assert rows[j]["result"] == "ok"
            assert rows[j]["moved"] == pytest.approx(rows[j]["step"], abs=0.05)
        assert rows["if_rot"]["moved"] is None


def test_an_unplugged_adapter_holds_the_session_without_a_crash():
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    bus = DynamixelBus()
    cfg = session_config(hand="leap", robot=f"dynamixel:port={bus.port}",
                         device="replay:assets/clips/demo.npz", controller="retarget")  # fmt: skip
    session = Session(cfg)
    with session:
        session.run(0.5)
        bus.close()  # the U2D2 is pulled out
        session.run(0.5)
    rep = session.report()
    assert rep["hand"]["faults"][0]["source"] == "bus"
    assert "lost" in rep["hand"]["faults"][0]["reason"]
    assert rep["safety_events"]["hand_fault"] >= 8


def test_the_bus_benchmark_runs_every_backend(tmp_path):
    from bench.hand_bus import main

    out = tmp_path / "bus.json"
    assert main(["--seconds", "0.5", "--json", str(out)]) == 0
    recs = json.loads(out.read_text())
    assert [r["backend"] for r in recs] == ["sim", "dynamixel", "allegro_can"]
    for r in recs:
        assert r["ticks"] == 10 and r["limit_violations"] == 0 and r["faults"] == []
    assert "read" in recs[1]["bus_ms"] and "pd_period" in recs[2]["bus_ms"]


def test_a_recording_on_the_hand_carries_its_calibration_and_replays_on_the_simulator(tmp_path):
    from teleop_app.configs import session_config
    from teleop_app.recording.dataset import SESSIONS
    from teleop_app.recording.recorder import Recorder
    from teleop_app.recording.replay import counterfactual
    from teleop_app.session import Session

    root = tmp_path / "rec"
    with DynamixelBus() as bus:
        robot, clip = f"dynamixel:port={bus.port}", "replay:assets/clips/demo.npz"
        cfg = session_config(hand="leap", robot=robot, device=clip, controller="retarget")
        session = Session(cfg)
        rec = Recorder.for_session(root, session)
        session.subscribe(rec)
        with session:
            rec.start("pinch").result(timeout=10)
            session.run(1.0)
            rec.stop().result(timeout=30)
        rec.close()
    meta = json.loads((root / SESSIONS).read_text())["episodes"]
    hw = json.dumps(meta)
    assert '"hardware"' in hw and '"backend": "dynamixel"' in hw
    assert '"motor_ids": [1, 0, 2, 3, 5, 4' in hw.replace("\n", "")
    report, ran = counterfactual(root, 0)
    assert ran["robot"] == "sim" and "port" not in ran["robot_options"]
    assert report["replayed"]["robot"] == "sim"


def test_availability_checks_the_port_asked_for():
    from devices.robots.allegro_can import AllegroCAN
    from teleop_app.app_models import robot_reason, spec_options

    with DynamixelBus() as bus:
        assert DynamixelHand.availability({"port": bus.port}) is None
        assert robot_reason("dynamixel", spec_options(f"dynamixel:port={bus.port}")) is None
    assert "no port /dev/nothing-here" in DynamixelHand.availability({"port": "/dev/nothing-here"})
    assert AllegroCAN.availability({"interface": "virtual", "channel": "x"}) is None
    assert "no CAN interface (vcan9" in AllegroCAN.availability({"channel": "vcan9"})


def test_emulate_serves_a_bus_and_fails_on_cue(capsys):
    from teleop_app.cli import main

    assert main(["emulate", "dynamixel", "--seconds", "0.4", "--fault", "silence:3@0.1"]) == 0
    out = capsys.readouterr().out
    assert "emulated dynamixel bus: port=/dev/pts/" in out and "fault: silence 3" in out
    assert main(["emulate", "allegro", "--interface", "virtual", "--seconds", "0.2"]) == 0
    assert "channel=allegro0,interface=virtual" in capsys.readouterr().out
    assert main(["emulate", "allegro", "--fault", "overload:1@1"]) == 2
    assert "allegro faults are silence, hot" in capsys.readouterr().err
    assert main(["emulate", "dynamixel", "--fault", "silence"]) == 2


def test_the_hand_reports_each_joints_effort_from_its_present_current():
    """The read's ``effort`` (DexNDM's torque-aware dynamics data): each servo's present
    current through the XC330's torque constant, in the spec's joint order and sign: a joint
    asked to close further pushes positive, one asked to open pushes negative."""
    from devices.robots.dynamixel import XC330_NM_PER_A

    with DynamixelBus() as bus:
        hand = _hand(bus)
        hand.connect()
        try:
            state = hand.read()
            assert state.effort is not None and state.effort.shape == (16,)
            target = state.q.copy()
            signs = np.asarray(MAP.sign)
            j_pos, j_neg = 2, 6  # if_pip closing, mf_pip opening
            target[j_pos] += 0.2
            target[j_neg] -= 0.2
            target = np.clip(target, LEAP.lower, LEAP.upper)
            hand.send(target)
            e = hand.read().effort
            assert e[j_pos] > 0.01 and e[j_neg] < -0.01, e
            cap = 0.35 * XC330_NM_PER_A  # the goal current (350 mA) bounds it
            assert np.all(np.abs(e) <= cap + 1e-6)
            # the same number the health report shows for that servo, in N m
            i = MAP.motor_ids[j_pos]
            assert e[j_pos] == pytest.approx(
                signs[j_pos] * hand._servos[i]["current_ma"] / 1000 * XC330_NM_PER_A
            )
        finally:
            hand.disconnect()
