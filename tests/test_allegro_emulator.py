"""The Allegro v4 CAN protocol codecs and the emulated hand on python-can's virtual bus.

Real-time tests count frames with wide margins (the machine may be busy); the logic tests
run the emulator lock-step (``realtime=False``), which is deterministic.
"""

from __future__ import annotations

import itertools
import time

import can
import numpy as np
import pytest

from devices.robots import allegro_protocol as P
from devices.robots.emulators.allegro_can import (
    DEFAULT_LOWER,
    DEFAULT_UPPER,
    AllegroCANHand,
)

_CHANNELS = itertools.count()
PERIOD_S = P.DEFAULT_PERIOD_MS / 1000


@pytest.fixture
def channel(request) -> str:
    """A channel name no other test shares."""
    return f"allegro-test-{request.node.name}-{next(_CHANNELS)}"


@pytest.fixture
def client(channel):
    """The host's bus on ``channel``."""
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def send(bus: can.BusABC, cmd: int, data: bytes = b"", *, rtr: bool = False, dev: int = 0):
    bus.send(
        can.Message(
            arbitration_id=P.arbitration_id(cmd, dev),
            data=data,
            is_extended_id=False,
            is_remote_frame=rtr,
        )
    )


def send_torques(bus: can.BusABC, tau16: np.ndarray, fingers=range(4)) -> None:
    for f in fingers:
        send(bus, P.CMD_TORQUE + f, P.encode_torques(tau16[4 * f : 4 * f + 4], f))


def drain(bus: can.BusABC, seconds: float = 0.0) -> list[can.Message]:
    """Every frame that arrives within ``seconds`` (at least those already queued)."""
    out = []
    end = time.perf_counter() + seconds
    while True:
        msg = bus.recv(max(0.0, end - time.perf_counter()))
        if msg is None:
            return out
        out.append(msg)


def reply(bus: can.BusABC, cmd: int, timeout: float = 1.0) -> can.Message | None:
    """The next frame with command ``cmd`` within ``timeout`` seconds (others skipped)."""
    end = time.perf_counter() + timeout
    while (left := end - time.perf_counter()) > 0:
        msg = bus.recv(left)
        if msg is not None and P.split_id(msg.arbitration_id)[0] == cmd:
            return msg
    return None


def wait_until(pred, timeout: float = 1.0) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if pred():
            return True
        time.sleep(0.001)
    return pred()


def start_up(bus: can.BusABC) -> None:
    """The ROS driver's start-up (AllegroHandDrv::init) after the flush."""
    send(bus, P.CMD_SERVO_OFF)
    send(bus, P.RTR_INFO, rtr=True)
    send(bus, P.RTR_SERIAL, rtr=True)
    send(bus, P.CMD_PERIOD, P.encode_period(3, 0, 0))
    send(bus, P.CMD_SERVO_ON)


def positions_by_finger(msgs: list[can.Message]) -> dict[int, int]:
    counts = dict.fromkeys(range(4), 0)
    for m in msgs:
        cmd, _ = P.split_id(m.arbitration_id)
        if P.RTR_POSITION <= cmd < P.RTR_POSITION + 4:
            counts[cmd - P.RTR_POSITION] += 1
    return counts


# ---------------------------------------------------------------------------------------
# 1. protocol


def test_position_round_trip_within_one_count():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.uniform(-2.5, 2.5, 4)
        data = P.encode_positions(q)
        assert len(data) == 8
        assert np.all(np.abs(P.decode_positions(data) - q) <= P.RAD_PER_COUNT / 2 + 1e-12)
    # the scaling: 65536 counts are 333.3 degrees
    assert P.decode_positions(P.encode_positions([np.deg2rad(90.0)] * 4))[0] == pytest.approx(
        np.deg2rad(90.0), abs=P.RAD_PER_COUNT
    )
    with pytest.raises(ValueError, match="int16"):
        P.encode_positions([3.5, 0, 0, 0])
    with pytest.raises(ValueError, match="finite"):
        P.encode_positions([np.nan, 0, 0, 0])
    with pytest.raises(ValueError, match="4 values"):
        P.encode_positions([0.0] * 3)


