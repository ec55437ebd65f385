"""What the app's panels show and decide, without Qt.

The panels in :mod:`teleop_app.ui.panels` are views: on a click they call these models, on
the UI tick (30 Hz) they read them. Everything here runs and is tested without a display:

- the choices lists (devices, hand backends, controllers) with why one cannot be used;
- :func:`connect_settings`: the settings a Connect uses;
- :class:`Calibration`: measuring an operator's hand from the connected device;
- :class:`RecordingModel`: the recording panel's buttons, message and episode counts;
- the status texts: loop state, loop rate, safety events, device health;
- :func:`setting_range`, :func:`plotted_settings`: how the plots show a controller's live
  settings;
- :class:`HardwareMonitor`, :func:`health_rows`, :func:`fault_banner`: the hand hardware
  panel (per-actuator health, the active fault, clearing it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import devices.arms
import devices.inputs
import devices.robots
from controllers.base import CONTROLLERS, LiveSetting
from teleop_app.app_settings import AppSettings
from teleop_app.profiles import (
    OperatorProfile,
    ProfileError,
    calibrate,
    check_operator_name,
    load_profile,
    save_profile,
)

#: How long the operator holds the calibration pose.
CALIBRATION_S = 3.0
#: The operator combo's entry for "no operator profile".
NO_OPERATOR = "(none)"


def one_line(e: BaseException) -> str:
    """An exception as one line for a label or the status bar."""
    return " ".join(str(e).split()) or type(e).__name__


# -- choices ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """One entry of a choices list: ``reason`` says why it cannot be used (None: it can)."""

    name: str
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None

    @property
    def tooltip(self) -> str:
        return self.reason or "available"


def _probe(check: Callable[[], str | None]) -> str | None:
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - a broken probe means unavailable
        return f"{type(e).__name__}: {e}"


def controller_reason(name: str, hand: str) -> str | None:
    """Why the controller ``name`` cannot run on ``hand`` (None: it can)."""
    return _probe(lambda: CONTROLLERS.get(name).availability(hand))


def device_reason(name: str) -> str | None:
    """Why the input device ``name`` cannot be used on this machine (None: it can)."""
    return _probe(lambda: devices.inputs.DEVICES.get(name).availability())


def robot_reason(name: str, options: dict[str, Any] | None = None) -> str | None:
    """Why the hand backend ``name`` (with the settings ``options`` asked for, such as a
    port) cannot be used on this machine (None: it can).

    Backends say so with an ``availability()`` classmethod; one without it counts as
    available."""

    def check() -> str | None:
        availability = getattr(devices.robots.ROBOTS.get(name), "availability", None)
        if availability is None:
            return None
        if not options:
            return availability()
        try:
            return availability(options)
        except TypeError:  # a backend whose availability() takes no settings
            return availability()

    return _probe(check)


def spec_options(spec: str) -> dict[str, str]:
    """The ``key=value`` settings of a spec as given (strings, unchecked):
    ``dynamixel:port=/dev/pts/3`` -> ``{"port": "/dev/pts/3"}``."""
    from devices.spec import split_pairs

    rest = spec.strip().partition(":")[2]
    try:
        return split_pairs("robot", rest) if rest else {}
    except ValueError:  # the session's own parse says what is wrong with it
        return {}


def spec_name(spec: str) -> str:
    """The plugin name of a spec: ``"dynamixel:port=/dev/ttyUSB0"`` -> ``"dynamixel"``."""
    return spec.partition(":")[0].strip()


def device_choices() -> list[Choice]:
    return [Choice(n, device_reason(n)) for n in devices.inputs.DEVICES.names()]


def robot_choices() -> list[Choice]:
    return [Choice(n, robot_reason(n)) for n in devices.robots.ROBOTS.names()]


def arm_reason(name: str, options: dict[str, Any] | None = None) -> str | None:
    """Why the arm backend ``name`` cannot be used here (None: it can; ``none`` always)."""
    if name == devices.arms.NO_ARM:
        return None
    return _probe(lambda: devices.arms.ARMS.get(name).availability(options))


def arm_choices() -> list[Choice]:
    """``none`` (the hand on its own wrist mount) and every arm backend."""
    names = [devices.arms.NO_ARM, *devices.arms.ARMS.names()]
    return [Choice(n, arm_reason(n)) for n in names]


def controller_choices(hand: str) -> list[Choice]:
    return [Choice(n, controller_reason(n, hand)) for n in CONTROLLERS.names()]


# -- connecting ---------------------------------------------------------------------------
def connect_settings(settings: AppSettings, choices: dict[str, Any]) -> tuple[AppSettings, str]:
    """The settings a Connect uses: ``settings`` with the connection ``choices`` (a copy;
    ``settings`` is unchanged), and a note for the operator ("" if none).

    A controller that cannot run on the chosen hand (or is no longer registered) is replaced
    by ``retarget``, said in the note. Raises ValueError for a hand backend that cannot be
    used here (its reason)."""
    s = dataclasses.replace(settings, **choices)
    robot = spec_name(s.robot)
    if robot in devices.robots.ROBOTS:
        reason = robot_reason(robot, spec_options(s.robot))
        if reason is not None:
            raise ValueError(f"robot {robot} is unavailable: {reason}")
    arm = spec_name(s.arm)
    if arm in devices.arms.ARMS:
        reason = arm_reason(arm, spec_options(s.arm))
        if reason is not None:
            raise ValueError(f"arm {arm} is unavailable: {reason}")
    note = ""
    reason = controller_reason(s.controller, s.hand) if s.controller in CONTROLLERS else ""
    if reason is not None:
        why = reason or "not registered"
        note = f"controller {s.controller} unavailable ({why}); using retarget"
        s.controller = "retarget"
    return s, note


# -- operator calibration -----------------------------------------------------------------
def calibration_text(operator: str) -> tuple[str, bool]:
    """What the connection panel says of ``operator``'s calibration, and whether that is a
    problem (a missing or damaged profile)."""
    if operator in ("", NO_OPERATOR):
        return "none (scale 1.0); run 'dexteleop calibrate'", False
    try:
        p = load_profile(operator)
    except ProfileError as e:
        return str(e), True
    return f"scale {p.scale:.3f}, {p.calibrated_at or 'never calibrated'}", False


@dataclass(frozen=True)
class CalibrationResult:
    """A finished calibration: the saved ``profile``, or ``error`` saying why none was."""

    name: str
    profile: OperatorProfile | None = None
    error: str = ""


class Calibration:
    """Measures an operator's hand: frames of the calibration pose (flat hand, palm down,
    fingers forward) from the connected device for ``seconds``, then the profile is saved
    (applied at the next Connect). At most one at a time."""

    def __init__(self, runner: Any, seconds: float = CALIBRATION_S, grace_s: float = 5.0):
        self.runner = runner
        self.seconds = seconds
        self.grace_s = grace_s
        self._pending: tuple[str, Future[Any], float] | None = None

    @property
    def running(self) -> bool:
        return self._pending is not None

    def start(self, name: str) -> Future[Any]:
        """Begin collecting for operator ``name``. Raises ProfileError for a name that
        cannot be a profile, ValueError when there is no name."""
        if name in ("", NO_OPERATOR):
            raise ValueError("type an operator id first")
        check_operator_name(name)
        future = self.runner.collect_frames(self.seconds)
        self._pending = (name, future, time.monotonic() + self.seconds + self.grace_s)
        return future

    def poll(self, now: float | None = None) -> CalibrationResult | None:
        """The result once the collection is over (then idle again), else None. A session
        that stopped or sent no ticks past the deadline ends it with an error."""
        if self._pending is None:
            return None
        name, future, deadline = self._pending
        now = time.monotonic() if now is None else now
        if not future.done() and now > deadline:
            with contextlib.suppress(InvalidStateError):  # the loop may finish it now
                future.set_exception(RuntimeError("the session stopped or sent no ticks"))
        if not future.done():
            return None
        self._pending = None
        try:
            profile = calibrate(future.result(), name)
            save_profile(profile)
        except (ProfileError, RuntimeError, OSError) as e:
            return CalibrationResult(name, error=str(e))
        return CalibrationResult(name, profile)


# -- recording ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordingButtons:
    """Which of the recording panel's controls are enabled."""

    start: bool
    stop: bool
    discard: bool
    dataset: bool


