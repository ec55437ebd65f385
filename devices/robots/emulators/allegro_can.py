"""An emulated Allegro hand v4 on a python-can bus: the real CAN protocol, simple physics.

:class:`AllegroCANHand` opens its own ``can.Bus`` (python-can's ``virtual`` interface by
default: buses on the same channel name in one process see each other's frames, never
their own) and behaves, on the wire, as the hand does for Wonik's ROS1 driver
(:mod:`devices.robots.allegro_protocol` has the frames and their sources): it answers
requests (info, serial, positions, temperatures, IMU), and once the host has set a
position period and switched the servo on it streams the four position frames every
period (3 ms, 333 Hz). Torque frames drive 16 independent joints: each a rotor of inertia
``I`` (kg·m²) with viscous damping ``b`` (N·m·s/rad) and an optional weak spring ``k``
(N·m/rad, a stand-in for gravity or cable stiffness) towards ``rest_q``::

    I q̈ = τ − b q̇ − k (q − rest_q),   τ = PWM / 1200   (N·m)

integrated at a fixed 1 ms step (semi-implicit Euler, the damping implicit), with the joint
limits as hard, inelastic stops. The default inertias (0.3–0.5 g·m²) and damping (0.05
N·m·s/rad) make Hora's PD gains (kp 3 N·m/rad, kd 0.1 N·m·s/rad, run on the host at 333
Hz with velocities differenced from the stream) settle a joint in 0.1–0.3 s without
overshoot; the PWM clamps keep torques small, so a large step is speed-limited first.

Choices where the real firmware's behaviour is not published (documented, testable):

* Streaming runs while the servo is on and a period is set; each of the three periods
  (position, IMU, temperature; ms) runs its own stream, 0 stops it. Requests are
  answered whatever the servo state.
* A torque set is applied once all four finger frames have arrived since the last set
  (mask 0xF, as the driver sends them); a finger sent twice before the set is complete
  keeps its latest frame. Torque frames received while the servo is off are logged but not
  applied, and servo on or off discards a partial set; the applied torque is zero with the
  servo off.
* A complete torque set is held for ``torque_timeout_s`` (50 ms by default), then the
  torque drops to zero (a watchdog: a host that stops sending does not leave the motors
  pushing). The PWM is clamped to the global ±1200 only; values beyond the per-joint
  clamps (:data:`~devices.robots.allegro_protocol.PWM_LIMITS`) are applied but counted
  (``stats["rx:pwm_over_limit"]``) so a test can require a client to clamp.
* Pose (0xE0–0xE3) and config (0x68) frames are checked and counted, not acted on.
* Malformed frames (wrong length) are counted (``rx:malformed``), logged and ignored.
* The IMU reply is six zero bytes (a hand at rest; its scaling is unpublished).
* The info reply reports the highest finger temperature and sets the high-temperature
  bit at ``high_temperature_c`` (70 °C by default; the firmware's threshold is unknown)
  and the internal-communication-fault bit while a finger is silenced.

Two clocks. With ``realtime=True`` (the default) emulator time follows the wall clock
(``time.perf_counter``): one daemon thread sleeps to the next stream deadline or frame,
integrates the physics up to now and sends what is due. With ``realtime=False`` the
emulator is lock-step, for deterministic tests: time advances only by one position period
per complete torque set (3 ms unless the host set another) and by :meth:`advance`; stream
frames due in that time are sent at once, each with the state at its due time.

Faults for tests (thread-safe): :meth:`silence_finger`, :meth:`set_temperature`,
:meth:`drop_frames`, :meth:`disconnect` (and :meth:`reconnect`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import can
import numpy as np

from devices.robots import allegro_protocol as proto

log = logging.getLogger(__name__)

#: The physics step and the emulator's time unit, s (1 ms; periods are whole ms).
TICK_S = 0.001
#: The longest time the real-time thread integrates in one go, in ticks; after a longer
#: stall (a suspended process) emulator time jumps ahead and ``stats["overrun"]`` counts it.
MAX_CATCHUP_TICKS = 200
#: How long the thread waits for a frame when no stream is due, s (bounds how long
#: :meth:`AllegroCANHand.close` waits and how stale the state may be while idle).
IDLE_POLL_S = 0.01
#: How long one outgoing frame may wait for the bus, s. On the ``virtual`` interface 0: a
#: receiver whose bounded queue is full loses the frame (as a CAN controller whose receive
#: buffer overflows) instead of stalling the hand; elsewhere this much.
SEND_TIMEOUT_S = 0.005

#: Joint limits, rad, joint order of :mod:`~devices.robots.allegro_protocol` (Menagerie
#: wonik_allegro right_hand.xml): index, middle, ring (base, proximal, medial, distal),
#: then thumb (base, proximal, medial, distal).
DEFAULT_LOWER = np.array([-0.47, -0.196, -0.174, -0.227] * 3 + [0.263, -0.105, -0.189, -0.162])
DEFAULT_UPPER = np.array([0.47, 1.61, 1.709, 1.618] * 3 + [1.396, 1.163, 1.644, 1.719])
#: Joint inertia, kg·m² (rotor and link; no published value): heavier near the palm.
DEFAULT_INERTIA = np.array([5e-4, 5e-4, 4e-4, 3e-4] * 4)
#: Viscous joint damping, N·m·s/rad: with the PWM clamps, joints reach about 5–10 rad/s.
DEFAULT_DAMPING = 0.05
#: Finger temperatures at start-up, °C.
DEFAULT_TEMPERATURE_C = 30.0
for _a in (DEFAULT_LOWER, DEFAULT_UPPER, DEFAULT_INERTIA):
    _a.setflags(write=False)

_STREAM_POSITION, _STREAM_IMU, _STREAM_TEMPERATURE = 0, 1, 2


def _per_joint(value: float | Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """``value`` (scalar or 16 values) as a (16,) float array; raises ValueError if not
    finite or not broadcastable."""
    arr = np.asarray(value, dtype=float)
    try:
        arr = np.broadcast_to(arr, (proto.NUM_JOINTS,)).copy()
    except ValueError:
        raise ValueError(
            f"{name}: expected a scalar or {proto.NUM_JOINTS} values, got shape {arr.shape}"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite")
    return arr


class AllegroCANHand:
    """An emulated Allegro hand v4 on its own python-can bus (a context manager).

    Args:
        channel: the bus channel; with the ``virtual`` interface, any name shared with the
            host's bus in the same process.
        interface: the python-can interface (``virtual``; ``udp_multicast`` or
            ``socketcan`` on a ``vcan`` device also work across processes).
        start_q: (16,) initial joint angles, rad, inside the limits; default 0 clipped to
            the limits (the thumb's base starts at its lower limit).
        seed: seeds the frame-drop draws (:meth:`drop_frames`).
        realtime: True: time follows the wall clock and the hand streams on its own;
            False: lock-step (see the module docstring).
        dev_id: the hand's CAN device ID (0..3); frames for other IDs are ignored.
        lower, upper: (16,) joint limits, rad (hard stops); default :data:`DEFAULT_LOWER`,
            :data:`DEFAULT_UPPER`.
        inertia: joint inertia, kg·m², scalar or (16,); default :data:`DEFAULT_INERTIA`.
        damping: viscous damping, N·m·s/rad, scalar or (16,).
        stiffness: spring towards ``rest_q``, N·m/rad, scalar or (16,) (default 0: none).
        rest_q: (16,) the spring's rest angles, rad; default ``start_q``.
        torque_timeout_s: a torque set older than this is dropped (zero torque), s.
        temperature_c: the finger temperatures at start, °C (scalar or 4 values).
        high_temperature_c: the info reply's high-temperature bit is set at or above this.
        serial: the serial number reply, ASCII, at most 8 characters.
        hardware_version, firmware_version: the info reply's version words (the high byte
            of ``hardware_version`` is the hand version, 4).
        left: the info reply's hand type (False: right hand).
        log_size: the most torque frames :attr:`torque_log` keeps (the oldest go first).
        bus_kwargs: more keyword arguments for ``can.Bus``.
    """

    def __init__(
        self,
        channel: str = "allegro0",
        interface: str = "virtual",
        start_q: Sequence[float] | np.ndarray | None = None,
        seed: int = 0,
        realtime: bool = True,
        *,
        dev_id: int = 0,
        lower: Sequence[float] | np.ndarray | None = None,
        upper: Sequence[float] | np.ndarray | None = None,
        inertia: float | Sequence[float] | np.ndarray | None = None,
        damping: float | Sequence[float] | np.ndarray = DEFAULT_DAMPING,
        stiffness: float | Sequence[float] | np.ndarray = 0.0,
        rest_q: Sequence[float] | np.ndarray | None = None,
        torque_timeout_s: float = 0.05,
        temperature_c: float | Sequence[float] = DEFAULT_TEMPERATURE_C,
        high_temperature_c: float = 70.0,
        serial: str = "EMU00001",
        hardware_version: int = 0x0400,
        firmware_version: int = 0x0001,
        left: bool = False,
        log_size: int = 100_000,
        bus_kwargs: dict[str, Any] | None = None,
    ) -> None:
        proto.arbitration_id(0, dev_id)  # validates dev_id
        self.channel = channel
        self.interface = interface
        self.realtime = bool(realtime)
        self.dev_id = int(dev_id)

        self._lower = _per_joint(DEFAULT_LOWER if lower is None else lower, "lower")
        self._upper = _per_joint(DEFAULT_UPPER if upper is None else upper, "upper")
        if np.any(self._lower >= self._upper):
            raise ValueError("joint limits: every lower limit must be below its upper limit")
        if start_q is None:
            q0 = np.clip(np.zeros(proto.NUM_JOINTS), self._lower, self._upper)
        else:
            q0 = _per_joint(start_q, "start_q")
            if np.asarray(start_q).shape != (proto.NUM_JOINTS,):
                raise ValueError(f"start_q: expected {proto.NUM_JOINTS} joint angles")
            outside = np.flatnonzero((q0 < self._lower) | (q0 > self._upper))
            if outside.size:
                names = ", ".join(proto.JOINT_NAMES[i] for i in outside)
                raise ValueError(f"start_q outside the joint limits at {names}")
        inertia_arr = _per_joint(DEFAULT_INERTIA if inertia is None else inertia, "inertia")
        damping_arr = _per_joint(damping, "damping")
        self._stiffness = _per_joint(stiffness, "stiffness")
        if np.any(inertia_arr <= 0):
            raise ValueError("inertia must be positive (kg·m²)")
        if np.any(damping_arr < 0) or np.any(self._stiffness < 0):
            raise ValueError("damping and stiffness must not be negative")
        # the spring is explicit: stable for k h² / I < 4; keep well inside
        if np.any(self._stiffness * TICK_S**2 / inertia_arr > 1.0):
            raise ValueError("stiffness too high for the 1 ms step (need k·h²/I ≤ 1)")
        self._rest = q0.copy() if rest_q is None else _per_joint(rest_q, "rest_q")
        self._has_spring = bool(np.any(self._stiffness > 0))
        self._h_inv_i = TICK_S / inertia_arr
        self._damp_factor = 1.0 / (1.0 + TICK_S * damping_arr / inertia_arr)
        if not (math.isfinite(torque_timeout_s) and torque_timeout_s > 0):
            raise ValueError("torque_timeout_s must be positive")
        self._timeout_ticks = max(1, round(torque_timeout_s / TICK_S))
        temps = np.broadcast_to(np.asarray(temperature_c, dtype=float), (proto.NUM_FINGERS,))
        if not np.all(np.isfinite(temps)):
            raise ValueError("temperature_c must be finite")
        self._high_temperature_c = float(high_temperature_c)
        self._serial_data = proto.encode_serial(serial)
        self._info_template = proto.HandInfo(hardware_version, firmware_version, left, 0, 0)
        proto.encode_info(self._info_template)  # validates the version words
        if log_size < 1:
            raise ValueError("log_size must be at least 1")

        # state, guarded by _lock
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._tick = 0
        self._q = q0.copy()
        self._dq = np.zeros(proto.NUM_JOINTS)
        self._applied = np.zeros(proto.NUM_JOINTS)
        self._torque_tick: int | None = None
        self._pending = np.zeros(proto.NUM_JOINTS)
        self._mask = 0
        self._servo_on = False
        self._periods = [0, 0, 0]
        self._next: list[int | None] = [None, None, None]
        self._connected = True
        self._silenced: set[int] = set()
        self._temps = temps.copy()
        self._drop_p = 0.0
        self._rng = np.random.default_rng(seed)
        self._stats: Counter[str] = Counter()
        self._torque_log: deque[tuple[float, int, tuple[int, int, int, int]]] = deque(
            maxlen=int(log_size)
        )
        self._error: BaseException | None = None
        self._closed = False

        self._stop = threading.Event()
        self._bus = can.Bus(interface=interface, channel=channel, **(bus_kwargs or {}))
        self._send_timeout = 0.0 if interface == "virtual" else SEND_TIMEOUT_S
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(
            target=self._run, name=f"allegro-emulator-{channel}", daemon=True
        )
        self._thread.start()

    # -----------------------------------------------------------------------------------
    # life cycle

    def __enter__(self) -> AllegroCANHand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and shut the bus down; idempotent, returns within about
        :data:`IDLE_POLL_S` (or one stream period)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                log.warning("allegro emulator thread on %s did not stop in 2 s", self.channel)
        # a send stuck in a driver must not keep the bus open: wait for it a while only
        locked = self._send_lock.acquire(timeout=1.0)
        try:
            self._bus.shutdown()
        finally:
            if locked:
                self._send_lock.release()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the thread, if one did (None while all is well)."""
        return self._error

    # -----------------------------------------------------------------------------------
    # faults (thread-safe)

    def silence_finger(self, finger: int) -> None:
        """Finger ``finger``'s board goes quiet: its position frames (streamed and
        requested) and its temperature replies stop; the info reply flags an internal
        communication fault. Its torques are still applied."""
        finger = self._finger(finger)
        with self._lock:
            self._silenced.add(finger)

    def unsilence_finger(self, finger: int) -> None:
        """Undo :meth:`silence_finger`."""
        finger = self._finger(finger)
        with self._lock:
            self._silenced.discard(finger)

    def set_temperature(self, finger: int, celsius: float) -> None:
        """Set temperature sensor ``finger``'s reading, °C (replies carry whole degrees)."""
        finger = self._finger(finger)
        if not math.isfinite(celsius):
            raise ValueError(f"temperature must be finite, got {celsius}")
        with self._lock:
            self._temps[finger] = float(celsius)

    def drop_frames(self, p: float) -> None:
        """Lose each outgoing frame with probability ``p`` (0..1; draws seeded by ``seed``)."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability {p} outside 0..1")
        with self._lock:
            self._drop_p = float(p)

    def disconnect(self) -> None:
        """The hand drops off the bus (cable pulled, power lost): it sends nothing and
        ignores every frame; servo off, streams off, torque zero; the joints coast.
        :meth:`reconnect` brings it back as after power-up."""
        with self._lock:
            self._connected = False
            self._servo_on = False
            self._periods = [0, 0, 0]
            self._clear_torque_locked()
            self._update_streams_locked()

    def reconnect(self) -> None:
        """Undo :meth:`disconnect`: the hand answers again, servo off, no streams (the
        host must run its start-up sequence again)."""
        with self._lock:
            self._connected = True

    # -----------------------------------------------------------------------------------
    # lock-step time

    def advance(self, seconds: float) -> None:
        """Lock-step mode only: advance emulator time by ``seconds`` (rounded to whole
        ms), sending the stream frames that fall due; returns when they are sent."""
        if self.realtime:
            raise RuntimeError("advance() is for realtime=False; this hand follows the clock")
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and non-negative, got {seconds}")
        if self._closed:
            raise RuntimeError("the emulated hand is closed")
        out: list[can.Message] = []
        with self._lock:
            self._advance_locked(self._tick + round(seconds / TICK_S), out)
        self._send_all(out)

    # -----------------------------------------------------------------------------------
    # observation (thread-safe copies)

    @property
    def q(self) -> np.ndarray:
        """(16,) joint angles, rad (as of the last integration step, at most
        :data:`IDLE_POLL_S` old)."""
        with self._lock:
            return self._q.copy()

    @property
    def dq(self) -> np.ndarray:
        """(16,) joint velocities, rad/s."""
        with self._lock:
            return self._dq.copy()

    @property
    def applied_torque(self) -> np.ndarray:
        """(16,) the joint torques being applied, N·m."""
        with self._lock:
            return self._applied.copy()

    @property
    def servo_on(self) -> bool:
        """Whether the host switched the servo on (and not off, or disconnected, since)."""
        with self._lock:
            return self._servo_on

    @property
    def period_ms(self) -> tuple[int, int, int]:
        """The stream periods the host set (position, IMU, temperature), ms; 0 = off."""
        with self._lock:
            return (self._periods[0], self._periods[1], self._periods[2])

    @property
    def connected(self) -> bool:
        """False between :meth:`disconnect` and :meth:`reconnect`."""
        with self._lock:
            return self._connected

    @property
    def time_s(self) -> float:
        """Emulator time, s since construction (whole ms)."""
        with self._lock:
            return self._tick * TICK_S

    @property
    def torque_log(self) -> list[tuple[float, int, tuple[int, int, int, int]]]:
        """Every torque frame received (the last ``log_size``), applied or not: (emulator
        time s, finger, four PWM values)."""
        with self._lock:
            return list(self._torque_log)

    @property
    def stats(self) -> dict[str, int]:
        """Frame counts: ``rx:<command>`` / ``tx:<command>`` per command (names from
        :func:`~devices.robots.allegro_protocol.command_name`, e.g. ``rx:torque[0]``,
        ``tx:position[3]``), and ``rx:malformed``, ``rx:unknown``, ``rx:other_device``,
        ``rx:extended``, ``rx:foreign_reply``, ``rx:disconnected``, ``rx:pwm_over_limit``,
        ``tx:dropped``, ``tx:error``, ``torque_sets``, ``torque_timeout``, ``overrun``."""
        with self._lock:
            return dict(self._stats)

    # -----------------------------------------------------------------------------------
    # the thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                out: list[can.Message] = []
                with self._lock:
                    if self.realtime:
                        self._advance_locked(self._wall_tick(), out)
                    wake = self._next_deadline_locked()
                self._send_all(out)
                timeout = IDLE_POLL_S
                if wake is not None:
                    # a hair past the deadline so that the tick has surely begun
                    until = self._t0 + wake * TICK_S + 1e-5 - time.perf_counter()
                    timeout = min(timeout, max(0.0, until))
                msg = self._bus.recv(timeout)
                if msg is None:
                    continue
                out = []
                with self._lock:
                    if self.realtime:
                        self._advance_locked(self._wall_tick(), out)
                    self._handle_locked(msg, out)
                self._send_all(out)
        except can.CanError as exc:
            if not self._stop.is_set():
                self._error = exc
                log.exception("allegro emulator on %s: bus error", self.channel)
        except Exception as exc:  # kept for the owner: see `error`
            self._error = exc
            log.exception("allegro emulator on %s stopped", self.channel)

    def _wall_tick(self) -> int:
        return int((time.perf_counter() - self._t0) / TICK_S)

    def _send_all(self, out: list[can.Message]) -> None:
        if not out:
            return
        errors = 0
        with self._send_lock:
            for msg in out:
                if self._stop.is_set():
                    return
                try:
                    self._bus.send(msg, timeout=self._send_timeout)
                except can.CanError:
                    errors += 1
        if errors:
            with self._lock:
                self._stats["tx:error"] += errors

    # -----------------------------------------------------------------------------------
    # time and physics (callers hold _lock)

    def _advance_locked(self, target: int, out: list[can.Message]) -> None:
        """Integrate to tick ``target``, emitting every stream frame due on the way (in
        real time, after a stall longer than :data:`MAX_CATCHUP_TICKS`, only that much)."""
        if self.realtime and target - self._tick > MAX_CATCHUP_TICKS:
            self._stats["overrun"] += 1
            self._tick = target - MAX_CATCHUP_TICKS
            for i, nxt in enumerate(self._next):
                if nxt is not None and nxt < self._tick:
                    self._next[i] = self._tick
        while self._tick < target:
            self._emit_due_locked(out)
            if self._at_rest_locked():  # nothing moves: skip to the next deadline
                due = [n for n in self._next if n is not None and n > self._tick]
                self._tick = min([target, *due])
            else:
                self._step_locked()
        self._emit_due_locked(out)

    def _at_rest_locked(self) -> bool:
        """No torque, no spring and (nearly) no motion: the state cannot change. A
        velocity below 1e-9 rad/s, left by the damping's geometric decay, is zeroed."""
        if self._has_spring or self._torque_tick is not None or self._applied.any():
            return False
        if np.abs(self._dq).max() >= 1e-9:
            return False
        self._dq[:] = 0.0
        return True

    def _step_locked(self) -> None:
        """One 1 ms step: semi-implicit Euler, damping implicit, limits as hard stops."""
        if self._torque_tick is not None and self._tick - self._torque_tick >= self._timeout_ticks:
            self._applied[:] = 0.0
            self._torque_tick = None
            self._stats["torque_timeout"] += 1
        force = self._applied
        if self._has_spring:
            force = force - self._stiffness * (self._q - self._rest)
        dq = self._dq
        dq += self._h_inv_i * force
        dq *= self._damp_factor
        q = self._q
        q += TICK_S * dq
        below = q < self._lower
        if below.any():
            q[below] = self._lower[below]
            dq[below] = np.maximum(dq[below], 0.0)
        above = q > self._upper
        if above.any():
            q[above] = self._upper[above]
            dq[above] = np.minimum(dq[above], 0.0)
        self._tick += 1

    def _next_deadline_locked(self) -> int | None:
        due = [n for n in self._next if n is not None]
        return min(due) if due and self.realtime else None

    def _update_streams_locked(self) -> None:
        """Start (due now) or stop each stream after a change of servo, period or link."""
        on = self._connected and self._servo_on
        for i, period in enumerate(self._periods):
            if on and period > 0:
                nxt = self._next[i]
                self._next[i] = self._tick if nxt is None else min(nxt, self._tick + period)
            else:
                self._next[i] = None

    def _emit_due_locked(self, out: list[can.Message]) -> None:
        tick = self._tick
        for i, nxt in enumerate(self._next):
            if nxt is None or nxt > tick:
                continue
            self._next[i] = nxt + self._periods[i]
            if i == _STREAM_POSITION:
                for f in range(proto.NUM_FINGERS):
                    self._emit_position_locked(f, out)
            elif i == _STREAM_IMU:
                self._emit_locked(proto.RTR_IMU, bytes(proto.IMU_LEN), out)
            else:
                for f in range(proto.NUM_FINGERS):
                    self._emit_temperature_locked(f, out)

    def _emit_position_locked(self, finger: int, out: list[can.Message]) -> None:
        if finger not in self._silenced:
            j = 4 * finger
            data = proto.encode_positions(self._q[j : j + 4])
            self._emit_locked(proto.RTR_POSITION + finger, data, out)

    def _emit_temperature_locked(self, finger: int, out: list[can.Message]) -> None:
        if finger not in self._silenced:
            data = proto.encode_temperature(self._temps[finger])
            self._emit_locked(proto.RTR_TEMPERATURE + finger, data, out)

    def _emit_locked(self, cmd: int, data: bytes, out: list[can.Message]) -> None:
        if not self._connected:
            return
        if self._drop_p > 0.0 and self._rng.random() < self._drop_p:
            self._stats["tx:dropped"] += 1
            return
        self._stats[f"tx:{proto.command_name(cmd)}"] += 1
        out.append(
            can.Message(
                arbitration_id=proto.arbitration_id(cmd, self.dev_id),
                is_extended_id=False,
                data=data,
            )
        )

    def _clear_torque_locked(self) -> None:
        self._applied[:] = 0.0
        self._pending[:] = 0.0
        self._torque_tick = None
        self._mask = 0

    def _now_s_locked(self) -> float:
        if self.realtime:
            return time.perf_counter() - self._t0
        return self._tick * TICK_S

    # -----------------------------------------------------------------------------------
    # frames (callers hold _lock)

    def _handle_locked(self, msg: can.Message, out: list[can.Message]) -> None:
        if msg.is_error_frame:
            return
        if msg.is_extended_id:
            self._stats["rx:extended"] += 1
            return
        if msg.arbitration_id > 0x7FF:  # not a standard identifier (a bus-level oddity)
            self._stats["rx:malformed"] += 1
            return
        cmd, dev = proto.split_id(msg.arbitration_id)
        if dev != self.dev_id:
            self._stats["rx:other_device"] += 1
            return
        if not self._connected:
            self._stats["rx:disconnected"] += 1
            return
        data = bytes(msg.data)
        if cmd in proto.REQUESTS:
            if msg.is_remote_frame or not data:
                self._stats[f"rx:{proto.command_name(cmd)}"] += 1
                self._answer_locked(cmd, out)
            else:  # a reply from another node on the bus
                self._stats["rx:foreign_reply"] += 1
            return
        try:
            self._command_locked(cmd, data, out)
        except ValueError as exc:
            self._stats["rx:malformed"] += 1
            log.warning("allegro emulator: ignored %s: %s", proto.command_name(cmd), exc)

    def _answer_locked(self, cmd: int, out: list[can.Message]) -> None:
        if cmd == proto.RTR_INFO:
            status = proto.STATUS_SERVO_ON if self._servo_on else 0
            hottest = float(self._temps.max())
            if hottest >= self._high_temperature_c:
                status |= proto.STATUS_HIGH_TEMPERATURE
            if self._silenced:
                status |= proto.STATUS_COMM_FAULT
            t = self._info_template
            info = proto.HandInfo(
                t.hardware_version,
                t.firmware_version,
                t.left,
                int(np.clip(round(hottest), 0, 255)),
                status,
            )
            self._emit_locked(cmd, proto.encode_info(info), out)
        elif cmd == proto.RTR_SERIAL:
            self._emit_locked(cmd, self._serial_data, out)
        elif cmd == proto.RTR_IMU:
            self._emit_locked(cmd, bytes(proto.IMU_LEN), out)
        elif proto.RTR_POSITION <= cmd < proto.RTR_POSITION + proto.NUM_FINGERS:
            self._emit_position_locked(cmd - proto.RTR_POSITION, out)
        else:
            self._emit_temperature_locked(cmd - proto.RTR_TEMPERATURE, out)

    def _command_locked(self, cmd: int, data: bytes, out: list[can.Message]) -> None:
        name = proto.command_name(cmd)
        if cmd in (proto.CMD_SERVO_ON, proto.CMD_SERVO_OFF):
            if data:
                raise ValueError(f"{name} carries no data, got {len(data)} bytes")
            self._servo_on = cmd == proto.CMD_SERVO_ON
            self._clear_torque_locked()
            self._update_streams_locked()
            self._emit_due_locked(out)
        elif proto.CMD_TORQUE <= cmd < proto.CMD_TORQUE + proto.NUM_FINGERS:
            self._torque_locked(cmd - proto.CMD_TORQUE, proto.decode_pwm(data), out)
        elif cmd == proto.CMD_PERIOD:
            self._periods = list(proto.decode_period(data))
            self._update_streams_locked()
            self._emit_due_locked(out)
        elif proto.CMD_POSE <= cmd < proto.CMD_POSE + proto.NUM_FINGERS:
            proto.decode_positions(data)  # checked, not acted on
        elif cmd == proto.CMD_CONFIG:
            if len(data) != 6:
                raise ValueError(f"malformed config frame: {len(data)} data bytes, expected 6")
        else:
            self._stats["rx:unknown"] += 1
            return
        self._stats[f"rx:{name}"] += 1

    def _torque_locked(self, finger: int, pwm: np.ndarray, out: list[can.Message]) -> None:
        self._torque_log.append(
            (self._now_s_locked(), finger, (int(pwm[0]), int(pwm[1]), int(pwm[2]), int(pwm[3])))
        )
        if np.any(np.abs(pwm) > proto.PWM_LIMITS[finger]):
            self._stats["rx:pwm_over_limit"] += 1
        if not self._servo_on:
            return
        j = 4 * finger
        clipped = np.clip(pwm, -proto.PWM_LIMIT_GLOBAL, proto.PWM_LIMIT_GLOBAL)
        self._pending[j : j + 4] = clipped / proto.TORQUE_TO_PWM
        self._mask |= 1 << finger
        if self._mask != 0xF:
            return
        self._applied[:] = self._pending
        self._torque_tick = self._tick
        self._mask = 0
        self._stats["torque_sets"] += 1
        if not self.realtime:
            period = self._periods[_STREAM_POSITION] or proto.DEFAULT_PERIOD_MS
            self._advance_locked(self._tick + period, out)

    @staticmethod
    def _finger(finger: int) -> int:
        if not 0 <= finger < proto.NUM_FINGERS:
            raise ValueError(f"finger {finger} out of range 0..{proto.NUM_FINGERS - 1}")
        return int(finger)