def test_torques_clamp_per_joint():
    assert P.PWM_LIMITS.shape == (4, 4)
    assert P.TORQUE_TO_PWM == 1200.0
    assert abs(P.CONTROL_HZ - 1000 / 3) < 0.1
    for f in range(4):
        big = P.decode_pwm(P.encode_torques([10.0, -10.0, 10.0, -10.0], f))
        np.testing.assert_array_equal(np.abs(big), P.PWM_LIMITS[f])
        assert np.all(np.sign(big) == [1, -1, 1, -1])
    np.testing.assert_array_equal(P.PWM_LIMITS[0], [375, 675, 450, 285])
    np.testing.assert_array_equal(P.PWM_LIMITS[3], [525, 405, 270, 270])
    # small torques: tau * 1200, truncated toward zero like the driver's (short) cast
    small = np.array([0.1, -0.05, 0.0, 0.2001])
    np.testing.assert_array_equal(P.decode_pwm(P.encode_torques(small, 0)), [120, -60, 0, 240])
    np.testing.assert_allclose(P.decode_torques(P.encode_torques(small, 0)), [0.1, -0.05, 0, 0.2])
    with pytest.raises(ValueError, match="finger 4"):
        P.encode_torques(small, 4)


def test_identifiers_round_trip():
    for cmd in (0x40, 0x41, 0x60, 0x63, 0x81, 0x68, 0x80, 0x88, 0x20, 0x23, 0x30, 0x3B, 0xE3):
        for dev in range(4):
            aid = P.arbitration_id(cmd, dev)
            assert aid <= 0x7FF and P.split_id(aid) == (cmd, dev)
    assert P.arbitration_id(0x20) == 0x80 and P.arbitration_id(0x60, 1) == 0x181
    with pytest.raises(ValueError, match="device ID"):
        P.arbitration_id(0x40, 4)
    with pytest.raises(ValueError, match="11-bit"):
        P.split_id(0x800)
    assert P.command_name(0x62) == "torque[2]" and P.command_name(0x40) == "servo_on"


def test_malformed_frames_raise():
    for decode, what in (
        (P.decode_positions, "position"),
        (P.decode_pwm, "torque"),
        (P.decode_torques, "torque"),
        (P.decode_period, "period"),
        (P.decode_info, "info"),
        (P.decode_serial, "serial"),
        (P.decode_temperature, "temperature"),
    ):
        with pytest.raises(ValueError, match=f"malformed {what} frame: 3 data bytes"):
            decode(b"\x00\x01\x02")
    assert P.decode_period(P.encode_period(3)) == (3, 0, 0)
    assert len(P.encode_period(3)) == 6
    info = P.HandInfo(0x0400, 0x0102, False, 31, P.STATUS_SERVO_ON)
    assert P.decode_info(P.encode_info(info)) == info and info.hand_version == 4
    assert P.decode_serial(P.encode_serial("ABC")) == "ABC"
    assert P.decode_temperature(P.encode_temperature(45.2)) == 45


# ---------------------------------------------------------------------------------------
# 2. start-up and streaming (real time)


def test_virtual_bus_links_channels_without_echo(channel):
    with (
        can.Bus(interface="virtual", channel=channel) as a,
        can.Bus(interface="virtual", channel=channel) as b,
    ):
        send(a, P.CMD_SERVO_ON)
        got = b.recv(1.0)
        assert got is not None and got.arbitration_id == P.arbitration_id(P.CMD_SERVO_ON)
        assert a.recv(0.05) is None  # no echo of one's own frames


def test_start_up_like_the_driver(channel, client):
    with AllegroCANHand(channel=channel) as hand:
        send(client, P.CMD_SERVO_OFF)
        send(client, P.RTR_INFO, rtr=True)
        info = reply(client, P.RTR_INFO)
        assert info is not None and P.split_id(info.arbitration_id) == (P.RTR_INFO, 0)
        decoded = P.decode_info(info.data)
        assert decoded.hand_version == 4 and not decoded.servo_on and not decoded.left
        send(client, P.RTR_SERIAL, data=b"")  # an empty data frame is a request too
        serial = reply(client, P.RTR_SERIAL)
        assert serial is not None and P.decode_serial(serial.data) == "EMU00001"

        send(client, P.CMD_PERIOD, P.encode_period(3, 0, 0))
        assert wait_until(lambda: hand.period_ms == (3, 0, 0))
        assert positions_by_finger(drain(client, 0.05)) == dict.fromkeys(range(4), 0)

        send(client, P.CMD_SERVO_ON)
        assert wait_until(lambda: hand.servo_on)
        window = 0.3
        msgs = drain(client, window)
        expected = window / PERIOD_S
        for f, n in positions_by_finger(msgs).items():
            assert 0.6 * expected <= n <= 1.2 * expected, (f, n, expected)
        first = next(m for m in msgs if P.split_id(m.arbitration_id)[0] == P.RTR_POSITION)
        assert len(first.data) == 8 and not first.is_extended_id
        np.testing.assert_allclose(P.decode_positions(first.data), hand.q[:4], atol=P.RAD_PER_COUNT)
        send(client, P.RTR_INFO, rtr=True)
        info = reply(client, P.RTR_INFO)
        assert info is not None and P.decode_info(info.data).servo_on
        assert hand.error is None