class RecordingModel:
    """The recording panel over a :class:`~teleop_app.recording.control.RecordingControl`:
    start / stop / discard (each answered by a future, so one at a time), the last message
    and the episode counts line.

    Attributes:
        message: the last thing to tell the operator; error: whether it is a problem.
        counts: the episodes line ("episodes: 3   recording: 120 frames, 1.20 MB").
    """

    def __init__(self, control: Any, runner: Any) -> None:
        self.control = control
        self.runner = runner
        self.pending: tuple[str, Future[Any]] | None = None
        self.message = ""
        self.error = False
        self.counts = "episodes: -"

    def say(self, text: str, *, error: bool = False) -> None:
        self.message, self.error = text, error

    def start(self, root: str, task: str, operator: str) -> None:
        """Begin an episode in the dataset folder ``root``; a refusal is said, not raised."""
        try:
            future = self.control.start(root, task, operator)
        except Exception as e:  # noqa: BLE001 - shown, never raised into the UI
            self.say(f"cannot record: {one_line(e)}", error=True)
            return
        self.pending = ("start", future)

    def stop(self) -> None:
        """Commit the episode in progress."""
        if self.control.recorder is None:
            return
        self.pending = ("stop", self.control.stop())
        self.say("saving the episode...")

    def discard(self) -> None:
        """Drop the episode in progress."""
        if self.control.recorder is None:
            return
        self.pending = ("discard", self.control.discard())

    def poll(self) -> None:
        """Take in a finished start / stop / discard and the recorder's status."""
        pending = self.pending
        if pending is not None and pending[1].done():
            what, future = pending
            self.pending = None
            exc = future.exception()
            if exc is not None:
                self.say(f"{what} failed: {one_line(exc)}", error=True)
            elif what == "start":
                self.say(f"recording episode {future.result()}")
            elif what == "stop":
                self.say(f"saved episode {future.result()}")
            else:
                self.say("episode discarded")
        st = self.control.status()
        if st["state"] == "failed" and st["message"]:
            self.say(st["message"], error=True)
        if st["episodes"] is None:
            self.counts = "episodes: -"
        else:
            self.counts = f"episodes: {st['episodes']}"
            if st["state"] == "recording":
                self.counts += f"   recording: {st['frames']} frames, {st['bytes'] / 1e6:.2f} MB"

    def buttons(self) -> RecordingButtons:
        busy = self.pending is not None
        recording = self.control.recording
        return RecordingButtons(
            start=self.runner.running and not recording and not busy,
            stop=recording and not busy,
            discard=recording and not busy,
            dataset=not recording,
        )


