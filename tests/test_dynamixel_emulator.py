"""The emulated Dynamixel bus, driven through ROBOTIS's own dynamixel-sdk over its pty: what
the SDK sends and decodes is the real wire format, so a backend tested against the emulator
speaks to a real LEAP hand the same way."""

from __future__ import annotations

import os
import termios
import time

import pytest

sdk = pytest.importorskip("dynamixel_sdk")
serial = pytest.importorskip("serial")

from dynamixel_sdk import (  # noqa: E402  (after the importorskip)
    COMM_RX_TIMEOUT,
    COMM_SUCCESS,
    GroupBulkRead,
    GroupSyncRead,
    GroupSyncWrite,
    PacketHandler,
    PortHandler,
)
from dynamixel_sdk.protocol2_packet_handler import Protocol2PacketHandler  # noqa: E402

from devices.robots.emulators.dynamixel import (  # noqa: E402
    ERR_ACCESS,
    ERR_ALERT,
    ERR_DATA_LIMIT,
    ERR_DATA_RANGE,
    ERR_INSTRUCTION,
    ERR_RESULT_FAIL,
    HW_INPUT_VOLTAGE,
    HW_OVERHEATING,
    HW_OVERLOAD,
    INST_PING,
    REGISTERS,
    DynamixelBus,
    crc16,
    instruction_packet,
    stuff,
    unstuff,
)

ADDR = {name: reg.address for name, reg in REGISTERS.items()}
IDS = list(range(16))
STUFFED = 0xFFFDFFFF  # goal position -131073: little-endian FF FF FD FF, stuffed on the wire


def signed(value: int, size: int) -> int:
    bits = 8 * size
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def u32(value: int) -> list[int]:
    return list((value & 0xFFFFFFFF).to_bytes(4, "little"))


@pytest.fixture
def bus():
    with DynamixelBus(ids=IDS, seed=0, realtime=False) as b:
        yield b
        assert b.failure is None


@pytest.fixture
def link(bus):
    """(port, packet handler) open on the bus at 4 Mbaud."""
    port = PortHandler(bus.port)
    assert port.openPort()
    assert port.setBaudRate(4_000_000)
    yield port, PacketHandler(2.0)
    port.closePort()


def write(link, dxl_id: int, address: int, value: int, size: int) -> tuple[int, int]:
    port, ph = link
    fn = {1: ph.write1ByteTxRx, 2: ph.write2ByteTxRx, 4: ph.write4ByteTxRx}[size]
    return fn(port, dxl_id, address, value)


def read(link, dxl_id: int, address: int, size: int) -> tuple[int, int, int]:
    port, ph = link
    fn = {1: ph.read1ByteTxRx, 2: ph.read2ByteTxRx, 4: ph.read4ByteTxRx}[size]
    return fn(port, dxl_id, address)


def leap_start(link, ids=IDS, torque=True, current_ma=350) -> None:
    """What the LEAP start-up writes: mode 5, goal current, torque on."""
    for i in ids:
        assert write(link, i, ADDR["torque_enable"], 0, 1) == (COMM_SUCCESS, 0)
        assert write(link, i, ADDR["operating_mode"], 5, 1) == (COMM_SUCCESS, 0)
        assert write(link, i, ADDR["goal_current"], current_ma, 2) == (COMM_SUCCESS, 0)
        if torque:
            assert write(link, i, ADDR["torque_enable"], 1, 1) == (COMM_SUCCESS, 0)


def sync_write_goals(link, goals: dict[int, int]) -> None:
    port, ph = link
    sw = GroupSyncWrite(port, ph, ADDR["goal_position"], 4)
    for i, g in goals.items():
        assert sw.addParam(i, u32(g))
    assert sw.txPacket() == COMM_SUCCESS


def present_reader(link, ids=IDS) -> GroupSyncRead:
    port, ph = link
    reader = GroupSyncRead(port, ph, ADDR["present_current"], 10)
    for i in ids:
        assert reader.addParam(i)
    return reader