# ---------------------------------------------------------------------------------------
# 3. a host PD loop drives the joints (real time, and lock-step)


def run_pd(bus, target, seconds, kp=3.0, kd=0.1) -> int:
    """The host's torque PD on the position stream (as allegro_node_pd.cpp, unfiltered):
    a torque set after each complete set of four position frames; returns the sets."""
    q = np.zeros(16)
    q_prev = None
    mask = 0
    sets = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        msg = bus.recv(0.02)
        if msg is None:
            continue
        cmd, _ = P.split_id(msg.arbitration_id)
        if not P.RTR_POSITION <= cmd < P.RTR_POSITION + 4:
            continue
        f = cmd - P.RTR_POSITION
        q[4 * f : 4 * f + 4] = P.decode_positions(msg.data)
        mask |= 1 << f
        if mask != 0xF:
            continue
        mask = 0
        v = np.zeros(16) if q_prev is None else (q - q_prev) / PERIOD_S
        q_prev = q.copy()
        send_torques(bus, kp * (target - q) - kd * v)
        sets += 1
    return sets


def test_host_pd_loop_reaches_target(channel, client):
    target = (DEFAULT_LOWER + DEFAULT_UPPER) / 2 + 0.1
    with AllegroCANHand(channel=channel) as hand:
        start_up(client)
        sets = run_pd(client, target, 0.5)
        assert sets > 0.5 * 0.5 / PERIOD_S
        err = np.abs(hand.q - target)
        assert err.max() < 0.05, err
        assert hand.stats.get("rx:pwm_over_limit", 0) == 0
        assert hand.error is None


def lockstep_pd(channel, client, target, steps) -> np.ndarray:
    with AllegroCANHand(channel=channel, realtime=False) as hand:
        start_up(client)
        q_prev = None
        for _ in range(steps):
            frames = {}
            while len(frames) < 4:
                msg = client.recv(1.0)
                assert msg is not None, "the lock-step hand sent no positions"
                cmd, _ = P.split_id(msg.arbitration_id)
                if P.RTR_POSITION <= cmd < P.RTR_POSITION + 4:
                    frames[cmd - P.RTR_POSITION] = P.decode_positions(msg.data)
            q = np.concatenate([frames[f] for f in range(4)])
            v = np.zeros(16) if q_prev is None else (q - q_prev) / PERIOD_S
            q_prev = q
            send_torques(client, 3.0 * (target - q) - 0.1 * v)
        assert wait_until(lambda: hand.stats.get("torque_sets", 0) == steps)
        assert hand.time_s == pytest.approx(steps * PERIOD_S)
        return hand.q


def test_lockstep_pd_is_deterministic(channel, client):
    target = (DEFAULT_LOWER + DEFAULT_UPPER) / 2 - 0.1
    steps = round(0.3 / PERIOD_S)
    first = lockstep_pd(channel, client, target, steps)
    assert np.abs(first - target).max() < 0.02
    again = channel + "-again"
    with can.Bus(interface="virtual", channel=again) as bus:
        second = lockstep_pd(again, bus, target, steps)
    np.testing.assert_array_equal(first, second)


# ---------------------------------------------------------------------------------------
# 4. torque sets, servo off, timeout (lock-step)


def servo_on_lockstep(hand: AllegroCANHand, client) -> None:
    start_up(client)
    assert wait_until(lambda: hand.servo_on)
    drain(client, 0.01)