# -- status texts -------------------------------------------------------------------------
RED, AMBER, GREEN = "#d33", "#c80", "#2a2"


def state_text(runner: Any, *, recording: bool) -> str:
    """The loop's state for the status bar (rich text): error, E-STOP, what the hand holds
    for, and ● REC while recording."""
    state = runner.state
    snap = runner.snapshot()
    if state == "error":
        text = f"<b style='color:{RED}'>error: {runner.error}</b>"
    elif runner.estop:
        text = f"<b style='color:{RED}'>E-STOP</b>"
    elif snap is not None and snap.target is None and snap.events and state == "running":
        text = f"running (holding: {', '.join(snap.events)})"
    else:
        text = state
    if recording:
        text = f"<b style='color:{RED}'>● REC</b> " + text
    return text


def loop_text(rate_hz: float, target_hz: float, missed: int, view_fps: float) -> str:
    return (
        f"loop {rate_hz:5.1f} Hz / {target_hz:g}   missed deadlines {missed}   "
        f"view {view_fps:4.1f} fps"
    )


def safety_text(counts: dict[str, int]) -> str:
    """The safety filter's events: the total and the three most frequent."""
    total = sum(counts.values())
    worst = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    top = ", ".join(f"{k} {v}" for k, v in worst)
    return f"safety events {total}" + (f" ({top})" if top else "")