def decode(reader: GroupSyncRead, ids=IDS) -> dict[int, tuple[int, int, int]]:
    """{id: (current mA, velocity 0.229 rpm, position ticks)}, sign-converted."""
    out = {}
    for i in ids:
        assert reader.isAvailable(i, ADDR["present_current"], 10)
        out[i] = (
            signed(reader.getData(i, ADDR["present_current"], 2), 2),
            signed(reader.getData(i, ADDR["present_velocity"], 4), 4),
            signed(reader.getData(i, ADDR["present_position"], 4), 4),
        )
    return out


# -- wire-level helpers ----------------------------------------------------------------------
def test_crc_and_stuffing_match_the_sdk():
    ph = Protocol2PacketHandler()
    data = bytes(range(256)) + b"\xff\xff\xfd\x00\xff\xff\xfd\xfd"
    assert crc16(data) == ph.updateCRC(0, list(data), len(data))
    body = b"\x03\x74\x00\xff\xff\xfd\xff\xff\xff\xfd"
    assert stuff(body) == b"\x03\x74\x00\xff\xff\xfd\xfd\xff\xff\xff\xfd\xfd"
    assert unstuff(stuff(body)) == body
    # the SDK's own stuffing of the same instruction packet gives the same bytes
    pkt = [0xFF, 0xFF, 0xFD, 0x00, 1, len(body) + 2, 0, *body, 0, 0]
    assert bytes(ph.addStuffing(pkt)[7:-2]) == stuff(body)


# -- 1. ping -----------------------------------------------------------------------------------
def test_ping_every_servo_and_broadcast_ping(bus, link):
    port, ph = link
    for i in IDS:
        model, res, err = ph.ping(port, i)
        assert (model, res, err) == (1240, COMM_SUCCESS, 0), i
        assert read(link, i, ADDR["firmware_version"], 1) == (52, COMM_SUCCESS, 0)
    found, res = ph.broadcastPing(port)
    assert res == COMM_SUCCESS
    assert found == {i: [1240, 52] for i in IDS}
    assert ph.ping(port, 40)[1] == COMM_RX_TIMEOUT  # not on the bus
    assert bus.stats["ping"] == len(IDS) + 2
    assert bus.stats["ignored"] == 1


