"""The LEAP hand over Dynamixel: ROBOTIS's ``dynamixel-sdk`` (Protocol 2.0) on a U2D2.

``--robot dynamixel:port=/dev/ttyUSB0[,baud=4000000][,current_limit=350][,kp=600]`` with
``--hand leap``. Start-up follows what the LEAP hand needs (LEAP_Hand_API ``main.py``; facts
and sources in ``shared/HARDWARE-NOTES.md``): ping and identify the 16 servos, torque off,
current-based position mode (5), P/I/D gains (0.75x P and D on the side joints), goal
current, the bus watchdog, goal = the measured position, torque on. The loop's safety filter
starts from the measured pose, so the first targets move the hand from where it is within
the rate limit: never a jump.

Each tick: one sync write of the 16 goal positions (broadcast, no reply) and one fast sync
read of current, velocity and position (one reply packet). Joint angles go through the
hand spec's :class:`assets.hands.HardwareMap` (motor IDs, the +pi offset, signs).

Health: hardware error status, voltage and temperature at ``health_hz``; a servo that stops
answering, reports a hardware error or runs hotter than ``max_temperature_c`` raises a
fault: the session holds the hand and the report, the app and the recording name the servo.
On disconnect torque goes off (``on_disconnect=hold`` keeps it on).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assets.hands import XC330_NM_PER_A, load_hand
from devices.robots.base import ROBOTS
from devices.robots.hardware import RealHand
from devices.tick import HandState

log = logging.getLogger(__name__)

# -- the control table of the XC330 / XL330 (ROBOTIS e-manual) -------------------------------
ADDR_MODEL = 0  # 2 bytes
ADDR_FIRMWARE = 6  # 1
ADDR_OPERATING_MODE = 11  # 1 (EEPROM: torque off to write)
ADDR_CURRENT_LIMIT = 38  # 2, mA
ADDR_TORQUE_ENABLE = 64  # 1
ADDR_HW_ERROR = 70  # 1
ADDR_D_GAIN = 80  # 2
ADDR_I_GAIN = 82  # 2
ADDR_P_GAIN = 84  # 2
ADDR_BUS_WATCHDOG = 98  # 1, 20 ms units, 0 = off
ADDR_GOAL_CURRENT = 102  # 2, mA
ADDR_GOAL_POSITION = 116  # 4
ADDR_PRESENT_CURRENT = 126  # 2 (then velocity 4 at 128, position 4 at 132)
ADDR_PRESENT_VOLTAGE = 144  # 2, 0.1 V (then temperature 1 at 146)
LEN_PRESENT = 10
LEN_VOLTAGE_TEMP = 3

#: What the SDK raises when the adapter goes away: pyserial's errors and, from the input
#: flush before every packet, termios.error.
PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
NO_SDK = "dynamixel-sdk is not installed (pip install dynamixel-sdk)"
#: Current-based position control, what LEAP runs.
MODE_CURRENT_POSITION = 5
#: Model numbers of the servos LEAP hands use.
MODELS = {1240: "XC330-M288-T", 1200: "XL330-M288-T"}
#: Position ticks per radian (4096 per turn).
TICKS_PER_RAD = 4096 / (2 * np.pi)
#: Velocity unit: 0.229 rpm in rad/s.
VEL_RAD_S = 0.229 * 2 * np.pi / 60
#: Hardware error status bits (e-manual, address 70).
HW_ERRORS = {
    0x01: "input voltage",
    0x04: "overheating",
    0x08: "motor encoder",
    0x10: "electrical shock",
    0x20: "overload",
}
#: Bauds the SDK accepts (port_handler.getCFlagBaud) up to LEAP's 4 Mbaud.
BAUDS = (9600, 57600, 115200, 1000000, 2000000, 3000000, 4000000)
#: The LEAP side (abduction) joints' motor IDs: P and D at ``side_gain`` (LEAP_Hand_API).
LEAP_SIDE_IDS = (0, 4, 8)


def hw_error_text(bits: int) -> str:
    """Hardware error status bits in words: ``overload (hardware error 0x20)``."""
    names = [name for bit, name in HW_ERRORS.items() if bits & bit]
    return f"{', '.join(names) or 'unknown'} (hardware error 0x{bits:02x})"


def to_signed(value: int, nbytes: int) -> int:
    """The SDK's unsigned register value as the signed number it holds."""
    bits = 8 * nbytes
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


#: Where Linux shows USB serial adapters' settings.
USB_SERIAL_SYSFS = "/sys/bus/usb-serial/devices"