def device_texts(st: Any) -> tuple[str, str]:
    """A :class:`~devices.inputs.base.DeviceStatus` (or None) as the connection panel's
    line (rich text) and the status bar's."""
    if st is None:
        return "not connected", "device: not connected"
    age = "-" if st.frame_age_s is None else f"{st.frame_age_s * 1e3:.0f} ms"
    if not st.connected:
        health = f"<b style='color:{RED}'>disconnected</b>"
    elif st.frame_age_s is None or st.frame_age_s > 0.5:
        health = f"<b style='color:{AMBER}'>no recent frames</b>"
    else:
        health = f"<span style='color:{GREEN}'>connected</span>"
    detail = f"{st.rate_hz:.0f} Hz, frame age {age}, {st.frames} frames"
    if st.errors:
        detail += f", {st.errors} rejected"
    msg = f"<br>{st.message}" if st.message else ""
    bar = f"device {'connected' if st.connected else 'DISCONNECTED'}, {detail}"
    return f"{health}, {detail}{msg}", bar


# -- plots --------------------------------------------------------------------------------
def plotted_settings(specs: Sequence[LiveSetting]) -> tuple[str, ...]:
    """The live settings the plots draw."""
    return tuple(sp.name for sp in specs if sp.plot)


def setting_range(specs: Sequence[LiveSetting]) -> tuple[float | None, float | None]:
    """A fixed y range for the live-settings plot when every plotted number shares one
    (else (None, None): the plot scales itself)."""
    plotted = [sp for sp in specs if sp.plot and sp.kind in ("float", "int")]
    lows = {sp.low for sp in plotted}
    highs = {sp.high for sp in plotted}
    if len(lows) == 1 and len(highs) == 1:
        return lows.pop(), highs.pop()
    return None, None


# -- hand hardware ------------------------------------------------------------------------
#: An actuator at or above this temperature (deg C) is shown as a warning (the Dynamixel
#: backend raises a fault at its ``max_temperature_c``, 70 by default).
TEMP_WARN_C = 60.0
#: How often the hardware panel reads the hand's health through the loop (s): about 2 Hz.
HEALTH_PERIOD_S = 0.5
#: The hardware table's columns: (health key, heading). ``name`` is the actuator itself.
HEALTH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "actuator"),
    ("joint", "joint"),
    ("temperature_c", "temp (°C)"),
    ("current_ma", "current (mA)"),
    ("voltage_v", "voltage (V)"),
    ("hardware_error", "hw error"),
    ("answering", "answering"),
)
WARN, ERROR = "warn", "error"