# -- 2. registers ------------------------------------------------------------------------------
def test_register_round_trips_and_refusals(bus, link):
    port, ph = link
    assert write(link, 2, ADDR["led"], 1, 1) == (COMM_SUCCESS, 0)
    assert read(link, 2, ADDR["led"], 1) == (1, COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["position_p_gain"], 800, 2) == (COMM_SUCCESS, 0)
    assert read(link, 2, ADDR["position_p_gain"], 2) == (800, COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["profile_velocity"], 1234, 4) == (COMM_SUCCESS, 0)
    assert read(link, 2, ADDR["profile_velocity"], 4) == (1234, COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["goal_position"], 3000, 4) == (COMM_SUCCESS, 0)
    assert read(link, 2, ADDR["goal_position"], 4) == (3000, COMM_SUCCESS, 0)
    # defaults a backend relies on: 4 Mbaud, current limit 2352 mA, mode 3, shutdown 0x34
    assert read(link, 2, ADDR["baud_rate"], 1)[0] == 6
    assert read(link, 2, ADDR["current_limit"], 2)[0] == 2352
    assert read(link, 2, ADDR["operating_mode"], 1)[0] == 3
    assert read(link, 2, ADDR["shutdown"], 1)[0] == 0x34
    assert read(link, 2, ADDR["present_position"], 4)[0] == 2048
    assert read(link, 2, ADDR["present_input_voltage"], 2)[0] == 50
    assert read(link, 2, ADDR["present_temperature"], 1)[0] == 35

    # EEPROM with torque on: access error; with torque off it works
    assert write(link, 2, ADDR["torque_enable"], 1, 1) == (COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["operating_mode"], 5, 1) == (COMM_SUCCESS, ERR_ACCESS)
    assert write(link, 2, ADDR["torque_enable"], 0, 1) == (COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["operating_mode"], 5, 1) == (COMM_SUCCESS, 0)
    # read-only registers
    assert write(link, 2, ADDR["present_position"], 0, 4) == (COMM_SUCCESS, ERR_ACCESS)
    assert write(link, 2, ADDR["model_number"], 1, 2) == (COMM_SUCCESS, ERR_ACCESS)
    assert write(link, 2, ADDR["hardware_error_status"], 0, 1) == (COMM_SUCCESS, ERR_ACCESS)
    # goal current above the current limit: data limit error, the old value stays
    assert write(link, 2, ADDR["goal_current"], 2353, 2) == (COMM_SUCCESS, ERR_DATA_LIMIT)
    assert write(link, 2, ADDR["current_limit"], 500, 2) == (COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["goal_current"], 501, 2) == (COMM_SUCCESS, ERR_DATA_LIMIT)
    assert write(link, 2, ADDR["goal_current"], -501 & 0xFFFF, 2) == (COMM_SUCCESS, 6)
    assert write(link, 2, ADDR["goal_current"], 350, 2) == (COMM_SUCCESS, 0)
    assert bus.servo(2).goal_current == 350
    # value ranges: no operating mode 2; mode 3 goals within the position limits
    assert write(link, 2, ADDR["operating_mode"], 2, 1) == (COMM_SUCCESS, ERR_DATA_RANGE)
    assert write(link, 2, ADDR["operating_mode"], 3, 1) == (COMM_SUCCESS, 0)
    assert write(link, 2, ADDR["goal_position"], 5000, 4) == (COMM_SUCCESS, ERR_DATA_LIMIT)
    # past the end of the table; an instruction the emulator does not carry out
    _, res, err = ph.readTxRx(port, 2, 250, 10)
    assert (res, err) == (COMM_SUCCESS, ERR_ACCESS)
    assert ph.clearMultiTurn(port, 2) == (COMM_SUCCESS, ERR_INSTRUCTION)

    snap = bus.servo(2)
    assert (snap.mode, snap.goal, snap.gains, snap.current_limit) == (3, 3000, (800, 0, 500), 500)
    assert snap.register("led") == 1
    assert bus.stats["write_rejected"] == 9


def test_status_return_level_one_answers_reads_only(bus, link):
    port, ph = link
    # the level applies from the write that sets it: that one is not answered either
    assert write(link, 4, ADDR["status_return_level"], 1, 1)[0] == COMM_RX_TIMEOUT
    res, _ = write(link, 4, ADDR["led"], 1, 1)
    assert res == COMM_RX_TIMEOUT  # applied, but no status packet
    assert bus.servo(4).register("led") == 1
    assert read(link, 4, ADDR["led"], 1) == (1, COMM_SUCCESS, 0)
    assert ph.ping(port, 4)[1] == COMM_SUCCESS


