"""An emulated bus of Dynamixel servos (Protocol 2.0) on a pseudo-terminal.

:class:`DynamixelBus` opens a pty and answers on its master end the way a chain of XC330-M288
servos (the full LEAP hand's) answers on a U2D2: ``dynamixel_sdk.PortHandler(bus.port)``
opens the slave end like ``/dev/ttyUSB0`` (``setBaudRate(4_000_000)`` works on a pty), and
every ``PacketHandler(2.0)`` / ``GroupSyncWrite`` / ``GroupSyncRead`` call goes over the
wire in the real format. It is for tests and for trying the app without a hand.

Wire format (Protocol 2.0; checked against ``dynamixel_sdk`` 4.1.0's
``protocol2_packet_handler.py``)::

    FF FF FD 00 | ID | LEN_L LEN_H | INST | params ... | CRC_L CRC_H

``LEN`` counts INST, params and the CRC; the CRC-16 (poly 0x8005, init 0, not reflected)
covers every byte before it, header included. In the body (INST onwards) each ``FF FF FD``
is sent as ``FF FF FD FD``; ``LEN`` and the CRC are those of the stuffed packet. Status
packets have INST ``0x55`` and an error byte before their params. A Fast Sync/Bulk Read reply
is one packet from ID ``FE``: INST ``0x55``, then per servo ``[ERR, ID, DATA(N), CRC2]``,
where each CRC2 is the CRC of the reply up to it and the last one is the packet CRC; it is
not byte-stuffed (the SDK does not de-stuff it).

What is emulated:

* Instructions ping, read, write, reboot, sync read/write, fast sync read, bulk read/write
  and fast bulk read; a broadcast ping is answered by every servo in ID order. Reg write,
  action, factory reset and clear are answered with an instruction error (0x02).
* The XC330-M288 control table (:data:`REGISTERS`, 256 bytes, little-endian) with its
  e-manual defaults, except baud rate 6 (4 Mbaud, as a LEAP hand is configured). Writes are
  checked as a servo does: read-only bytes and EEPROM (addresses < 64) with torque on give
  an access error (0x07), values outside a register's range a data range error (0x04),
  goals beyond their limit register a data limit error (0x06), torque on while a shutdown
  error is latched a result fail (0x01); a refused write changes nothing. Unused addresses
  are plain storage; indirect addresses/data (168-227) are storage too (no indirection).
* Status Return Level (68): 0 answers pings only, 1 pings and reads, 2 everything.
* The alert bit (0x80) is set in every status error byte while Hardware Error Status (70)
  is non-zero. Errors whose bit is in Shutdown (63, default 0x34: overheating, electrical
  shock, overload) force torque off, and they latch until a reboot.
* A simple servo model, advanced to the bus clock before every packet is handled and
  whenever it is observed (see :class:`DynamixelBus`).
* Bus Watchdog (98), as the e-manual describes it.
* Faults: :meth:`DynamixelBus.silence`, :meth:`~DynamixelBus.overload`,
  :meth:`~DynamixelBus.set_temperature`, :meth:`~DynamixelBus.set_voltage`.

Not emulated: return delay time (replies are immediate; the pty adds ~0.1 ms), baud rates
(stored only: a pty has no baud), secondary IDs, drive-mode direction, PWM/current control
modes (the servo holds still), and the reboot's boot time (the servo answers at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import select
import struct
import termios
import threading
import time
import tty
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

# -- protocol constants ----------------------------------------------------------------------
HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
#: Largest servo ID (0xFD-0xFF are reserved / broadcast).
MAX_ID = 0xFC
#: Longest LEN field accepted; longer ones are taken for garbage (the SDK sends <= 1024 bytes).
MAX_LENGTH = 1024

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_REG_WRITE = 0x04
INST_ACTION = 0x05
INST_FACTORY_RESET = 0x06
INST_REBOOT = 0x08
INST_CLEAR = 0x10
INST_STATUS = 0x55
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83
INST_FAST_SYNC_READ = 0x8A
INST_BULK_READ = 0x92
INST_BULK_WRITE = 0x93
INST_FAST_BULK_READ = 0x9A

#: Instruction byte -> the key it is counted under in :attr:`DynamixelBus.stats`.
INSTRUCTION_NAMES = {
    INST_PING: "ping",
    INST_READ: "read",
    INST_WRITE: "write",
    INST_REG_WRITE: "reg_write",
    INST_ACTION: "action",
    INST_FACTORY_RESET: "factory_reset",
    INST_REBOOT: "reboot",
    INST_CLEAR: "clear",
    INST_SYNC_READ: "sync_read",
    INST_SYNC_WRITE: "sync_write",
    INST_FAST_SYNC_READ: "fast_sync_read",
    INST_BULK_READ: "bulk_read",
    INST_BULK_WRITE: "bulk_write",
    INST_FAST_BULK_READ: "fast_bulk_read",
}

# Status packet error byte: a number in bits 0-6, the alert flag in bit 7.
ERR_NONE = 0x00
ERR_RESULT_FAIL = 0x01
ERR_INSTRUCTION = 0x02
ERR_CRC = 0x03
ERR_DATA_RANGE = 0x04
ERR_DATA_LENGTH = 0x05
ERR_DATA_LIMIT = 0x06
ERR_ACCESS = 0x07
ERR_ALERT = 0x80

# Hardware Error Status (70) bits.
HW_INPUT_VOLTAGE = 0x01
HW_OVERHEATING = 0x04
HW_ENCODER = 0x08
HW_ELECTRICAL_SHOCK = 0x10
HW_OVERLOAD = 0x20

# -- units -----------------------------------------------------------------------------------
#: Position ticks per revolution (12-bit absolute encoder); 2048 ticks = pi rad.
TICKS_PER_REV = 4096
RAD_PER_TICK = 2.0 * math.pi / TICKS_PER_REV
#: One unit of Present/Goal/Profile Velocity, rev/min.
VELOCITY_UNIT_RPM = 0.229
#: Bus Watchdog (98) unit, seconds.
WATCHDOG_UNIT_S = 0.020
#: LEAP's home pose: every joint at 2048 ticks = pi rad (flat hand).
HOME_TICKS = 2048
XC330_M288 = 1240
XL330_M288 = 1200
OPERATING_MODES = (0, 1, 3, 4, 5, 16)  # current, velocity, position, extended, current-based, PWM
GOAL_POSITION_RANGE = 1_048_575  # |goal| in the extended / current-based position modes

TABLE_SIZE = 256
#: Addresses below this are EEPROM: writable only with torque off.
EEPROM_END = 64


class Register(NamedTuple):
    """One control-table entry: where it is, how wide, and how it may be accessed."""

    address: int
    size: int  # bytes, little-endian
    signed: bool = False
    writable: bool = True
    default: int = 0


def _indirect() -> dict[str, Register]:
    out = {}
    for k in range(20):
        out[f"indirect_address_{k + 1}"] = Register(168 + 2 * k, 2, default=208 + k)
    for k in range(20):
        out[f"indirect_data_{k + 1}"] = Register(208 + k, 1)
    return out


#: The XC330-M288-T control table (ROBOTIS e-manual), with its initial values. The XL330
#: (LEAP Lite) has the same addresses. Model number and firmware come from the bus settings;
#: goal and present values are set from the servo's start position at power-up.
REGISTERS: dict[str, Register] = {
    # EEPROM area
    "model_number": Register(0, 2, writable=False, default=XC330_M288),
    "model_information": Register(2, 4, writable=False),
    "firmware_version": Register(6, 1, writable=False, default=52),
    "id": Register(7, 1, default=1),
    "baud_rate": Register(8, 1, default=6),  # 6 = 4 Mbaud (factory: 1 = 57,600)
    "return_delay_time": Register(9, 1, default=250),  # 2 us units
    "drive_mode": Register(10, 1),
    "operating_mode": Register(11, 1, default=3),
    "secondary_id": Register(12, 1, default=255),
    "protocol_type": Register(13, 1, default=2),
    "homing_offset": Register(20, 4, signed=True),  # ticks
    "moving_threshold": Register(24, 4, default=10),  # 0.229 rpm
    "temperature_limit": Register(31, 1, default=70),  # deg C
    "max_voltage_limit": Register(32, 2, default=70),  # 0.1 V
    "min_voltage_limit": Register(34, 2, default=35),  # 0.1 V
    "pwm_limit": Register(36, 2, default=885),  # 0.113 %
    "current_limit": Register(38, 2, default=2352),  # mA
    "velocity_limit": Register(44, 4, default=350),  # 0.229 rpm
    "max_position_limit": Register(48, 4, default=4095),  # ticks
    "min_position_limit": Register(52, 4, default=0),  # ticks
    "startup_configuration": Register(60, 1),
    "pwm_slope": Register(62, 1, default=140),
    "shutdown": Register(63, 1, default=HW_OVERHEATING | HW_ELECTRICAL_SHOCK | HW_OVERLOAD),
    # RAM area
    "torque_enable": Register(64, 1),
    "led": Register(65, 1),
    "status_return_level": Register(68, 1, default=2),
    "registered_instruction": Register(69, 1, writable=False),
    "hardware_error_status": Register(70, 1, writable=False),
    "velocity_i_gain": Register(76, 2, default=1600),
    "velocity_p_gain": Register(78, 2, default=50),
    "position_d_gain": Register(80, 2, default=500),
    "position_i_gain": Register(82, 2, default=0),
    "position_p_gain": Register(84, 2, default=1100),
    "feedforward_2nd_gain": Register(88, 2),
    "feedforward_1st_gain": Register(90, 2),
    "bus_watchdog": Register(98, 1, signed=True),  # 20 ms units, 0 off, -1 tripped
    "goal_pwm": Register(100, 2, signed=True, default=885),  # 0.113 %
    "goal_current": Register(102, 2, signed=True, default=2352),  # mA
    "goal_velocity": Register(104, 4, signed=True),  # 0.229 rpm
    "profile_acceleration": Register(108, 4),
    "profile_velocity": Register(112, 4),  # 0.229 rpm, 0 = unlimited
    "goal_position": Register(116, 4, signed=True),  # ticks
    "realtime_tick": Register(120, 2, writable=False),  # ms, wraps at 32768
    "moving": Register(122, 1, writable=False),
    "moving_status": Register(123, 1, writable=False),
    "present_pwm": Register(124, 2, signed=True, writable=False),
    "present_current": Register(126, 2, signed=True, writable=False),  # mA
    "present_velocity": Register(128, 4, signed=True, writable=False),  # 0.229 rpm
    "present_position": Register(132, 4, signed=True, writable=False),  # ticks
    "velocity_trajectory": Register(136, 4, signed=True, writable=False),
    "position_trajectory": Register(140, 4, signed=True, writable=False),
    "present_input_voltage": Register(144, 2, writable=False, default=50),  # 0.1 V
    "present_temperature": Register(146, 1, writable=False, default=35),  # deg C
    "backup_ready": Register(147, 1, writable=False),
    **_indirect(),
}

#: Registers a tripped bus watchdog makes read-only (written: data range error).
_GOALS = ("goal_pwm", "goal_current", "goal_velocity", "goal_position")

# Inclusive value ranges; outside: data range error (0x04).
_RANGES: dict[str, tuple[int, int]] = {
    "id": (0, MAX_ID),
    "baud_rate": (0, 6),
    "return_delay_time": (0, 254),
    "drive_mode": (0, 13),
    "temperature_limit": (0, 100),
    "max_voltage_limit": (31, 70),
    "min_voltage_limit": (31, 70),
    "pwm_limit": (0, 885),
    "current_limit": (0, 2352),
    "velocity_limit": (0, 2047),
    "max_position_limit": (0, 4095),
    "min_position_limit": (0, 4095),
    "homing_offset": (-1_044_479, 1_044_479),
    "moving_threshold": (0, 1023),
    "torque_enable": (0, 1),
    "led": (0, 1),
    "status_return_level": (0, 2),
    "bus_watchdog": (0, 127),
    "profile_acceleration": (0, 32767),
    "profile_velocity": (0, 32767),
    **{
        g: (0, 16383)
        for g in (
            "velocity_i_gain",
            "velocity_p_gain",
            "position_d_gain",
            "position_i_gain",
            "position_p_gain",
            "feedforward_2nd_gain",
            "feedforward_1st_gain",
        )
    },
}

# Goals bounded by a limit register: |value| <= limit, else data limit error (0x06).
_LIMITED_BY = {
    "goal_pwm": "pwm_limit",
    "goal_current": "current_limit",
    "goal_velocity": "velocity_limit",
}


def _read_only_mask() -> bytes:
    mask = bytearray(TABLE_SIZE)
    for reg in REGISTERS.values():
        if not reg.writable:
            mask[reg.address : reg.address + reg.size] = b"\x01" * reg.size
    return bytes(mask)


_READ_ONLY = _read_only_mask()


def _registers_in(address: int, end: int) -> list[str]:
    """Names of the registers that overlap bytes ``[address, end)``."""
    return [n for n, r in REGISTERS.items() if r.address < end and address < r.address + r.size]


# -- CRC and byte stuffing -------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """The Dynamixel Protocol 2.0 CRC-16 (poly 0x8005, MSB first) of ``data``, continuing
    from ``crc`` (0 to start); the same as the SDK's ``updateCRC``."""
    for b in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes | bytearray) -> bytes:
    """Byte-stuff a packet body (INST onwards, without the CRC): ``FF FF FD`` -> ``FF FF FD
    FD``, so that no header can appear inside a packet."""
    out = bytearray()
    for b in body:
        out.append(b)
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes | bytearray) -> bytes:
    """Undo :func:`stuff`: drop the ``FD`` that follows each ``FF FF FD``."""
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        b = body[i]
        out.append(b)
        i += 1
        stuffed = b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF
        if stuffed and i < n and body[i] == 0xFD:
            i += 1
    return bytes(out)


