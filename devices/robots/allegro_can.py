"""The Allegro hand v4 over CAN (``python-can``), with the joint PD loop on the host.

``--robot allegro_can:channel=can0[,interface=socketcan|pcan|virtual|udp_multicast]`` with
``--hand allegro``. The hand takes torques, not positions: a thread on the host runs a
joint PD loop at the hand's own rate (333 Hz, the position stream's 3 ms period) that turns
the latest target, one that passed the session's safety filter, into torques
``kp (target - q) - kd dq`` (plus, optionally, gravity compensation from the hand's model
for the mount's orientation), clamped to the per-joint limits of the v4 PWM clamps, and
sends the four torque frames. Start-up follows Wonik's driver (``AllegroHandDrv.cpp``):
servo off, info (a v4 hand is required: the torque scale differs on v3), serial, period
{3, 0, 0} ms, servo on; then the first positions of all four fingers, and the target starts
at the measured pose. Protocol: :mod:`devices.robots.allegro_protocol`; facts and sources in
``shared/HARDWARE-NOTES.md`` section 2.

Health: the four finger temperatures at ``health_hz``; frames lost against the stream's
period; a finger whose positions stop for ``frame_timeout_ms`` gets zero torque and raises
a fault (the session holds the others), as does a finger at or above
``max_temperature_c``. On disconnect: zero torques, servo off.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from assets.hands import load_hand
from devices.robots import allegro_protocol as proto
from devices.robots.base import ROBOTS
from devices.robots.hardware import RealHand
from devices.robots.scene import WRIST_ORIENTATIONS
from devices.tick import HandState

log = logging.getLogger(__name__)

NO_CAN = "python-can is not installed (pip install python-can)"
#: How long start-up waits for each reply and for the first positions of every finger (s).
REPLY_TIMEOUT_S = 0.5


@dataclass
class AllegroCANConfig:
    """Settings of an Allegro hand v4 on a CAN bus.

    Attributes:
        hand: the hand: ``allegro``.
        channel: the CAN channel (``can0``; PCAN: ``PCAN_USBBUS1``).
        interface: python-can interface: ``socketcan`` (Linux, Wonik's ROS2 way),
            ``pcan`` (PEAK's driver), ``virtual`` / ``udp_multicast`` (emulated hands).
        bitrate: the bus's bit rate (the Allegro's 1 Mbit/s).
        dev_id: the hand's CAN device ID (0 for a single hand).
        kp, kd: the host PD gains, N m/rad and N m s/rad (Hora's deployment: 3 and 0.1,
            its simulation's gains; Wonik's v4 defaults are 4000 and 150-300 /1200).
        velocity_filter: low-pass weight of the newest finite-difference velocity (0..1].
        torque_scale: the per-joint torque limits as a fraction of the v4 PWM clamps.
        gravity_compensation: add the model's gravity torques for the mount's orientation.
        control_hz: the PD loop's rate (the hand streams positions every 3 ms).
        frame_timeout_ms: a finger whose positions stop this long is a fault.
        health_hz: how often the finger temperatures are asked for.
        max_temperature_c: a finger at or above this temperature is a fault.
        rate_hz: the session's control rate.
        wrist: how the hand is mounted (the palm frame controllers see; gravity).
    """

    hand: str = "allegro"
    channel: str = "can0"
    interface: str = "socketcan"
    bitrate: int = 1_000_000
    dev_id: int = 0
    kp: float = 3.0
    kd: float = 0.1
    velocity_filter: float = 0.4
    torque_scale: float = 1.0
    gravity_compensation: bool = False
    control_hz: float = proto.CONTROL_HZ
    frame_timeout_ms: float = 100.0
    health_hz: float = 2.0
    max_temperature_c: float = 60.0
    rate_hz: float = 20.0
    wrist: str = "palm_up"


class AllegroCANError(ConnectionError):
    """The CAN bus could not be opened or the hand did not answer as a v4 does."""


@ROBOTS.register("allegro_can")
class AllegroCAN(RealHand):
    """An Allegro hand v4 on a CAN bus, torque-controlled by a PD loop on the host."""

    Config = AllegroCANConfig

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> str | None:
        try:
            import can  # noqa: F401
        except ImportError:
            return NO_CAN
        opts = options or {}
        if opts.get("interface") in ("virtual", "udp_multicast"):  # software buses
            return None
        channel = opts.get("channel", "can0")
        if opts.get("interface") == "pcan" or os.path.exists(f"/sys/class/net/{channel}"):
            return None
        if not os.path.exists("/dev/pcanusb32"):
            return (
                f"no CAN interface ({channel} or a PEAK device): bring it up with "
                f"`sudo ip link set {channel} up type can bitrate 1000000` (see the README)"
            )
        return None

    def __init__(self, config: AllegroCANConfig) -> None:
        hand = load_hand(config.hand)
        if hand.name != "allegro" or hand.n_joints != proto.NUM_JOINTS:
            raise ValueError(
                f"hand {config.hand!r} is not a 16-joint Allegro (the allegro_can backend "
                f"drives --hand allegro)"
            )
        if hand.spec.hardware is None:
            raise ValueError(f"hand {config.hand!r} has no motor map for the Allegro's CAN frames")
        if not (config.kp >= 0 and config.kd >= 0):
            raise ValueError("kp and kd must not be negative")
        if not 0 < config.velocity_filter <= 1:
            raise ValueError("velocity_filter must be in (0, 1]")
        if not 0 < config.torque_scale <= 1:
            raise ValueError("torque_scale must be in (0, 1]")
        if not config.control_hz > 0 or not config.frame_timeout_ms > 0:
            raise ValueError("control_hz and frame_timeout_ms must be positive")
        super().__init__(hand, config.rate_hz, config.wrist)
        self.config = config
        self.map = hand.spec.hardware
        self.tau_max = proto.TORQUE_LIMITS.reshape(-1) * config.torque_scale  # by CAN joint
        self._bus: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        n = proto.NUM_JOINTS
        self._q_hw = np.zeros(n)  # CAN joint order
        self._dq_hw = np.zeros(n)
        self._target_hw: np.ndarray | None = None
        self._tau_hw = np.zeros(n)
        self._last_frame = np.full(proto.NUM_FINGERS, -np.inf)  # monotonic s, per finger
        self._frames = np.zeros(proto.NUM_FINGERS, int)
        self._taken = 0  # position frames of all fingers taken in
        self._taken_at = np.zeros(proto.NUM_FINGERS, int)  # ... at each finger's last one
        self._temps: list[int | None] = [None] * proto.NUM_FINGERS
        self._silent: set[int] = set()
        self._stream_t0 = 0.0
        self._info: proto.HandInfo | None = None
        self._serial: str | None = None
        self._pending_faults: list[tuple[str, str]] = []
        self._gravity = None
        self._target = hand.default_open.copy()

    # -- start-up ------------------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            import can
        except ImportError as e:
            raise AllegroCANError(NO_CAN) from e
        self._can = can
        c = self.config
        try:
            self._bus = can.Bus(interface=c.interface, channel=c.channel, bitrate=c.bitrate)
        except (can.CanError, OSError, ValueError, ImportError) as e:
            raise AllegroCANError(
                f"cannot open CAN {c.interface}:{c.channel}: {e} (is the interface up? "
                f"`sudo ip link set {c.channel} up type can bitrate {c.bitrate}`)"
            ) from e
        try:
            self._start_hand()
        except BaseException:
            self._shutdown()
            raise
        if c.gravity_compensation:
            self._gravity = _GravityModel(self.hand, c.wrist)
        self._stop.clear()
        self._thread = threading.Thread(target=self._pd_loop, name="allegro-pd", daemon=True)
        self._thread.start()

    def _send(self, cmd: int, data: bytes = b"", remote: bool = False) -> None:
        msg = self._can.Message(
            arbitration_id=proto.arbitration_id(cmd, self.config.dev_id),
            data=b"" if remote else data,
            is_extended_id=False,
            is_remote_frame=remote,
        )
        self._bus.send(msg, timeout=0.01)

    def _request(self, cmd: int, what: str) -> bytes:
        """Ask (a remote frame) and wait for the reply's data; position frames that stream
        meanwhile are taken in."""
        self._send(cmd, remote=True)
        end = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < end:
            msg = self._bus.recv(timeout=max(0.0, end - time.monotonic()))
            if msg is None:
                break
            got = self._take(msg)
            if got is not None and got[0] == cmd:
                return got[1]
        raise AllegroCANError(
            f"CAN {self.config.interface}:{self.config.channel}: the hand did not answer the "
            f"{what} request (power, cabling, bit rate, device ID {self.config.dev_id}?)"
        )

    def _start_hand(self) -> None:
        while self._bus.recv(timeout=0) is not None:  # flush
            pass
        self._send(proto.CMD_SERVO_OFF)
        self._info = proto.decode_info(self._request(proto.RTR_INFO, "info"))
        if self._info.hand_version != 4:
            raise AllegroCANError(
                f"the hand reports version {self._info.hand_version}: only the v4's torque "
                f"scale (PWM 1200 per N m) is supported"
            )
        self._serial = proto.decode_serial(self._request(proto.RTR_SERIAL, "serial number"))
        self._send(proto.CMD_PERIOD, proto.encode_period(proto.DEFAULT_PERIOD_MS, 0, 0))
        self._send(proto.CMD_SERVO_ON)
        self._stream_t0 = time.monotonic()
        end = self._stream_t0 + REPLY_TIMEOUT_S
        while time.monotonic() < end and not np.all(np.isfinite(self._last_frame)):
            msg = self._bus.recv(timeout=0.01)
            if msg is not None:
                self._take(msg)
        missing = [f for f in range(proto.NUM_FINGERS) if not np.isfinite(self._last_frame[f])]
        if missing:
            names = ", ".join(f"{f} ({proto.FINGER_NAMES[f]})" for f in missing)
            raise AllegroCANError(f"finger {names}: no position frames after servo on")
        self._dq_hw[:] = 0.0
        self._target_hw = self._q_hw.copy()  # hold where it is: no jump at start
        self._target = self.map.from_hardware(self._q_hw)
        self._frames[:] = 0
        self._stream_t0 = time.monotonic()

    # -- frames in ------------------------------------------------------------------------------
    def _take(self, msg: Any) -> tuple[int, bytes] | None:
        """Take in one received frame; returns (command, data) of replies and streams."""
        if msg.is_remote_frame or msg.is_extended_id:
            return None
        cmd, dev = proto.split_id(msg.arbitration_id)
        if dev != self.config.dev_id:
            return None
        data = bytes(msg.data)
        try:
            if proto.RTR_POSITION <= cmd < proto.RTR_POSITION + proto.NUM_FINGERS:
                f = cmd - proto.RTR_POSITION
                q4 = proto.decode_positions(data)
                now = time.monotonic()
                with self._lock:
                    sl = slice(4 * f, 4 * f + 4)
                    dt = now - self._last_frame[f]
                    if np.isfinite(dt) and dt > 1e-4:
                        a = self.config.velocity_filter
                        v = (q4 - self._q_hw[sl]) / dt
                        self._dq_hw[sl] = a * v + (1 - a) * self._dq_hw[sl]
                    self._q_hw[sl] = q4
                    self._last_frame[f] = now
                    self._frames[f] += 1
                    self._taken += 1
                    self._taken_at[f] = self._taken
            elif proto.RTR_TEMPERATURE <= cmd < proto.RTR_TEMPERATURE + proto.NUM_FINGERS:
                self._temps[cmd - proto.RTR_TEMPERATURE] = proto.decode_temperature(data)
        except ValueError as e:  # a malformed frame: counted, never acted on
            log.warning("allegro: malformed frame 0x%03x: %s", msg.arbitration_id, e)
            return None
        return cmd, data

    # -- the PD loop (its own thread) -----------------------------------------------------------
    def _pd_loop(self) -> None:
        period = 1.0 / self.config.control_hz
        timeout = self.config.frame_timeout_ms / 1e3
        # the other three fingers' frames in half a timeout at the stream's rate
        min_others = max(3, round(3 * 0.5 * timeout * 1e3 / proto.DEFAULT_PERIOD_MS))
        next_t = time.perf_counter()
        last = None
        while not self._stop.is_set():
            try:
                while (msg := self._bus.recv(timeout=0)) is not None:
                    self._take(msg)
                now = time.monotonic()
                with self._lock:
                    silent = _silent_fingers(
                        now - self._last_frame, timeout, self._taken - self._taken_at, min_others
                    )
                    tau = self._pd(silent)
                self._tau_hw = tau
                for f in range(proto.NUM_FINGERS):
                    self._send(
                        proto.CMD_TORQUE + f, proto.encode_torques(tau[4 * f : 4 * f + 4], f)
                    )
                for f in sorted(silent - self._silent):
                    self._pending_faults.append(
                        (f"finger {f}", f"no position frames for {timeout * 1e3:.0f} ms")
                    )
                self._silent = silent
            except (self._can.CanError, OSError) as e:
                self._pending_faults.append(("bus", f"CAN error: {e}"))
                self._stop.wait(0.05)
            t = time.perf_counter()
            if last is not None:
                self.timer.add("pd_period", t - last)
            last = t
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.perf_counter()  # overran: do not try to catch up

    def _pd(self, silent: set[int]) -> np.ndarray:
        """Torques (CAN joint order, N m) for the current target; zero for silent fingers.
        Called with the lock held."""
        c = self.config
        if self._target_hw is None:
            return np.zeros(proto.NUM_JOINTS)
        tau = c.kp * (self._target_hw - self._q_hw) - c.kd * self._dq_hw
        if self._gravity is not None:
            tau = tau + self.map.to_hardware(
                self._gravity(self.map.from_hardware(self._q_hw)), offset=False
            )
        tau = np.clip(tau, -self.tau_max, self.tau_max)
        for f in silent:
            tau[4 * f : 4 * f + 4] = 0.0
        return tau

    # -- the session's side ------------------------------------------------------------------
    def _read(self) -> HandState:
        while self._pending_faults:
            self.raise_fault(*self._pending_faults.pop(0))
        if self._bus is not None and self.health_due(self.config.health_hz):
            self._poll_health()
        with self._lock:
            q = self.map.from_hardware(self._q_hw)
            dq = self.map.from_hardware(self._dq_hw, offset=False)
        return self.state(q, dq, self._target)

    def _write(self, target: np.ndarray) -> None:
        self._target = target.copy()
        with self._lock:
            self._target_hw = self.map.to_hardware(target)

    def _poll_health(self) -> None:
        """Ask for the temperatures (the replies arrive in the PD loop); check them."""
        try:
            for f in range(proto.NUM_FINGERS):
                self._send(proto.RTR_TEMPERATURE + f, remote=True)
        except (self._can.CanError, OSError) as e:
            self.raise_fault("bus", f"CAN error: {e}")
            return
        for f, t in enumerate(self._temps):
            if t is not None and t >= self.config.max_temperature_c:
                self.raise_fault(
                    f"finger {f}",
                    f"overheating ({t} C, limit {self.config.max_temperature_c:g} C)",
                )

    def _recheck(self) -> bool:
        if self._bus is None or self._thread is None or not self._thread.is_alive():
            return False
        if self._silent:
            return False
        temps = [t for t in self._temps if t is not None]
        if any(t >= self.config.max_temperature_c for t in temps):
            return False
        with self._lock:  # move on from where the hand is
            self._target_hw = self._q_hw.copy()
            self._target = self.map.from_hardware(self._q_hw)
        return True

    def health(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._stream_t0, 1e-9)
        expected = elapsed * 1e3 / proto.DEFAULT_PERIOD_MS
        with self._lock:
            frames = self._frames.copy()
            tau = self._tau_hw.copy()
        out = {}
        for f in range(proto.NUM_FINGERS):
            out[f"finger {f}"] = {
                "finger": proto.FINGER_NAMES[f],
                "temperature_c": self._temps[f],
                "answering": f not in self._silent,
                "position_frames": int(frames[f]),
                "lost_frames": max(0, round(expected - frames[f])),
                "torque_nm": [round(float(v), 3) for v in tau[4 * f : 4 * f + 4]],
            }
        return out

    def hand_report(self) -> dict[str, Any]:
        info = None
        if self._info is not None:
            info = {
                "hand_version": self._info.hand_version,
                "firmware": self._info.firmware_version,
                "serial": self._serial,
            }
        return {
            **super().hand_report(),
            "bus": {
                "interface": self.config.interface,
                "channel": self.config.channel,
                "hand": info,
                "timing_ms": self.bus_report(),
            },
        }

    # -- shutdown ------------------------------------------------------------------------------
    def _disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        self._shutdown()

    def _shutdown(self) -> None:
        if self._bus is None:
            return
        try:
            for f in range(proto.NUM_FINGERS):
                self._send(proto.CMD_TORQUE + f, proto.encode_torques(np.zeros(4), f))
            self._send(proto.CMD_SERVO_OFF)
        except (self._can.CanError, OSError) as e:
            log.error("allegro: servo off failed: %s", e)
        finally:
            self._bus.shutdown()
            self._bus = None


#: All fingers silent at once reads as the whole hand gone only after this many timeouts
#: (a host thread that did not run for a while sees every finger stale together).
WHOLE_HAND_TIMEOUTS = 4


def _silent_fingers(
    age_s: np.ndarray,
    timeout_s: float,
    others_since: np.ndarray | None = None,
    min_others: int = 0,
) -> set[int]:
    """The fingers whose position frames stopped: older than ``timeout_s`` while the other
    fingers stream on (``others_since[f]``: frames of the others taken in since finger f's
    last, at least ``min_others``; a sender stalled between two fingers' frames of one
    period is not a silent finger); all of them only once every finger is
    ``WHOLE_HAND_TIMEOUTS`` times as old (power lost, cable out) rather than once this
    process was starved of CPU."""
    stale = age_s > timeout_s
    if stale.all():
        return set(range(age_s.size)) if np.all(age_s > WHOLE_HAND_TIMEOUTS * timeout_s) else set()
    if others_since is not None:
        stale &= others_since >= min_others
    return set(np.flatnonzero(stale).tolist())


class _GravityModel:
    """Gravity torques of the hand's joints (spec order, N m) for a mount orientation: the
    MuJoCo model's bias forces at rest."""

    def __init__(self, hand: Any, wrist: str) -> None:
        import mujoco

        self._mj = mujoco
        self.model = hand.mjspec().compile()
        self.data = mujoco.MjData(self.model)
        g_palm = WRIST_ORIENTATIONS[wrist].T @ np.array([0.0, 0.0, -9.81])
        self.model.opt.gravity[:] = hand.palm_frame_rot @ g_palm  # into the palm body frame
        jids = [self.model.joint(j).id for j in hand.joint_names]
        self._qadr = np.array([self.model.jnt_qposadr[j] for j in jids])
        self._vadr = np.array([self.model.jnt_dofadr[j] for j in jids])

    def __call__(self, q: np.ndarray) -> np.ndarray:
        self.data.qpos[self._qadr] = q
        self.data.qvel[:] = 0.0
        self._mj.mj_forward(self.model, self.data)
        return self.data.qfrc_bias[self._vadr].copy()