# -- 3. sync write, fast/plain sync read, motion -----------------------------------------------
def test_sync_write_and_group_reads_move_the_servos(bus, link):
    port, ph = link
    leap_start(link, ids=IDS[:15])
    leap_start(link, ids=IDS[15:], torque=False)
    bus.clear_writes()
    goals = {i: 2048 + 20 * i - 150 for i in IDS}
    t0 = bus.now()
    sync_write_goals(link, goals)
    assert bus.wait_idle()  # no reply to wait for: wait for the bus to have seen it
    recs = bus.writes
    assert [(r.id, r.address, r.data) for r in recs] == [
        (i, ADDR["goal_position"], bytes(u32(goals[i]))) for i in IDS
    ]
    assert all(r.t == t0 for r in recs)
    assert all(bus.servo(i).goal == goals[i] for i in IDS)

    reader = present_reader(link)
    assert reader.fastSyncRead() == COMM_SUCCESS
    assert all(pos == 2048 for _, _, pos in decode(reader).values())  # no time has passed

    bus.advance(0.05)
    assert reader.fastSyncRead() == COMM_SUCCESS
    fast = decode(reader)
    assert reader.txRxPacket() == COMM_SUCCESS
    assert decode(reader) == fast  # the clock stands still: both reads see the same state
    for i in IDS[:15]:
        cur, vel, pos = fast[i]
        goal = goals[i]
        assert min(2048, goal) <= pos <= max(2048, goal), i
        if abs(goal - 2048) > 20:
            assert pos != 2048 and (vel > 0) == (goal > 2048), (i, fast[i])
            assert abs(cur) <= 350 + 10 and (cur > 0) == (goal > pos), (i, fast[i])
    assert fast[15] == (0, 0, 2048)  # torque off: stays

    bus.advance(1.0)
    assert reader.fastSyncRead() == COMM_SUCCESS
    done = decode(reader)
    for i in IDS[:15]:
        assert abs(done[i][2] - goals[i]) <= 1, (i, done[i])
        assert abs(done[i][1]) <= 1
    assert done[15] == (0, 0, 2048)
    assert bus.servo(15).goal == goals[15]  # stored with torque off

    # bulk reads (plain and fast) decode too
    bulk = GroupBulkRead(port, ph)
    assert bulk.addParam(3, ADDR["present_position"], 4)
    assert bulk.addParam(7, ADDR["goal_current"], 2)
    for rx in (bulk.txRxPacket, bulk.fastBulkRead):
        assert rx() == COMM_SUCCESS
        assert signed(bulk.getData(3, ADDR["present_position"], 4), 4) == done[3][2]
        assert bulk.getData(7, ADDR["goal_current"], 2) == 350
    st = bus.stats
    assert (st["sync_write"], st["fast_sync_read"], st["sync_read"]) == (1, 3, 1)
    assert (st["bulk_read"], st["fast_bulk_read"], st["crc_errors"]) == (1, 1, 0)


def test_motion_in_real_time():
    with DynamixelBus(ids=[0, 1], start_positions=[1000, 3000]) as bus:
        port = PortHandler(bus.port)
        assert port.openPort() and port.setBaudRate(4_000_000)
        link = (port, PacketHandler(2.0))
        leap_start(link, ids=[0, 1])
        sync_write_goals(link, {0: 1400, 1: 3000})
        assert bus.wait_idle()
        time.sleep(0.4)  # 400 ticks at <= 6 rad/s takes ~0.1 s, then ~5 time constants
        assert abs(read(link, 0, ADDR["present_position"], 4)[0] - 1400) <= 2
        assert read(link, 1, ADDR["present_position"], 4)[0] == 3000
        tick = read(link, 0, ADDR["realtime_tick"], 2)[0]
        assert 400 <= tick <= 5000  # ms since the bus opened
        port.closePort()
        assert bus.failure is None


# -- 4. byte stuffing --------------------------------------------------------------------------
def test_byte_stuffing_both_ways(link, bus):
    leap_start(link, ids=[1], torque=False)
    assert write(link, 1, ADDR["goal_position"], STUFFED, 4) == (COMM_SUCCESS, 0)
    assert bus.writes[-1].data == b"\xff\xff\xfd\xff"  # the SDK stuffed it, we de-stuffed it
    assert bus.servo(1).goal == -131073
    assert read(link, 1, ADDR["goal_position"], 4) == (STUFFED, COMM_SUCCESS, 0)


def test_byte_stuffing_in_group_reads():
    with DynamixelBus(ids=[2, 3], start_positions={3: -131073}, realtime=False) as bus:
        port = PortHandler(bus.port)
        assert port.openPort() and port.setBaudRate(4_000_000)
        reader = present_reader((port, PacketHandler(2.0)), ids=[2, 3])
        for rx in (reader.fastSyncRead, reader.txRxPacket):  # unstuffed / stuffed replies
            assert rx() == COMM_SUCCESS
            assert decode(reader, ids=[2, 3]) == {2: (0, 0, 2048), 3: (0, 0, -131073)}
        port.closePort()