def latency_timer_ms(port: str, sysfs: str | Path = USB_SERIAL_SYSFS) -> int | None:
    """The USB serial adapter's latency timer (ms) of ``port`` from sysfs, or None where
    there is none (not an FTDI ``ttyUSB``, e.g. a pseudo-terminal)."""
    name = Path(os.path.realpath(port)).name
    path = Path(sysfs) / name / "latency_timer"
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def serial_ports() -> list[str]:
    """USB serial ports a U2D2 may be on."""
    return sorted(glob.glob("/dev/ttyUSB*") + glob.glob("/dev/ttyACM*"))


@dataclass
class DynamixelConfig:
    """Settings of a LEAP hand over Dynamixel.

    Attributes:
        hand: the hand (its spec carries the motor map): ``leap``.
        port: the U2D2's serial port.
        baud: the bus's baud rate (LEAP: 4,000,000).
        current_limit: goal current, mA (LEAP_Hand_API: 350; at most the servo's current
            limit register, 38).
        kp, ki, kd: position PID gains of the servos (LEAP_Hand_API: 600, 0, 200; DexNDM
            uses 800, 0, 200).
        side_gain: P and D of the side (abduction) joints scaled by this (LEAP: 0.75).
        watchdog_ms: the servos' bus watchdog: with torque on, a servo that hears nothing
            for this long stops where it is (20 ms steps up to 2540; 0 = off).
        on_disconnect: ``torque_off`` (the default) or ``hold`` (torque stays on).
        health_hz: how often errors, voltage and temperature are read.
        max_temperature_c: a servo at or above this temperature raises a fault.
        rate_hz: the control rate.
        wrist: how the hand is mounted (the palm frame controllers see).
        fast_read: read with Fast Sync Read (one reply; firmware v46+), else Sync Read.
        max_failed_reads: group reads that may fail in a row (a lost or late packet, every
            servo still answering a ping; the last measured joints stand in) before it is a
            fault.
    """

    hand: str = "leap"
    port: str = "/dev/ttyUSB0"
    baud: int = 4_000_000
    current_limit: int = 350
    kp: int = 600
    ki: int = 0
    kd: int = 200
    side_gain: float = 0.75
    watchdog_ms: int = 500
    on_disconnect: str = "torque_off"
    health_hz: float = 2.0
    max_temperature_c: float = 70.0
    rate_hz: float = 20.0
    wrist: str = "palm_up"
    fast_read: bool = True
    max_failed_reads: int = 5


class DynamixelError(ConnectionError):
    """The hand's bus could not be opened or a servo is missing or wrong (one line that
    names it)."""