@dataclass(frozen=True)
class HealthRow:
    """One actuator of the hardware table.

    Attributes:
        name: the actuator (``servo 3``). cells: its texts, in :data:`HEALTH_COLUMNS` order.
        problems: column key -> :data:`WARN` or :data:`ERROR`, for the cells to highlight.
        reasons: the problems in words (the row's tooltip).
        detail: what else the backend knows of it (model, firmware), or "".
    """

    name: str
    cells: tuple[str, ...]
    problems: dict[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    detail: str = ""

    @property
    def level(self) -> str | None:
        """The row's worst problem: :data:`ERROR`, :data:`WARN` or None."""
        levels = set(self.problems.values())
        return ERROR if ERROR in levels else WARN if WARN in levels else None


def _natural_key(name: str) -> list[Any]:
    """``servo 2`` before ``servo 10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "answering":
        return "yes" if value else "NO"
    if key == "hardware_error":
        return (
            ("none" if value == 0 else f"0x{value:02x}") if isinstance(value, int) else str(value)
        )
    x = _number(value)
    if x is None:
        return str(value)
    return f"{x:.1f}" if key == "voltage_v" else f"{x:.0f}"


def health_rows(
    health: dict[str, dict[str, Any]], fault_source: str | None = None
) -> list[HealthRow]:
    """A hand's ``Robot.health()`` as the hardware table's rows, actuators in natural order
    (``servo 2`` before ``servo 10``); a value not measured (yet) shows as "-".

    Problems: a temperature at or above :data:`TEMP_WARN_C` is a warning; a non-zero
    hardware error and an actuator that does not answer are errors, and so is the actuator
    the active fault names (``fault_source``, e.g. ``servo 7``)."""
    rows = []
    for name in sorted(health, key=_natural_key):
        h = health[name] or {}
        values = {**h, "name": name}
        cells = tuple(_cell(key, values.get(key)) for key, _ in HEALTH_COLUMNS)
        problems: dict[str, str] = {}
        reasons: list[str] = []
        temp = _number(h.get("temperature_c"))
        if temp is not None and temp >= TEMP_WARN_C:
            problems["temperature_c"] = WARN
            reasons.append(f"hot: {temp:.0f} °C (warning from {TEMP_WARN_C:g} °C)")
        err = h.get("hardware_error")
        if err not in (None, 0):
            problems["hardware_error"] = ERROR
            reasons.append(f"hardware error {_cell('hardware_error', err)}")
        if h.get("answering") is False:
            problems["answering"] = ERROR
            reasons.append("does not answer")
        if fault_source is not None and (
            name == fault_source or fault_source.startswith(name + " ")  # "arm link"
        ):
            problems["name"] = ERROR
            reasons.append("named by the active fault")
        model, firmware = h.get("model"), h.get("firmware")
        detail = ", ".join(
            x
            for x in (
                str(model) if model is not None else "",
                f"firmware {firmware}" if firmware is not None else "",
            )
            if x
        )
        rows.append(HealthRow(name, cells, problems, tuple(reasons), detail))
    return rows


def fault_banner(active: str | None, faults: Sequence[str]) -> tuple[str, str | None]:
    """The hardware panel's fault line, and its level (:data:`ERROR` while a fault holds
    the hand, else None): the active fault and how many there were since connecting."""
    n = len(faults)
    so_far = f"{n} fault{'' if n == 1 else 's'} so far"
    if active is not None:
        return f"HAND FAULT: {active} (the hand holds until cleared; {so_far})", ERROR
    if n:
        return f"no active fault ({so_far}; last: {faults[-1]})", None
    return "no faults", None


def read_hardware(session: Any) -> tuple[dict[str, dict[str, Any]], str | None, list[str]]:
    """What the hardware panel shows, read on the loop thread (``session.submit``): the
    hand's health (copied), its active fault and every fault so far, as text."""
    robot = session.robot
    health = {str(k): dict(v or {}) for k, v in robot.health().items()}
    fault = robot.fault
    faults = list(robot.faults)
    arm = getattr(session, "arm", None)
    if arm is not None:  # the arm carrying the hand: one row, its faults with the hand's
        link_lost = arm.fault is not None and arm.fault.source == "arm link"
        clipped = arm.counts.get("wrist_workspace", 0)
        health["arm"] = {
            "joint": f"{arm.mode or '-'}, {arm.commands} targets, {clipped} clipped",
            "answering": not link_lost,
            "model": f"{arm.spec.name} ({getattr(arm, 'registered_name', 'arm')})",
        }
        fault = fault if fault is not None else arm.fault
        faults += arm.faults
    return health, (str(fault) if fault is not None else None), [str(f) for f in faults]