def packet(dxl_id: int, body: bytes | bytearray, *, stuffed: bool = True) -> bytes:
    """A complete packet: header, ``dxl_id``, LEN, the (stuffed) ``body`` (INST + params, or
    for a status packet 0x55 + ERR + params) and its CRC."""
    if stuffed:
        body = stuff(body)
    length = len(body) + 2
    head = HEADER + bytes((dxl_id, length & 0xFF, length >> 8))
    crc = crc16(head + body)
    return head + bytes(body) + crc.to_bytes(2, "little")


def instruction_packet(dxl_id: int, instruction: int, params: bytes | Iterable[int] = b"") -> bytes:
    """An instruction packet as a host sends it (for tests that write raw bytes)."""
    return packet(dxl_id, bytes((instruction, *bytes(params))))


def _le(value: int, size: int) -> bytes:
    return (int(value) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


# -- one servo -------------------------------------------------------------------------------
class WriteRecord(NamedTuple):
    """A write received for one servo (write, sync write or bulk write), accepted or not.

    ``t``: bus clock, seconds since the bus opened; ``id``: the servo; ``address``: first
    control-table address; ``data``: the bytes, little-endian as on the wire."""

    t: float
    id: int
    address: int
    data: bytes


@dataclass(frozen=True)
class ServoSnapshot:
    """One servo's state at bus time ``t`` (seconds). Positions in ticks (4096 per turn, 2048 =
    pi rad), velocity in 0.229 rpm units, currents in mA, voltage in 0.1 V, temperature in
    deg C; ``table`` is the whole 256-byte control table."""

    id: int
    t: float
    position: int
    velocity: int
    current: int
    goal: int
    torque: bool
    mode: int
    goal_current: int
    current_limit: int
    gains: tuple[int, int, int]  # position P, I, D (raw)
    hardware_error: int
    temperature: int
    voltage: int
    bus_watchdog: int  # register 98: 0 off, 1..127 armed (x 20 ms), -1 tripped
    watchdog_tripped: bool
    silenced: bool
    table: bytes

    @property
    def position_rad(self) -> float:
        """Present position in radians (0 ticks = 0 rad)."""
        return self.position * RAD_PER_TICK

    def value(self, address: int, size: int, signed: bool = False) -> int:
        """The little-endian integer at ``address`` (``size`` bytes) of the control table."""
        return int.from_bytes(self.table[address : address + size], "little", signed=signed)

    def register(self, name: str) -> int:
        """A named register of :data:`REGISTERS` (signed where the register is)."""
        reg = REGISTERS[name]
        return self.value(reg.address, reg.size, reg.signed)


class _Servo:
    """One emulated XC330: control table, motion state, faults. Not locked: the bus holds its
    lock around every call."""

    def __init__(
        self,
        dxl_id: int,
        model_number: int,
        firmware: int,
        position: float,
        t: float,
        model: _MotionModel,
        rng: np.random.Generator,
    ) -> None:
        self.table = bytearray(TABLE_SIZE)
        for name, reg in REGISTERS.items():
            self.put(name, reg.default)
        self.put("model_number", model_number)
        self.put("firmware_version", firmware)
        self.put("id", dxl_id)
        self.pos = float(position)  # ticks, in the reported frame (homing offset included)
        self.vel = 0.0  # ticks/s
        self.current = 0.0  # mA
        self.t = t
        self.last_rx = t
        self.silenced = False
        self.watchdog_tripped = False
        self._temperature = self.get("present_temperature")  # deg C, what the sensor sees
        self._voltage = self.get("present_input_voltage")  # 0.1 V, what the supply gives
        self.model = model
        self.rng = rng
        self.put("goal_position", round(self.pos))
        self.refresh()

    # table access
    @property
    def id(self) -> int:
        return self.table[7]

    def get(self, name: str, table: bytes | bytearray | None = None) -> int:
        reg = REGISTERS[name]
        raw = (self.table if table is None else table)[reg.address : reg.address + reg.size]
        return int.from_bytes(raw, "little", signed=reg.signed)

    def put(self, name: str, value: int) -> None:
        reg = REGISTERS[name]
        self.table[reg.address : reg.address + reg.size] = _le(value, reg.size)

    @property
    def torque(self) -> bool:
        return self.table[64] == 1

    def error_byte(self, err: int) -> int:
        return err | (ERR_ALERT if self.table[70] else 0)

    # instructions
    def read(self, address: int, length: int) -> tuple[int, bytes]:
        """(error, data) for a read of ``length`` bytes at ``address``."""
        if address + length > TABLE_SIZE:
            return ERR_ACCESS, b""
        return ERR_NONE, bytes(self.table[address : address + length])

    def write(self, address: int, data: bytes, now: float) -> int:
        """Apply a write if the servo would accept it; the error number (0 = accepted)."""
        end = address + len(data)
        if not data:
            return ERR_DATA_LENGTH
        if end > TABLE_SIZE or any(_READ_ONLY[address:end]):
            return ERR_ACCESS
        if address < EEPROM_END and self.torque:
            return ERR_ACCESS
        new = bytearray(self.table)
        new[address:end] = data
        names = _registers_in(address, end)
        err = self._check(names, new)
        if err:
            return err
        old_offset = self.get("homing_offset")
        old_torque = self.torque
        self.table = new
        if "homing_offset" in names:
            self.pos += self.get("homing_offset") - old_offset
        if "bus_watchdog" in names:
            if self.get("bus_watchdog") == 0:
                self.watchdog_tripped = False
            self.last_rx = now
        if self.torque and not old_torque:
            self.last_rx = now
        if not self.torque:
            self.vel = self.current = 0.0
        self.refresh()
        return ERR_NONE

    def _check(self, names: list[str], new: bytearray) -> int:
        if self.watchdog_tripped:
            if any(n in _GOALS for n in names):
                return ERR_DATA_RANGE  # the e-manual: goals are read-only until 98 is cleared
            if "bus_watchdog" in names and self.get("bus_watchdog", new) != 0:
                return ERR_DATA_RANGE
        for name in names:
            value = self.get(name, new)
            lo_hi = _RANGES.get(name)
            if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
                return ERR_DATA_RANGE
            if name == "operating_mode" and value not in OPERATING_MODES:
                return ERR_DATA_RANGE
            if name in _LIMITED_BY and abs(value) > self.get(_LIMITED_BY[name], new):
                return ERR_DATA_LIMIT
            if name == "goal_position":
                if self.get("operating_mode", new) == 3:
                    lo = self.get("min_position_limit", new)
                    hi = self.get("max_position_limit", new)
                    if not lo <= value <= hi:
                        return ERR_DATA_LIMIT
                elif abs(value) > GOAL_POSITION_RANGE:
                    return ERR_DATA_RANGE
        if "torque_enable" in names and new[64] == 1 and self.table[70] & self.table[63]:
            return ERR_RESULT_FAIL  # shutdown: torque stays off until a reboot
        return ERR_NONE

    def reboot(self, now: float) -> None:
        """Restart: EEPROM kept, RAM back to its initial values, errors cleared, torque off,
        goal = where the servo is."""
        for name, reg in REGISTERS.items():
            if reg.address >= EEPROM_END:
                self.put(name, reg.default)
        self.put("goal_current", self.get("current_limit"))
        self.put("goal_pwm", self.get("pwm_limit"))
        self.put("goal_position", round(self.pos))
        self.put("present_temperature", self._temperature)
        self.put("present_input_voltage", self._voltage)
        self.vel = self.current = 0.0
        self.watchdog_tripped = False
        self.last_rx = now
        self.check_environment()
        self.refresh()

    # faults
    def set_environment(self, temperature: int | None = None, voltage: int | None = None) -> None:
        if temperature is not None:
            self._temperature = int(temperature)
            self.put("present_temperature", self._temperature)
        if voltage is not None:
            self._voltage = int(voltage)
            self.put("present_input_voltage", self._voltage)
        self.check_environment()

    def check_environment(self) -> None:
        if self._temperature > self.get("temperature_limit"):
            self.raise_error(HW_OVERHEATING)
        v = self._voltage
        if not self.get("min_voltage_limit") <= v <= self.get("max_voltage_limit"):
            self.raise_error(HW_INPUT_VOLTAGE)

    def raise_error(self, bits: int) -> None:
        """Latch hardware error ``bits``; torque off if any is in the shutdown mask."""
        self.table[70] |= bits & 0xFF
        if bits & self.table[63]:
            self.table[64] = 0
            self.vel = self.current = 0.0
        self.refresh()

    # motion
    def advance(self, t: float) -> None:
        """Move the model on to bus time ``t``, tripping the bus watchdog on the way."""
        if t <= self.t:
            return
        wd = self.get("bus_watchdog")
        if self.torque and wd > 0 and not self.watchdog_tripped:
            deadline = self.last_rx + wd * WATCHDOG_UNIT_S
            if t > deadline:
                if deadline > self.t:
                    self._integrate(deadline - self.t)
                    self.t = deadline
                self._trip_watchdog()
        self._integrate(t - self.t)
        self.t = t
        self.refresh()

    def _trip_watchdog(self) -> None:
        self.watchdog_tripped = True
        self.put("bus_watchdog", -1)
        self.put("goal_position", round(self.pos))
        self.pos = float(round(self.pos))
        self.put("goal_velocity", 0)
        self.vel = 0.0

    def _goal(self) -> float:
        goal = float(self.get("goal_position"))
        if self.get("operating_mode") == 3:
            goal = min(max(goal, self.get("min_position_limit")), self.get("max_position_limit"))
        return goal

    def _integrate(self, dt: float) -> None:
        if dt <= 0:
            return
        mode = self.get("operating_mode")
        if not self.torque:
            self.vel = 0.0
            return
        if mode == 1:
            v = self.get("goal_velocity") * VELOCITY_UNIT_RPM * TICKS_PER_REV / 60.0
            self.pos += v * dt
            self.vel = v
            return
        if mode not in (3, 4, 5) or (mode == 5 and self.get("goal_current") == 0):
            self.vel = 0.0  # current / PWM control are not modelled; no current, no torque
            return
        tau = self.model.tau_s
        vmax = self.model.max_speed_rad_s / RAD_PER_TICK
        profile = self.get("profile_velocity")
        if profile > 0:
            vmax = min(vmax, profile * VELOCITY_UNIT_RPM * TICKS_PER_REV / 60.0)
        goal = self._goal()
        e = goal - self.pos
        if abs(e) > vmax * tau:  # speed-limited phase: straight at vmax
            sign = 1.0 if e > 0 else -1.0
            t_sat = (abs(e) - vmax * tau) / vmax
            if dt <= t_sat:
                self.pos += sign * vmax * dt
                self.vel = sign * vmax
                return
            self.pos += sign * vmax * t_sat
            dt -= t_sat
            e = goal - self.pos
        e_new = e * math.exp(-dt / tau)  # first-order approach
        self.pos = goal - e_new
        self.vel = e_new / tau

    def refresh(self) -> None:
        """Write the present values (position, velocity, current, ...) into the table."""
        mode = self.get("operating_mode")
        limit = self.get("current_limit")
        if self.torque and mode in (3, 4, 5) and not (mode == 5 and self.get("goal_current") == 0):
            cap = min(abs(self.get("goal_current")), limit) if mode == 5 else limit
            k = self.model.ma_per_tick_per_p * self.get("position_p_gain")
            cur = float(np.clip(k * (self._goal() - self.pos), -cap, cap))
            if self.model.current_noise_ma > 0:
                cur += float(self.rng.normal(0.0, self.model.current_noise_ma))
            self.current = float(np.clip(cur, -limit, limit))
        elif self.torque and mode == 1:
            self.current = math.copysign(min(30.0, limit), self.vel) if self.vel else 0.0
        else:
            self.current = 0.0
        vel_units = round(self.vel * 60.0 / TICKS_PER_REV / VELOCITY_UNIT_RPM)
        self.put("present_position", round(self.pos))
        self.put("present_velocity", vel_units)
        self.put("present_current", round(self.current))
        pwm = self.get("pwm_limit") * (self.current / limit if limit else 0.0)
        self.put("present_pwm", round(pwm))
        moving = abs(vel_units) > self.get("moving_threshold")
        self.put("moving", int(moving))
        in_position = abs(self.get("goal_position") - round(self.pos)) <= self.get(
            "moving_threshold"
        )
        self.put("moving_status", (0x01 if in_position else 0) | (0x02 if moving else 0))
        self.put("velocity_trajectory", vel_units)
        self.put("position_trajectory", self.get("goal_position"))
        self.put("realtime_tick", int(self.t * 1000.0) % 32768)

    def snapshot(self) -> ServoSnapshot:
        return ServoSnapshot(
            id=self.id,
            t=self.t,
            position=self.get("present_position"),
            velocity=self.get("present_velocity"),
            current=self.get("present_current"),
            goal=self.get("goal_position"),
            torque=self.torque,
            mode=self.get("operating_mode"),
            goal_current=self.get("goal_current"),
            current_limit=self.get("current_limit"),
            gains=(
                self.get("position_p_gain"),
                self.get("position_i_gain"),
                self.get("position_d_gain"),
            ),
            hardware_error=self.table[70],
            temperature=self.get("present_temperature"),
            voltage=self.get("present_input_voltage"),
            bus_watchdog=self.get("bus_watchdog"),
            watchdog_tripped=self.watchdog_tripped,
            silenced=self.silenced,
            table=bytes(self.table),
        )


@dataclass(frozen=True)
class _MotionModel:
    tau_s: float
    max_speed_rad_s: float
    ma_per_tick_per_p: float
    current_noise_ma: float


# -- the bus ---------------------------------------------------------------------------------
_STAT_KEYS = (
    *INSTRUCTION_NAMES.values(),
    "unknown",
    "crc_errors",
    "garbage_bytes",
    "rx_timeouts",
    "malformed",
    "ignored",
    "status_packets",
    "write_rejected",
    "tx_dropped",
    "replies_lost",
)


class DynamixelBus:
    """A chain of emulated Dynamixel servos (Protocol 2.0) behind a pseudo-terminal.

    Open ``bus.port`` with ``dynamixel_sdk.PortHandler``; a daemon thread answers on the
    master end. Use it as a context manager, or call :meth:`close`.

    Args:
        ids: the servo IDs on the bus (LEAP: 0-15).
        model_number: what ping and address 0 report (1240 XC330-M288, 1200 XL330-M288).
        firmware: Firmware Version (6); fast sync read needs v46 or later on real servos.
        seed: seeds the present-current noise.
        start_positions: where the servos are at power-up, ticks: one value for all, a
            sequence in ``ids`` order, or ``{id: ticks}`` (missing IDs: 2048, LEAP's home).
        realtime: True: the bus clock is the monotonic clock (seconds since the bus opened).
            False: it stands still until :meth:`advance` moves it, so motion and watchdog
            timing are deterministic.
        tau_s: time constant (s) of the first-order approach to the goal position.
        max_speed_rad_s: speed cap (rad/s) of that approach (also capped by Profile
            Velocity (112) when non-zero).
        ma_per_tick_per_p: present current (mA) per tick of position error per unit of
            Position P Gain (84); clipped to Goal Current (102) in mode 5, else to Current
            Limit (38).
        current_noise_ma: standard deviation (mA) of the noise on Present Current while torque
            is on (the XC330 measures current at its power input: it is noisy).
        poll_s: how long the reader thread waits for bytes before checking for :meth:`close`.
        rx_timeout_s: an incomplete packet at the head of the input for this long (monotonic
            seconds) loses its first byte, and the parser looks for the next header.

    Servo model (modes 3, 4, 5 with torque on): present position approaches goal position at
    up to ``max_speed_rad_s``, then exponentially with ``tau_s``; present velocity is that
    motion; present current is ``ma_per_tick_per_p * P * error`` clipped as above. Mode 5
    with Goal Current 0 produces no torque: the servo stays. Mode 1 turns at Goal Velocity.
    Torque off: the servo stays where it is (velocity 0, current 0); goals written are kept.

    Bus Watchdog (98): while torque is on and 98 is 1-127, a servo that receives no
    instruction packet (its ID or broadcast) for 98 x 20 ms stops: goal position := present
    position, 98 reads -1, and writes to the goals (100, 102, 104, 116) give a data range
    error until 98 is written 0.

    A servo chain answers a sync read, fast sync read or bulk read in the order listed; a
    silent or absent servo ends the chain there (the ones after it never get their turn), so
    the SDK's group read fails either way.
    """

    def __init__(
        self,
        ids: Iterable[int] = range(16),
        model_number: int = XC330_M288,
        firmware: int = 52,
        seed: int = 0,
        start_positions: int | Sequence[int] | Mapping[int, int] = HOME_TICKS,
        *,
        realtime: bool = True,
        tau_s: float = 0.05,
        max_speed_rad_s: float = 6.0,
        ma_per_tick_per_p: float = 0.002,
        current_noise_ma: float = 2.0,
        poll_s: float = 0.01,
        rx_timeout_s: float = 0.1,
    ) -> None:
        id_list = [int(i) for i in ids]
        if not id_list:
            raise ValueError("DynamixelBus needs at least one servo ID")
        bad = [i for i in id_list if not 0 <= i <= MAX_ID]
        if bad:
            raise ValueError(f"servo IDs must be 0..{MAX_ID}; got {bad}")
        if len(set(id_list)) != len(id_list):
            raise ValueError(f"servo IDs must be unique; got {id_list}")
        if tau_s <= 0 or max_speed_rad_s <= 0:
            raise ValueError(
                f"tau_s and max_speed_rad_s must be > 0; got {tau_s}, {max_speed_rad_s}"
            )
        starts = _start_positions(id_list, start_positions)
        self.realtime = bool(realtime)
        self._t0 = time.monotonic()
        self._t_manual = 0.0
        self._lock = threading.RLock()
        model = _MotionModel(tau_s, max_speed_rad_s, ma_per_tick_per_p, current_noise_ma)
        rng = np.random.default_rng(seed)
        self._servos = [
            _Servo(i, model_number, firmware, starts[i], 0.0, model, rng) for i in sorted(id_list)
        ]
        self._writes: list[WriteRecord] = []
        self._stats = dict.fromkeys(_STAT_KEYS, 0)
        self._rx = bytearray()
        self._pending_since: float | None = None
        self._lose: dict[str, int] = {}
        self._poll_s = float(poll_s)
        self._rx_timeout_s = float(rx_timeout_s)
        #: The exception that stopped the reader thread, if one did (it is also logged).
        self.failure: BaseException | None = None

        self._master, self._slave = os.openpty()
        try:
            tty.setraw(self._slave)
            os.set_blocking(self._master, False)
            #: The slave end's path: what ``dynamixel_sdk.PortHandler`` opens.
            self.port: str = os.ttyname(self._slave)
        except OSError:
            os.close(self._master)
            os.close(self._slave)
            raise
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"DynamixelBus({self.port})", daemon=True
        )
        self._thread.start()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> DynamixelBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reader thread and close the pty (its path disappears; a port still open
        on it fails with ``serial.SerialException``). Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=max(1.0, 10 * self._poll_s))
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"DynamixelBus(port={self.port!r}, ids={self.ids}, {state})"

    # -- time --------------------------------------------------------------------------------
    def now(self) -> float:
        """The bus clock, seconds since the bus opened (see ``realtime``)."""
        if self.realtime:
            return time.monotonic() - self._t0
        return self._t_manual

    def advance(self, dt: float) -> None:
        """Move the bus clock on by ``dt`` seconds and the servos with it (``realtime=False``
        only: in real time the clock moves by itself)."""
        if self.realtime:
            raise RuntimeError("advance() is for a DynamixelBus made with realtime=False")
        if dt < 0:
            raise ValueError(f"advance() needs dt >= 0, got {dt}")
        with self._lock:
            self._t_manual += float(dt)
            self._advance_all(self._t_manual)

    def wait_idle(self, timeout: float = 1.0, quiet_s: float = 0.005) -> bool:
        """Wait until every byte written to the port so far has been handled (a sync write
        gets no reply, so a test has no other way to know the bus has seen it); False if the
        bus is still busy after ``timeout`` seconds. The kernel hands pty bytes over through
        a work queue, so the input must stay empty for ``quiet_s`` seconds. (Fully certain:
        send something that is answered, a ping; the bus handles packets in order.)"""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while True:
            with self._lock:
                if self._closed:
                    return False
                idle = self._in_waiting() == 0
            now = time.monotonic()
            if not idle:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_s:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)

    def _in_waiting(self) -> int:
        """Bytes the host wrote that the reader thread has not taken yet."""
        raw = fcntl.ioctl(self._master, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", raw)[0]

    def _advance_all(self, t: float) -> None:
        for s in self._servos:
            s.advance(t)

    # -- observation -------------------------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        """The servo IDs on the bus, in order."""
        with self._lock:
            return [s.id for s in self._servos]

    def servo(self, dxl_id: int) -> ServoSnapshot:
        """A snapshot of servo ``dxl_id`` now (its model advanced to the bus clock)."""
        with self._lock:
            s = self._find(dxl_id)
            s.advance(self.now())
            return s.snapshot()

    @property
    def writes(self) -> list[WriteRecord]:
        """Every write received for a servo on the bus (write, sync write, bulk write),
        accepted or refused, oldest first (a copy)."""
        with self._lock:
            return list(self._writes)

    def clear_writes(self) -> None:
        """Forget the write records so far."""
        with self._lock:
            self._writes.clear()

    @property
    def stats(self) -> dict[str, int]:
        """Counters (a copy): packets received with a good CRC per instruction (``ping``,
        ``read``, ``write``, ``sync_read``, ``fast_sync_read``, ...; ``unknown`` for others),
        ``crc_errors`` (packets dropped unanswered), ``garbage_bytes`` (skipped looking for a
        header), ``rx_timeouts`` (incomplete packets given up), ``malformed`` (sync/bulk
        packets whose params do not parse), ``ignored`` (packets for no servo here),
        ``status_packets`` sent, ``write_rejected`` (writes a servo refused), ``tx_dropped``
        (reply bytes the pty would not take), ``replies_lost`` (see :meth:`lose_replies`)."""
        with self._lock:
            return dict(self._stats)

    # -- fault injection ---------------------------------------------------------------------
    def lose_replies(self, instruction: str, n: int = 1) -> None:
        """The next ``n`` status packets answering a unicast ``instruction`` (``ping``,
        ``read``, ``write``, ...) are lost on the wire: the servo acts on the packet, the host
        hears nothing and times out (noise, or a reply later than the host waits)."""
        if instruction not in INSTRUCTION_NAMES.values():
            raise ValueError(f"unknown instruction {instruction!r}")
        with self._lock:
            self._lose[instruction] = self._lose.get(instruction, 0) + int(n)

    def silence(self, dxl_id: int) -> None:
        """Cut servo ``dxl_id`` off the bus: it hears nothing and answers nothing (a host
        then times out) until :meth:`unsilence`. It keeps moving toward its last goal."""
        with self._lock:
            self._find(dxl_id).silenced = True

    def unsilence(self, dxl_id: int) -> None:
        """Put a silenced servo back on the bus."""
        with self._lock:
            self._find(dxl_id).silenced = False

    def overload(self, dxl_id: int) -> None:
        """Overload servo ``dxl_id``: Hardware Error Status bit 5 (0x20), torque off (it is in
        the default shutdown mask), alert bit in every status packet, torque-on refused with a
        result fail (0x01) until a reboot."""
        self.inject_hardware_error(dxl_id, HW_OVERLOAD)

    def inject_hardware_error(self, dxl_id: int, bits: int) -> None:
        """Latch Hardware Error Status ``bits`` (0x01 voltage, 0x04 overheating, 0x08 encoder,
        0x10 electrical shock, 0x20 overload) on servo ``dxl_id``; torque goes off if any of
        them is in its Shutdown (63) mask. A reboot clears them."""
        if not 0 < bits <= 0xFF:
            raise ValueError(f"hardware error bits must be 1..255, got {bits}")
        with self._lock:
            s = self._find(dxl_id)
            s.advance(self.now())
            s.raise_error(bits)

    def set_temperature(self, dxl_id: int, celsius: int) -> None:
        """Set Present Temperature (146, deg C) of servo ``dxl_id``; above Temperature Limit
        (31, default 70) it latches the overheating error (0x04, in the default shutdown
        mask: torque off)."""
        if not 0 <= celsius <= 255:
            raise ValueError(f"temperature must be 0..255 deg C, got {celsius}")
        with self._lock:
            s = self._find(dxl_id)
            s.advance(self.now())
            s.set_environment(temperature=celsius)

    def set_voltage(self, dxl_id: int, decivolts: int) -> None:
        """Set Present Input Voltage (144, 0.1 V units: 50 = 5.0 V) of servo ``dxl_id``;
        outside Min/Max Voltage Limit (34/32, default 3.5-7.0 V) it latches the input voltage
        error (0x01: alert bit; not in the default shutdown mask, torque stays)."""
        if not 0 <= decivolts <= 0xFFFF:
            raise ValueError(f"voltage must be 0..65535 (0.1 V units), got {decivolts}")
        with self._lock:
            s = self._find(dxl_id)
            s.advance(self.now())
            s.set_environment(voltage=decivolts)

    def _find(self, dxl_id: int) -> _Servo:
        for s in self._servos:
            if s.id == dxl_id:
                return s
        ids = [s.id for s in self._servos]
        raise KeyError(f"no servo with ID {dxl_id} on this bus (IDs: {ids})")

    # -- the reader thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._master], [], [], self._poll_s)
                with self._lock:  # read and handle under one lock: see wait_idle()
                    if self._closed:
                        break
                    if ready:
                        with contextlib.suppress(BlockingIOError):
                            self._rx += os.read(self._master, 4096)
                    out = self._parse()
                    if self.realtime:
                        self._advance_all(self.now())
                if out:
                    self._send(out)
        except Exception as e:
            if self._stop.is_set():  # the fds were closed under us: normal shutdown
                return
            self.failure = e
            log.exception("DynamixelBus(%s): the reader thread stopped", self.port)
            raise

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                _, ready, _ = select.select([], [self._master], [], 0.05)
                if not ready:
                    with self._lock:
                        self._stats["tx_dropped"] += len(view)
                    return

    def _parse(self) -> bytes:
        """Take every complete packet off the input buffer; the reply bytes."""
        out = bytearray()
        rx = self._rx
        while True:
            i = rx.find(HEADER)
            if i < 0:
                keep = next((k for k in (3, 2, 1) if rx.endswith(HEADER[:k])), 0)
                self._stats["garbage_bytes"] += len(rx) - keep
                del rx[: len(rx) - keep]
                self._pending_since = None
                break
            if i > 0:
                self._stats["garbage_bytes"] += i
                del rx[:i]
            if len(rx) >= 7:
                length = rx[5] | (rx[6] << 8)
                if not 3 <= length <= MAX_LENGTH:
                    self._stats["garbage_bytes"] += 1
                    del rx[0]
                    continue
                total = 7 + length
                if len(rx) >= total:
                    raw = bytes(rx[:total])
                    if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
                        self._stats["crc_errors"] += 1
                        del rx[0]  # resync: the next header may lie inside
                        self._pending_since = None
                        continue
                    del rx[:total]
                    self._pending_since = None
                    body = unstuff(raw[7:-2])
                    out += self._handle(raw[4], body[0], body[1:], self.now())
                    continue
            # an incomplete packet at the head: wait, but not for ever
            mono = time.monotonic()
            if self._pending_since is None:
                self._pending_since = mono
            elif mono - self._pending_since > self._rx_timeout_s:
                self._stats["rx_timeouts"] += 1
                del rx[0]
                self._pending_since = None
                continue
            break
        return bytes(out)

    # -- instructions ------------------------------------------------------------------------
    def _handle(self, pid: int, inst: int, params: bytes, now: float) -> bytes:
        self._stats[INSTRUCTION_NAMES.get(inst, "unknown")] += 1
        self._advance_all(now)
        live = [s for s in self._servos if not s.silenced]
        targets = live if pid == BROADCAST_ID else [s for s in live if s.id == pid]
        if not targets:
            self._stats["ignored"] += 1
            return b""
        for s in targets:
            s.last_rx = now
        if pid != BROADCAST_ID:
            reply = b"".join(self._unicast(s, inst, params, now) for s in targets)
            name = INSTRUCTION_NAMES.get(inst, "unknown")
            if reply and self._lose.get(name, 0) > 0:  # acted on, the status lost on the wire
                self._lose[name] -= 1
                self._stats["replies_lost"] += 1
                return b""
            return reply
        return self._broadcast(live, inst, params, now)

    def _status(self, s: _Servo, err: int, params: bytes = b"", kind: str = "other") -> bytes:
        """A status packet from ``s``, or nothing if its Status Return Level says so."""
        level = s.table[68]
        if not (kind == "ping" or level >= 2 or (level == 1 and kind == "read")):
            return b""
        self._stats["status_packets"] += 1
        return packet(s.id, bytes((INST_STATUS, s.error_byte(err))) + params)

    def _ping_reply(self, s: _Servo) -> bytes:
        params = s.table[0:2] + s.table[6:7]  # model number, firmware version
        return self._status(s, ERR_NONE, bytes(params), "ping")

    def _record_write(self, s: _Servo, address: int, data: bytes, now: float) -> int:
        self._writes.append(WriteRecord(now, s.id, address, bytes(data)))
        err = s.write(address, data, now)
        if err:
            self._stats["write_rejected"] += 1
        return err

    def _unicast(self, s: _Servo, inst: int, params: bytes, now: float) -> bytes:
        if inst == INST_PING:
            return self._ping_reply(s)
        if inst == INST_READ:
            if len(params) != 4:
                return self._status(s, ERR_DATA_LENGTH, kind="read")
            address = int.from_bytes(params[0:2], "little")
            length = int.from_bytes(params[2:4], "little")
            err, data = s.read(address, length)
            return self._status(s, err, data, "read")
        if inst == INST_WRITE:
            if len(params) < 3:
                return self._status(s, ERR_DATA_LENGTH)
            address = int.from_bytes(params[0:2], "little")
            err = self._record_write(s, address, params[2:], now)
            return self._status(s, err)
        if inst == INST_REBOOT:
            reply = self._status(s, ERR_NONE)  # answered first, then the servo restarts
            s.reboot(now)
            return reply
        return self._status(s, ERR_INSTRUCTION)

    def _broadcast(self, live: list[_Servo], inst: int, params: bytes, now: float) -> bytes:
        by_id = {s.id: s for s in live}
        if inst == INST_PING:
            return b"".join(self._ping_reply(s) for s in sorted(live, key=lambda s: s.id))
        if inst == INST_WRITE:
            if len(params) >= 3:
                address = int.from_bytes(params[0:2], "little")
                for s in live:
                    self._record_write(s, address, params[2:], now)
            return b""
        if inst == INST_REBOOT:
            for s in live:
                s.reboot(now)
            return b""
        if inst in (INST_SYNC_READ, INST_FAST_SYNC_READ):
            if len(params) < 4:
                self._stats["malformed"] += 1
                return b""
            address = int.from_bytes(params[0:2], "little")
            length = int.from_bytes(params[2:4], "little")
            wanted = [(i, address, length) for i in params[4:]]
            return self._group_read(by_id, wanted, fast=inst == INST_FAST_SYNC_READ)
        if inst in (INST_BULK_READ, INST_FAST_BULK_READ):
            if len(params) % 5:
                self._stats["malformed"] += 1
                return b""
            wanted = [
                (
                    params[k],
                    int.from_bytes(params[k + 1 : k + 3], "little"),
                    int.from_bytes(params[k + 3 : k + 5], "little"),
                )
                for k in range(0, len(params), 5)
            ]
            return self._group_read(by_id, wanted, fast=inst == INST_FAST_BULK_READ)
        if inst == INST_SYNC_WRITE:
            self._sync_write(by_id, params, now)
            return b""
        if inst == INST_BULK_WRITE:
            self._bulk_write(by_id, params, now)
            return b""
        return b""  # other broadcasts: nothing to do, nobody answers

    def _group_read(
        self, by_id: dict[int, _Servo], wanted: list[tuple[int, int, int]], fast: bool
    ) -> bytes:
        """Replies to a sync/bulk read listing ``(id, address, length)``: one status packet
        per servo, or (fast) one packet from ID FE with a segment per servo."""
        segments: list[bytes] = []
        plain = bytearray()
        for dxl_id, address, length in wanted:
            s = by_id.get(dxl_id)
            if s is None or s.table[68] == 0:
                break  # the chain stops at a servo that does not answer
            err, data = s.read(address, length)
            if fast:
                segments.append(bytes((s.error_byte(err), s.id)) + data.ljust(length, b"\x00"))
            else:
                plain += self._status(s, err, data, "read")
        if not fast:
            return bytes(plain)
        if not segments:
            return b""
        # LEN as announced by the first servo: INST + every listed servo's ERR, ID, DATA, CRC
        length = 1 + sum(n + 4 for _, _, n in wanted)
        out = bytearray(HEADER + bytes((BROADCAST_ID, length & 0xFF, length >> 8, INST_STATUS)))
        for seg in segments:  # not byte-stuffed; each CRC is the running CRC of the reply
            out += seg
            out += crc16(out).to_bytes(2, "little")
        self._stats["status_packets"] += 1
        return bytes(out)

    def _sync_write(self, by_id: dict[int, _Servo], params: bytes, now: float) -> None:
        if len(params) < 4:
            self._stats["malformed"] += 1
            return
        address = int.from_bytes(params[0:2], "little")
        length = int.from_bytes(params[2:4], "little")
        data = params[4:]
        if length == 0 or len(data) % (length + 1):
            self._stats["malformed"] += 1
            return
        for k in range(0, len(data), length + 1):
            s = by_id.get(data[k])
            if s is not None:
                self._record_write(s, address, data[k + 1 : k + 1 + length], now)

    def _bulk_write(self, by_id: dict[int, _Servo], params: bytes, now: float) -> None:
        k = 0
        while k < len(params):
            if k + 5 > len(params):
                self._stats["malformed"] += 1
                return
            dxl_id = params[k]
            address = int.from_bytes(params[k + 1 : k + 3], "little")
            length = int.from_bytes(params[k + 3 : k + 5], "little")
            data = params[k + 5 : k + 5 + length]
            if len(data) < length:
                self._stats["malformed"] += 1
                return
            s = by_id.get(dxl_id)
            if s is not None:
                self._record_write(s, address, data, now)
            k += 5 + length


def _start_positions(
    ids: list[int], start: int | Sequence[int] | Mapping[int, int]
) -> dict[int, float]:
    if isinstance(start, Mapping):
        unknown = sorted(set(start) - set(ids))
        if unknown:
            raise ValueError(f"start_positions names IDs not on the bus: {unknown}")
        return {i: float(start.get(i, HOME_TICKS)) for i in ids}
    if isinstance(start, int | float | np.integer | np.floating):
        return dict.fromkeys(ids, float(start))
    values = list(start)
    if len(values) != len(ids):
        raise ValueError(
            f"start_positions has {len(values)} values for {len(ids)} servos; give one per ID"
        )
    return {i: float(v) for i, v in zip(ids, values, strict=True)}