# -- 5. corrupted packets, garbage -------------------------------------------------------------
def test_bad_crc_is_dropped_and_garbage_skipped(bus, link):
    port, ph = link
    good = instruction_packet(1, INST_PING)
    bad = good[:-1] + bytes([good[-1] ^ 0x5A])
    port.writePort(bad)
    time.sleep(0.05)
    assert port.getBytesAvailable() == 0  # no answer at all
    assert bus.stats["crc_errors"] == 1
    assert bus.stats["ping"] == 0

    # garbage (with a false half-header), then a good ping: the bus resynchronises
    garbage_before = bus.stats["garbage_bytes"]
    port.writePort(b"\x00\x12\xff\xff\x55\xfd" + bytes(range(0x20, 0x40)) + good)
    deadline = time.monotonic() + 1.0
    reply = b""
    while len(reply) < 14 and time.monotonic() < deadline:
        reply += port.readPort(14 - len(reply))
    assert reply[:9] == bytes((0xFF, 0xFF, 0xFD, 0x00, 1, 7, 0, 0x55, 0))
    assert int.from_bytes(reply[9:11], "little") == 1240 and reply[11] == 52
    assert crc16(reply[:-2]) == int.from_bytes(reply[-2:], "little")
    assert bus.stats["garbage_bytes"] - garbage_before == 6 + 32
    assert ph.ping(port, 1) == (1240, COMM_SUCCESS, 0)
    assert read(link, 5, ADDR["present_position"], 4) == (2048, COMM_SUCCESS, 0)


# -- 6. a silent servo -------------------------------------------------------------------------
def test_silenced_servo_times_out_and_comes_back(bus, link):
    port, ph = link
    reader = present_reader(link)
    bus.silence(6)
    t = time.perf_counter()
    assert ph.ping(port, 6)[1] == COMM_RX_TIMEOUT
    assert time.perf_counter() - t < 0.5
    assert write(link, 6, ADDR["led"], 1, 1)[0] == COMM_RX_TIMEOUT
    assert bus.servo(6).register("led") == 0  # it heard nothing
    assert reader.fastSyncRead() != COMM_SUCCESS
    assert reader.txRxPacket() != COMM_SUCCESS
    assert not reader.isAvailable(0, ADDR["present_current"], 10)
    assert all(ph.ping(port, i)[1] == COMM_SUCCESS for i in IDS if i != 6)
    assert bus.servo(6).silenced

    bus.unsilence(6)
    assert ph.ping(port, 6) == (1240, COMM_SUCCESS, 0)
    assert reader.fastSyncRead() == COMM_SUCCESS
    assert reader.txRxPacket() == COMM_SUCCESS


# -- 7. overload and other hardware errors -----------------------------------------------------
def test_overload_alerts_until_reboot(bus, link):
    port, ph = link
    leap_start(link, ids=[9])
    assert bus.servo(9).torque
    bus.overload(9)
    model, res, err = ph.ping(port, 9)
    assert (model, res) == (1240, COMM_SUCCESS) and err & ERR_ALERT
    assert read(link, 9, ADDR["hardware_error_status"], 1) == (HW_OVERLOAD, COMM_SUCCESS, 0x80)
    assert read(link, 9, ADDR["torque_enable"], 1)[0] == 0
    res, err = write(link, 9, ADDR["torque_enable"], 1, 1)
    assert (res, err) == (COMM_SUCCESS, ERR_ALERT | ERR_RESULT_FAIL)
    assert not bus.servo(9).torque
    assert ph.ping(port, 8) == (1240, COMM_SUCCESS, 0)  # the others are fine

    assert ph.reboot(port, 9) == (COMM_SUCCESS, ERR_ALERT)  # answered, then restarted
    assert ph.ping(port, 9) == (1240, COMM_SUCCESS, 0)
    assert read(link, 9, ADDR["hardware_error_status"], 1) == (0, COMM_SUCCESS, 0)
    assert read(link, 9, ADDR["operating_mode"], 1)[0] == 5  # EEPROM kept
    assert read(link, 9, ADDR["goal_current"], 2)[0] == 2352  # RAM back to its defaults
    assert write(link, 9, ADDR["torque_enable"], 1, 1) == (COMM_SUCCESS, 0)