@ROBOTS.register("dynamixel")
class DynamixelHand(RealHand):
    """A LEAP hand on a Dynamixel Protocol 2.0 bus."""

    Config = DynamixelConfig

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> str | None:
        try:
            import dynamixel_sdk  # noqa: F401
        except ImportError:
            return NO_SDK
        port = (options or {}).get("port")
        if port is not None:  # a port asked for (an emulated bus's pseudo-terminal, too)
            return None if os.path.exists(port) else f"no port {port} {_port_hint(port)}"
        if not serial_ports():
            return (
                "no USB serial port (/dev/ttyUSB*): plug in the U2D2 and power the hand, or "
                "give port=PATH"
            )
        return None

    def __init__(self, config: DynamixelConfig) -> None:
        hand = load_hand(config.hand)
        if hand.name != "leap":
            raise ValueError(
                f"the dynamixel backend drives the LEAP hand (--hand leap), not {config.hand!r}"
            )
        if hand.spec.hardware is None:
            raise ValueError(f"hand {config.hand!r} has no motor map for a Dynamixel bus")
        if config.baud not in BAUDS:
            raise ValueError(f"baud {config.baud} is not one of {', '.join(map(str, BAUDS))}")
        if config.on_disconnect not in ("torque_off", "hold"):
            raise ValueError("on_disconnect must be torque_off or hold")
        if not 0 <= config.watchdog_ms <= 2540:
            raise ValueError("watchdog_ms must be 0 (off) to 2540")
        if not 0 < config.current_limit <= 2352:
            raise ValueError("current_limit must be 1..2352 mA")
        if config.max_failed_reads < 1:
            raise ValueError("max_failed_reads must be at least 1")
        for k in ("kp", "ki", "kd"):
            if not 0 <= getattr(config, k) <= 16383:
                raise ValueError(f"{k} must be 0..16383")
        super().__init__(hand, config.rate_hz, config.wrist)
        self.config = config
        self.map = hand.spec.hardware
        self.ids = list(range(hand.n_joints))  # bus IDs, motor order
        self._port: Any = None
        self._ph: Any = None
        self._sync_write: Any = None
        self._reader: Any = None
        self._silent: set[int] = set()
        self._lost = False
        self._read_errors = 0  # group reads that failed while every servo answered
        self._failed_in_row = 0
        self._target = hand.default_open.copy()
        self._q = hand.default_open.copy()
        self._dq = np.zeros(hand.n_joints)
        self._effort = np.zeros(hand.n_joints)
        self._servos: dict[int, dict[str, Any]] = {i: {} for i in self.ids}
        self.bus: dict[str, Any] = {}

    # -- start-up ------------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            import dynamixel_sdk as sdk
        except ImportError as e:
            raise DynamixelError(
                "dynamixel-sdk is not installed (pip install dynamixel-sdk)"
            ) from e
        self._sdk = sdk
        c = self.config
        port = sdk.PortHandler(c.port)
        try:
            opened = port.openPort()
        except Exception as e:
            raise DynamixelError(f"cannot open {c.port}: {e} {_port_hint(c.port)}") from e
        if not opened:
            raise DynamixelError(f"cannot open {c.port} {_port_hint(c.port)}")
        self._port, self._ph = port, sdk.PacketHandler(2.0)
        try:
            if not port.setBaudRate(c.baud):
                raise DynamixelError(f"{c.port}: baud rate {c.baud} refused")
            self.bus = {"port": c.port, "baud": c.baud, "latency_timer_ms": None}
            lat = latency_timer_ms(c.port)
            self.bus["latency_timer_ms"] = lat
            if lat is not None and lat > 1:
                log.warning(
                    "%s: the USB serial latency timer is %d ms, which caps the loop near "
                    "30 Hz; set it to 1 ms: echo 1 | sudo tee "
                    "/sys/bus/usb-serial/devices/%s/latency_timer (see the README's udev rule)",
                    c.port,
                    lat,
                    Path(os.path.realpath(c.port)).name,
                )
            self._identify()
            self._configure(self.ids)
            self._reader = self._make_reader(self.ids)
            q_hw = self._read_present(must=True)
            self._sync_write = sdk.GroupSyncWrite(port, self._ph, ADDR_GOAL_POSITION, 4)
            for i in self.ids:  # goal = where each servo is: torque on moves nothing
                self._sync_write.addParam(i, _le(round(q_hw[i] * TICKS_PER_RAD), 4))
            self._check(self._sync_write.txPacket(), 0, "bus", "goal positions")
            for i in self.ids:
                self._write_reg(i, ADDR_TORQUE_ENABLE, 1, 1)
            self._target = self._q.copy()
        except BaseException:
            self._shutdown(torque_off=True)
            raise

    def _identify(self) -> None:
        """Ping every servo; one line naming the missing and the wrong ones."""
        missing, wrong = [], []
        for i in self.ids:
            for _ in "ab":  # twice: one late reply on a busy host is not a servo gone
                model, res, err = self._ph.ping(self._port, i)
                if res == self._sdk.COMM_SUCCESS:
                    break
            if res != self._sdk.COMM_SUCCESS:
                missing.append(i)
                continue
            fw, res, _ = self._ph.read1ByteTxRx(self._port, i, ADDR_FIRMWARE)
            self._servos[i] = {
                "model": MODELS.get(model, str(model)),
                "model_number": int(model),
                "firmware": int(fw) if res == self._sdk.COMM_SUCCESS else None,
                "joint": self.hand.joint_names[list(self.map.motor_ids).index(i)],
            }
            if model not in MODELS:
                wrong.append(f"servo {i} is model {model}")
            if err & 0x80:
                hw, _, _ = self._ph.read1ByteTxRx(self._port, i, ADDR_HW_ERROR)
                wrong.append(f"servo {i} reports {hw_error_text(hw)} (power-cycle it)")
        problems = []
        if missing:
            problems.append(
                f"servo{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} "
                f"did not answer"
            )
        problems += wrong
        if problems:
            raise DynamixelError(
                f"{self.config.port} at {self.config.baud} baud: {'; '.join(problems)} "
                f"(expected IDs 0-{len(self.ids) - 1}, {' or '.join(MODELS.values())}; check "
                f"power, cables and IDs)"
            )

    def _configure(self, ids: list[int]) -> None:
        """Torque off, current-based position mode, gains, goal current, watchdog."""
        c = self.config
        for i in ids:
            self._write_reg(i, ADDR_TORQUE_ENABLE, 0, 1)
            self._write_reg(i, ADDR_OPERATING_MODE, MODE_CURRENT_POSITION, 1)
            limit, res, _ = self._ph.read2ByteTxRx(self._port, i, ADDR_CURRENT_LIMIT)
            if res == self._sdk.COMM_SUCCESS and c.current_limit > limit:
                raise DynamixelError(
                    f"servo {i}: current_limit {c.current_limit} mA is above its current "
                    f"limit register ({limit} mA)"
                )
            side = c.side_gain if i in LEAP_SIDE_IDS else 1.0
            self._write_reg(i, ADDR_P_GAIN, round(c.kp * side), 2)
            self._write_reg(i, ADDR_I_GAIN, int(c.ki), 2)
            self._write_reg(i, ADDR_D_GAIN, round(c.kd * side), 2)
            self._write_reg(i, ADDR_GOAL_CURRENT, int(c.current_limit), 2)
            self._arm_watchdog(i)
            self._servos[i]["mode"] = MODE_CURRENT_POSITION

    def _arm_watchdog(self, i: int) -> None:
        """Servo ``i``'s bus watchdog off (0 first: one that tripped locks the goals until it
        is cleared), then on at ``watchdog_ms`` unless that is 0."""
        self._write_reg(i, ADDR_BUS_WATCHDOG, 0, 1)
        if self.config.watchdog_ms:
            self._write_reg(i, ADDR_BUS_WATCHDOG, max(1, round(self.config.watchdog_ms / 20)), 1)

    def _write_reg(self, i: int, addr: int, value: int, n: int, attempts: int = 3) -> None:
        """Write a register and wait for the servo's status. A register write is idempotent,
        so a status lost or late on a busy host (the SDK waits about 34 ms) is tried again,
        up to ``attempts`` times, before the servo is named."""
        fn = {1: self._ph.write1ByteTxRx, 2: self._ph.write2ByteTxRx, 4: self._ph.write4ByteTxRx}
        for _ in range(attempts):
            res, err = fn[n](self._port, i, addr, int(value) & ((1 << (8 * n)) - 1))
            if res not in (self._sdk.COMM_RX_TIMEOUT, self._sdk.COMM_RX_CORRUPT):
                break
        self._check(res, err, f"servo {i}", f"write {value} to address {addr}")

    def _check(self, res: int, err: int, who: str, what: str) -> None:
        if res != self._sdk.COMM_SUCCESS:
            raise DynamixelError(f"{who}: {what} failed: {self._ph.getTxRxResult(res)}")
        if err & 0x7F:
            raise DynamixelError(f"{who}: {what} refused: {self._ph.getRxPacketError(err)}")

    def _make_reader(self, ids: list[int]) -> Any:
        reader = self._sdk.GroupSyncRead(self._port, self._ph, ADDR_PRESENT_CURRENT, LEN_PRESENT)
        for i in ids:
            reader.addParam(i)
        return reader

    # -- each tick -----------------------------------------------------------------------------
    def _read_present(self, must: bool = False) -> np.ndarray:
        """Read current, velocity and position of the answering servos; returns hardware
        positions by bus ID (the last known for servos that do not answer)."""
        t0 = time.perf_counter()
        reader = self._reader
        ok = False
        if reader is not None:
            res = reader.fastSyncRead() if self.config.fast_read else reader.txRxPacket()
            ok = res == self._sdk.COMM_SUCCESS
        self.timer.add("read", time.perf_counter() - t0)
        q_hw = self.map.to_hardware(self._q)
        dq_hw = self.map.to_hardware(self._dq, offset=False)
        eff_hw = self.map.to_hardware(self._effort, offset=False)
        if not ok and must and reader is not None:  # start-up: one more try before giving up
            res = reader.fastSyncRead() if self.config.fast_read else reader.txRxPacket()
            ok = res == self._sdk.COMM_SUCCESS
        if not ok:
            if must:
                raise DynamixelError(f"{self.config.port}: the servos did not answer a sync read")
            self._find_silent()
            return q_hw
        self._failed_in_row = 0
        for i in self.ids:
            if i in self._silent:
                continue
            cur = to_signed(reader.getData(i, ADDR_PRESENT_CURRENT, 2), 2)
            vel = to_signed(reader.getData(i, ADDR_PRESENT_CURRENT + 2, 4), 4)
            pos = to_signed(reader.getData(i, ADDR_PRESENT_CURRENT + 6, 4), 4)
            q_hw[i] = pos / TICKS_PER_RAD
            dq_hw[i] = vel * VEL_RAD_S
            eff_hw[i] = cur / 1000.0 * XC330_NM_PER_A
            self._servos[i]["current_ma"] = cur
        self._q = self.map.from_hardware(q_hw)
        self._dq = self.map.from_hardware(dq_hw, offset=False)
        self._effort = self.map.from_hardware(eff_hw, offset=False)
        return q_hw

    def _find_silent(self) -> None:
        """A group read failed: ping each servo to name the ones that stopped answering,
        raise a fault for each, and read the others from now on."""
        silent = []
        for i in self.ids:
            if i in self._silent:
                silent.append(i)
                continue
            # twice: one late reply on a busy host is not a servo gone
            if not any(self._ph.ping(self._port, i)[1] == self._sdk.COMM_SUCCESS for _ in "ab"):
                silent.append(i)
        if not silent:  # a lost or late packet: the next tick reads again
            self._read_errors += 1
            self._failed_in_row += 1
            if self._failed_in_row >= self.config.max_failed_reads:
                self.raise_fault(
                    "bus",
                    f"{self._failed_in_row} sync reads in a row failed though every servo "
                    f"answers a ping",
                )
            return
        for i in silent:
            if i not in self._silent:
                self._servos[i]["answering"] = False
                self.raise_fault(f"servo {i}", "no reply")
        self._silent = set(silent)
        self._reader = self._make_reader([i for i in self.ids if i not in self._silent])

    def _read(self) -> HandState:
        if self._port is not None and not self._lost:
            try:
                self._read_present()
                if self.health_due(self.config.health_hz):
                    self._poll_health()
            except PORT_ERRORS as e:
                self._port_lost(e)
        return self.state(self._q, self._dq, self._target, self._effort)

    def _write(self, target: np.ndarray) -> None:
        self._target = target.copy()
        if self._sync_write is None or self._lost:
            return
        t0 = time.perf_counter()
        ticks = np.round(self.map.to_hardware(target) * TICKS_PER_RAD).astype(int)
        for i in self.ids:
            self._sync_write.changeParam(i, _le(int(ticks[i]), 4))
        try:
            res = self._sync_write.txPacket()
        except PORT_ERRORS as e:
            self._port_lost(e)
            return
        self.timer.add("write", time.perf_counter() - t0)
        if res != self._sdk.COMM_SUCCESS:
            self.raise_fault("bus", f"goal write failed: {self._ph.getTxRxResult(res)}")

    def _port_lost(self, e: BaseException) -> None:
        """The adapter went away (unplugged, closed): nothing more is sent; the fault holds
        the session; reconnecting the hand means a new session."""
        self._lost = True
        self.raise_fault("bus", f"{self.config.port} lost ({type(e).__name__}: {e})")

    # -- health --------------------------------------------------------------------------------
    def _poll_health(self) -> None:
        """Hardware error status, voltage and temperature of the answering servos."""
        t0 = time.perf_counter()
        ids = [i for i in self.ids if i not in self._silent]
        err_read = self._sdk.GroupSyncRead(self._port, self._ph, ADDR_HW_ERROR, 1)
        vt_read = self._sdk.GroupSyncRead(
            self._port, self._ph, ADDR_PRESENT_VOLTAGE, LEN_VOLTAGE_TEMP
        )
        for i in ids:
            err_read.addParam(i)
            vt_read.addParam(i)
        ok_err = err_read.txRxPacket() == self._sdk.COMM_SUCCESS
        ok_vt = vt_read.txRxPacket() == self._sdk.COMM_SUCCESS
        self.timer.add("health", time.perf_counter() - t0)
        if not (ok_err and ok_vt):
            self._find_silent()
            return
        for i in ids:
            s = self._servos[i]
            s["answering"] = True
            s["hardware_error"] = int(err_read.getData(i, ADDR_HW_ERROR, 1))
            s["voltage_v"] = round(vt_read.getData(i, ADDR_PRESENT_VOLTAGE, 2) / 10.0, 1)
            s["temperature_c"] = int(vt_read.getData(i, ADDR_PRESENT_VOLTAGE + 2, 1))
            if s["hardware_error"]:
                self.raise_fault(f"servo {i}", hw_error_text(s["hardware_error"]))
            elif s["temperature_c"] >= self.config.max_temperature_c:
                self.raise_fault(
                    f"servo {i}",
                    f"overheating ({s['temperature_c']} C, limit "
                    f"{self.config.max_temperature_c:g} C)",
                )

    def _recheck(self) -> bool:
        """Clearing a fault: silent servos must answer again; a servo with a hardware
        error is rebooted (the only way to clear one), set up again and torqued on at its
        measured position. True when every servo answers and reports no error."""
        if self._port is None or self._lost:
            return False
        for i in sorted(self._silent):
            _, res, _ = self._ph.ping(self._port, i)
            if res != self._sdk.COMM_SUCCESS:
                return False
        self._silent.clear()
        self._reader = self._make_reader(self.ids)
        # the watchdogs off while the servos are checked one by one (a servo that hears
        # nothing for watchdog_ms, e.g. while another reboots, locks its goals), on again
        # at the end whatever the outcome
        try:
            for i in self.ids:
                self._write_reg(i, ADDR_BUS_WATCHDOG, 0, 1)
            if not self._reboot_faulty():
                return False
            q_hw = self._read_present(must=True)
            for i in self.ids:  # goal = measured before torque comes back on
                tick = round(q_hw[i] * TICKS_PER_RAD)
                self._write_reg(i, ADDR_GOAL_POSITION, tick, 4)
                self._write_reg(i, ADDR_TORQUE_ENABLE, 1, 1)
        except DynamixelError as e:
            log.error("clearing the fault failed: %s", e)
            return False
        finally:
            for i in self.ids:
                try:
                    self._arm_watchdog(i)
                except DynamixelError as e:
                    log.error("servo %d: watchdog not set again: %s", i, e)
        self._target = self._q.copy()
        return True

    def _reboot_faulty(self) -> bool:
        """Reboot and set up again each servo with a hardware error; False when a servo
        does not answer or is too hot."""
        for i in self.ids:
            hw, res, _ = self._ph.read1ByteTxRx(self._port, i, ADDR_HW_ERROR)
            if res != self._sdk.COMM_SUCCESS:
                return False
            temp, res, _ = self._ph.read1ByteTxRx(self._port, i, ADDR_PRESENT_VOLTAGE + 2)
            if res == self._sdk.COMM_SUCCESS and temp >= self.config.max_temperature_c:
                return False
            if hw:
                log.warning("servo %d: %s; rebooting it", i, hw_error_text(hw))
                self._ph.reboot(self._port, i)
                time.sleep(0.05)
                self._configure([i])
            self._servos[i]["answering"] = True
        return True

    def health(self) -> dict[str, Any]:
        return {
            f"servo {i}": {**self._servos[i], "answering": i not in self._silent} for i in self.ids
        }

    def hand_report(self) -> dict[str, Any]:
        bus = {**self.bus, "failed_reads": self._read_errors, "timing_ms": self.bus_report()}
        return {**super().hand_report(), "bus": bus}

    # -- shutdown ------------------------------------------------------------------------------
    def _disconnect(self) -> None:
        self._shutdown(torque_off=self.config.on_disconnect == "torque_off")

    def _shutdown(self, torque_off: bool) -> None:
        if self._port is None:
            return
        try:
            if torque_off and not self._lost:
                for i in self.ids:
                    if i in self._silent:
                        continue
                    res, _ = self._ph.write1ByteTxRx(self._port, i, ADDR_TORQUE_ENABLE, 0)
                    if res != self._sdk.COMM_SUCCESS:
                        log.error("servo %d: torque off failed", i)
        except PORT_ERRORS as e:
            log.error("%s: torque off failed: %s", self.config.port, e)
        finally:
            with contextlib.suppress(*PORT_ERRORS):
                self._port.closePort()
            self._port = self._sync_write = self._reader = None


def _le(value: int, n: int) -> list[int]:
    """``value`` as ``n`` little-endian bytes (two's complement), as GroupSyncWrite takes."""
    v = int(value) & ((1 << (8 * n)) - 1)
    return [(v >> (8 * k)) & 0xFF for k in range(n)]


def _port_hint(port: str) -> str:
    if not os.path.exists(port):
        found = serial_ports()
        return f"(no such port; serial ports here: {', '.join(found) or 'none'})"
    if not os.access(port, os.R_OK | os.W_OK):
        return (
            "(permission denied: add yourself to the dialout group, or see the README's udev rule)"
        )
    return "(is another program, e.g. Dynamixel Wizard, holding it?)"