def test_torques_applied_only_after_all_four_fingers(channel, client):
    with AllegroCANHand(channel=channel, realtime=False) as hand:
        servo_on_lockstep(hand, client)
        tau = np.full(16, 0.1)
        send_torques(client, tau, fingers=(0, 1, 2))
        assert wait_until(lambda: len(hand.torque_log) == 3)
        np.testing.assert_array_equal(hand.applied_torque, 0.0)
        assert hand.time_s == 0.0  # no complete set: lock-step time stands still
        send_torques(client, tau, fingers=(3,))
        assert wait_until(lambda: hand.stats.get("torque_sets", 0) == 1)
        np.testing.assert_allclose(hand.applied_torque, 0.1)
        assert hand.time_s == pytest.approx(PERIOD_S)
        _, finger, pwm = hand.torque_log[-1]
        assert finger == 3 and pwm == (120, 120, 120, 120)
        # positions of the new state came back, one set
        assert positions_by_finger(drain(client, 0.05)) == dict.fromkeys(range(4), 1)


def test_servo_off_zero_torque_and_coast(channel, client):
    with AllegroCANHand(channel=channel, realtime=False) as hand:
        servo_on_lockstep(hand, client)
        q0 = hand.q
        for _ in range(20):
            send_torques(client, np.full(16, 0.2))
        assert wait_until(lambda: hand.stats.get("torque_sets", 0) == 20)
        assert np.all(hand.dq > 1.0) and np.all(hand.q > q0)
        send(client, P.CMD_SERVO_OFF)
        assert wait_until(lambda: not hand.servo_on)
        np.testing.assert_array_equal(hand.applied_torque, 0.0)
        # torque frames while off are logged, not applied
        send_torques(client, np.full(16, 0.2))
        assert wait_until(lambda: len(hand.torque_log) == 84)
        np.testing.assert_array_equal(hand.applied_torque, 0.0)
        hand.advance(0.3)
        assert np.abs(hand.dq).max() < 1e-3  # at rest
        q = hand.q
        assert np.all(q >= DEFAULT_LOWER) and np.all(q <= DEFAULT_UPPER)
        hand.advance(0.1)
        np.testing.assert_allclose(hand.q, q, atol=1e-4)


def test_torque_timeout_and_hard_stops(channel, client):
    with AllegroCANHand(channel=channel, realtime=False) as hand:
        servo_on_lockstep(hand, client)
        send_torques(client, np.full(16, 1.0))  # clamped to the per-joint limits
        assert wait_until(lambda: hand.stats.get("torque_sets", 0) == 1)
        np.testing.assert_allclose(hand.applied_torque, P.TORQUE_LIMITS.ravel())
        hand.advance(0.04)
        assert np.any(hand.applied_torque > 0)
        hand.advance(0.02)  # 50 ms after the set: the watchdog drops the torque
        np.testing.assert_array_equal(hand.applied_torque, 0.0)
        assert hand.stats["torque_timeout"] == 1
        # full torque for long enough: every joint ends on its upper stop, not beyond
        for _ in range(250):
            send_torques(client, np.full(16, 1.0))
        assert wait_until(lambda: hand.stats.get("torque_sets", 0) == 251)
        np.testing.assert_allclose(hand.q, DEFAULT_UPPER)
        assert np.all(hand.dq == 0.0)


def test_malformed_and_foreign_frames_are_ignored(channel, client):
    with AllegroCANHand(channel=channel, realtime=False) as hand:
        servo_on_lockstep(hand, client)
        send(client, P.CMD_TORQUE, b"\x00\x01\x02\x03")  # 4 bytes, not 8
        send(client, P.CMD_TORQUE, P.encode_pwm([2000, 0, 0, 0]))  # over the clamp
        send(client, P.CMD_SERVO_ON, dev=1)  # another hand
        send(client, 0x1F0)  # unknown command
        assert wait_until(lambda: hand.stats.get("rx:unknown", 0) == 1)
        stats = hand.stats
        assert stats["rx:malformed"] == 1 and stats["rx:pwm_over_limit"] == 1
        assert stats["rx:other_device"] == 1
        send(client, P.RTR_IMU, rtr=True)
        imu = reply(client, P.RTR_IMU)
        assert imu is not None and bytes(imu.data) == bytes(6)
        assert hand.error is None


# ---------------------------------------------------------------------------------------
# 5. faults