def test_temperature_and_voltage_faults(bus, link):
    port, ph = link
    leap_start(link, ids=[10, 11])
    bus.set_voltage(10, 80)  # 8.0 V: above the 7.0 V limit, alert but torque stays
    bus.set_temperature(11, 75)  # above the 70 deg C limit: overheating shuts down
    assert ph.ping(port, 10)[2] == ERR_ALERT
    assert read(link, 10, ADDR["hardware_error_status"], 1)[0] == HW_INPUT_VOLTAGE
    assert read(link, 10, ADDR["present_input_voltage"], 2)[0] == 80
    assert bus.servo(10).torque
    assert read(link, 11, ADDR["hardware_error_status"], 1)[0] == HW_OVERHEATING
    assert read(link, 11, ADDR["present_temperature"], 1)[0] == 75
    assert not bus.servo(11).torque
    bus.set_temperature(11, 40)
    assert ph.reboot(port, 11)[0] == COMM_SUCCESS
    assert ph.ping(port, 11) == (1240, COMM_SUCCESS, 0)
    assert bus.servo(11).temperature == 40


# -- 8. bus watchdog ---------------------------------------------------------------------------
def test_bus_watchdog_stops_a_servo_when_packets_stop(bus, link):
    leap_start(link, ids=[0, 1])
    assert write(link, 0, ADDR["bus_watchdog"], 5, 1) == (COMM_SUCCESS, 0)  # 100 ms
    sync_write_goals(link, {0: 3048, 1: 3048})  # 1000 ticks away: ~0.3 s at 6 rad/s
    assert bus.wait_idle()
    bus.advance(0.05)
    assert not bus.servo(0).watchdog_tripped  # 50 ms since the last packet
    bus.advance(0.3)  # no packets for 350 ms: it stopped at 100 ms
    snap = bus.servo(0)
    assert snap.watchdog_tripped and snap.bus_watchdog == -1
    assert 2048 < snap.position < 3048 and snap.goal == snap.position
    assert bus.servo(1).position > snap.position + 400  # no watchdog: it kept going

    stopped = snap.position
    assert read(link, 0, ADDR["bus_watchdog"], 1) == (0xFF, COMM_SUCCESS, 0)
    assert write(link, 0, ADDR["goal_position"], 2500, 4) == (COMM_SUCCESS, ERR_DATA_RANGE)
    bus.advance(0.5)
    assert bus.servo(0).position == stopped
    assert write(link, 0, ADDR["bus_watchdog"], 0, 1) == (COMM_SUCCESS, 0)  # clears it
    assert write(link, 0, ADDR["goal_position"], 2500, 4) == (COMM_SUCCESS, 0)
    bus.advance(1.0)
    assert abs(bus.servo(0).position - 2500) <= 1


# -- 9. closing --------------------------------------------------------------------------------
def test_close_is_prompt_and_final(bus, link):
    port, ph = link
    path = bus.port
    assert ph.ping(port, 0)[1] == COMM_SUCCESS
    t = time.perf_counter()
    bus.close()
    assert time.perf_counter() - t < 0.5
    bus.close()  # idempotent
    assert bus.closed
    assert not os.path.exists(path)
    with pytest.raises((serial.SerialException, termios.error)):
        ph.ping(port, 0)  # a port still open on it fails (pyserial's tcflush: termios.error)
    with pytest.raises(serial.SerialException):
        PortHandler(path).openPort()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unique"):
        DynamixelBus(ids=[1, 1])
    with pytest.raises(ValueError, match=r"0\.\.252"):
        DynamixelBus(ids=[300])
    with pytest.raises(ValueError, match="one per ID"):
        DynamixelBus(ids=[1, 2], start_positions=[2048])
    with DynamixelBus(ids=[1]) as bus:
        with pytest.raises(RuntimeError, match="realtime=False"):
            bus.advance(0.1)
        with pytest.raises(KeyError, match="no servo with ID 7"):
            bus.servo(7)