class HardwareMonitor:
    """The hardware panel over the runner's session: reads the hand's health, active fault
    and faults through the loop (:func:`read_hardware` via ``session.submit``, one read in
    flight, every ``period_s``) and clears a fault (``session.clear_fault``). Never touches
    the hand from the caller's thread: :meth:`poll` on the UI tick takes finished futures.

    Attributes:
        hardware: the session's hand drives real hardware (else the panel has nothing to show).
        note: one line when there is nothing to monitor ("" when there is).
        rows: the table (:func:`health_rows`). fault: the active fault, as text, or None.
        faults: every fault since connecting, as text. reads: reads taken so far.
        clear_message: what the last clear did; clear_error: whether that is a problem.
        read_error: why the last read failed ("" when it did not).
    """

    def __init__(self, runner: Any, period_s: float = HEALTH_PERIOD_S) -> None:
        self.runner = runner
        self.period_s = period_s
        self.session: Any = None
        self._attach(None)

    def _attach(self, session: Any) -> None:
        self.session = session
        robot = None if session is None else session.robot
        # a class attribute: reading it does not touch the hand; an arm is always shown
        arm = None if session is None else getattr(session, "arm", None)
        self.hardware = bool(getattr(robot, "drives_hardware", False)) or arm is not None
        if session is None:
            self.note = "not connected"
        elif not self.hardware:
            self.note = "simulated hand: no hardware to monitor"
        else:
            self.note = ""
        self.rows: list[HealthRow] = []
        self.fault: str | None = None
        self.faults: list[str] = []
        self.reads = 0
        self.read_error = ""
        self.clear_message = ""
        self.clear_error = False
        self._reading: Future[Any] | None = None
        self._clearing: Future[Any] | None = None
        self._next_read = -float("inf")

    @property
    def clearing(self) -> bool:
        return self._clearing is not None

    @property
    def can_clear(self) -> bool:
        """A fault is active and no clear is in flight."""
        return self.hardware and self.fault is not None and self._clearing is None

    @property
    def banner(self) -> tuple[str, str | None]:
        return fault_banner(self.fault, self.faults)

    def poll(self, now: float | None = None) -> bool:
        """Follow the runner's session, take finished reads and clears, start the next read
        when due; returns whether anything shown changed."""
        now = time.monotonic() if now is None else now
        changed = False
        session = self.runner.session
        if session is not self.session:
            self._attach(session)
            changed = True
        if not self.hardware:
            return changed
        reading = self._reading
        if reading is not None and reading.done():
            self._reading = None
            exc = reading.exception()
            if exc is not None:
                self.read_error = f"cannot read the hand: {one_line(exc)}"
            else:
                health, self.fault, self.faults = reading.result()
                self.rows = health_rows(health, self.fault_source)
                self.read_error = ""
                self.reads += 1
            changed = True
        clearing = self._clearing
        if clearing is not None and clearing.done():
            self._clearing = None
            exc = clearing.exception()
            if exc is not None:
                self.clear_message, self.clear_error = f"clear failed: {one_line(exc)}", True
            elif clearing.result():
                self.clear_message, self.clear_error = "fault cleared: the hand moves again", False
                self._next_read = now  # show the hand as it is now
            else:
                self.clear_message = "not cleared: the cause is still there"
                self.clear_error = True
            changed = True
        # no read while a clear is in flight: every reading shown is as new as the clear
        due = now >= self._next_read and self._reading is None and self._clearing is None
        if due and self.runner.running:
            self._reading = session.submit(read_hardware)
            self._next_read = now + self.period_s
        return changed

    @property
    def fault_source(self) -> str | None:
        """The actuator (or part) the active fault names: ``servo 7``."""
        return None if self.fault is None else self.fault.partition(":")[0]

    def clear_fault(self) -> Future[Any] | None:
        """Ask the backend to clear the active fault (it checks the cause is gone, e.g.
        reboots an overloaded servo); :meth:`poll` shows whether it did."""
        if not self.hardware or self.session is None or self._clearing is not None:
            return None
        self._clearing = self.session.clear_fault()
        self.clear_message, self.clear_error = "clearing the fault...", False
        return self._clearing