def test_silenced_finger_and_temperatures(channel, client):
    with AllegroCANHand(channel=channel) as hand:
        start_up(client)
        assert wait_until(lambda: hand.servo_on)
        hand.silence_finger(2)
        drain(client, 0.02)  # frames already on their way
        counts = positions_by_finger(drain(client, 0.15))
        assert counts[2] == 0
        assert all(counts[f] > 10 for f in (0, 1, 3)), counts
        send(client, P.RTR_POSITION + 2, rtr=True)
        send(client, P.RTR_TEMPERATURE + 2, rtr=True)
        assert reply(client, P.RTR_TEMPERATURE + 2, timeout=0.1) is None
        send(client, P.RTR_INFO, rtr=True)
        info = reply(client, P.RTR_INFO)
        assert info is not None and P.decode_info(info.data).status & P.STATUS_COMM_FAULT

        hand.set_temperature(1, 72)
        send(client, P.RTR_TEMPERATURE + 1, rtr=True)
        temp = reply(client, P.RTR_TEMPERATURE + 1)
        assert temp is not None and P.decode_temperature(temp.data) == 72
        send(client, P.RTR_INFO, rtr=True)
        info = P.decode_info(reply(client, P.RTR_INFO).data)
        assert info.temperature_c == 72 and info.status & P.STATUS_HIGH_TEMPERATURE

        hand.unsilence_finger(2)
        drain(client, 0.02)
        assert positions_by_finger(drain(client, 0.1))[2] > 5
        assert hand.stats["tx:position[2]"] > 0


def test_drop_frames_is_seeded(channel, client):
    def dropped(seed: int) -> tuple[int, int]:
        ch = f"{channel}-{seed}-{next(_CHANNELS)}"
        with (
            AllegroCANHand(channel=ch, realtime=False, seed=seed) as hand,
            can.Bus(interface="virtual", channel=ch) as bus,
        ):
            start_up(bus)
            assert wait_until(lambda: hand.servo_on)
            hand.drop_frames(0.5)
            hand.advance(0.3)  # 100 position sets
            got = len(drain(bus, 0.05))
            return hand.stats["tx:dropped"], got

    a, b = dropped(7), dropped(7)
    assert a == b
    n_dropped, _ = a
    assert 150 < n_dropped < 250  # of 400 position frames


def test_disconnect_and_reconnect(channel, client):
    with AllegroCANHand(channel=channel) as hand:
        start_up(client)
        assert wait_until(lambda: hand.servo_on)
        hand.disconnect()
        drain(client, 0.02)
        assert drain(client, 0.05) == []
        send(client, P.RTR_INFO, rtr=True)
        assert reply(client, P.RTR_INFO, timeout=0.05) is None
        assert not hand.servo_on and hand.period_ms == (0, 0, 0)
        hand.reconnect()
        send(client, P.RTR_INFO, rtr=True)
        assert reply(client, P.RTR_INFO) is not None


# ---------------------------------------------------------------------------------------
# 6. close


def test_close_is_prompt_and_idempotent(channel, client):
    hand = AllegroCANHand(channel=channel)
    start_up(client)
    assert wait_until(lambda: hand.servo_on)
    t = time.perf_counter()
    hand.close()
    assert time.perf_counter() - t < 0.5
    assert hand.closed and not hand._thread.is_alive()
    hand.close()  # again: nothing happens
    drain(client, 0.02)
    assert drain(client, 0.05) == []  # nothing streams after close
    with AllegroCANHand(channel=channel, realtime=False) as lockstep:
        pass
    assert lockstep.closed
    with pytest.raises(RuntimeError, match="closed"):
        lockstep.advance(0.01)


def test_constructor_checks():
    with pytest.raises(ValueError, match="outside the joint limits at thj0"):
        AllegroCANHand(channel="unused-a", start_q=np.zeros(16))
    with pytest.raises(ValueError, match="device ID"):
        AllegroCANHand(channel="unused-b", dev_id=5)
    with AllegroCANHand(channel="unused-c") as hand:
        np.testing.assert_allclose(hand.q, np.clip(0.0, DEFAULT_LOWER, DEFAULT_UPPER))
        with pytest.raises(RuntimeError, match="realtime=False"):
            hand.advance(0.1)
        with pytest.raises(ValueError, match="finger 4"):
            hand.silence_finger(4)
