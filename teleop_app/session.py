"""The teleoperation session: a fixed-rate control loop from device to hand.

One tick (20 Hz by default)::

    device.latest() -> validate -> retarget (new frames only) -> controller.step
        -> safety filter (inside Robot.send) -> hand -> TickRecord

With an arm (``arm``), the operator's wrist pose goes through the arm's own filter to the arm
(:meth:`devices.arms.base.Arm.send`) in the same tick, before the hand's target; an arm fault
holds the hand too, and controllers read the wrist orientation the arm measures.

The device runs its own I/O thread; the loop runs on the thread that calls :meth:`run`
(the UI runs it on a thread of its own). The loop keeps a monotonic schedule: tick ``k``
is due at ``t0 + k * period``; when a tick overruns its slot, the overrun is counted as a
missed deadline and the schedule restarts from now, so the loop never bursts to catch up.
Changes from other threads (a new guidance strength, a controller switch, an emergency
stop) go through :meth:`submit` and are applied at the start of the next tick.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import controllers  # noqa: F401  (registers the controllers)
import devices.arms  # registers the arm backends
import devices.inputs
import devices.robots  # noqa: F401  (registers the hand backends)
from controllers.base import CONTROLLERS, Controller
from devices.arms.base import ARMS, NO_ARM, Arm, ArmState
from devices.clock import Clock, RealClock, SimClock
from devices.inputs.base import DEVICES, Device
from devices.inputs.validate import frame_problem
from devices.retargeting.axis import PALM_AXES, AxisConfig
from devices.retargeting.commands import CommandBuilder
from devices.retargeting.retargeter import RetargetConfig
from devices.robots.base import ROBOTS, Robot, Simulated
from devices.tick import Command, HandState, HumanFrame
from teleop_app.logonce import RepeatedLog
from teleop_app.metrics import STAGES, Metrics
from teleop_app.switch import ControllerSwitch

log = logging.getLogger(__name__)


@dataclass
class SessionConfig:
    """Everything a session is built from.

    Attributes:
        hand: hand spec name (``leap``, ``allegro``).
        robot: hand backend (``sim``; real backends later).
        robot_options: extra settings of the backend (e.g. ``wrist``, ``object``).
        device: input device name; ``device_options`` its settings.
        controller: controller name; ``controller_options`` its settings.
        retarget: retargeting settings.
        axis: rotation-axis selection (buttons / controller orientation) for the command.
        wrist_alignment: (9,) row-major rotation applied on the right of the operator's wrist
            orientation before the mount follows it (from the operator's calibration).
        rate_hz: control rate.
        fast: run on a virtual clock as fast as possible.
        stale_ticks: hold once no new frame has arrived for this many ticks.
        min_confidence: frames below this tracking confidence are ignored.
        keep_states: keep the full simulator state of every tick (for video).
        arm: the arm carrying the hand (``sim``, ``franka``; ``none``: the hand's own wrist
            mount); ``arm_options`` its settings.
    """

    hand: str = "leap"
    robot: str = "sim"
    robot_options: dict[str, Any] = field(default_factory=dict)
    device: str = "replay"
    device_options: dict[str, Any] = field(default_factory=dict)
    controller: str = "retarget"
    controller_options: dict[str, Any] = field(default_factory=dict)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    axis: AxisConfig = field(default_factory=AxisConfig)
    wrist_alignment: tuple[float, ...] | None = None
    rate_hz: float = 20.0
    fast: bool = False
    stale_ticks: int = 3
    min_confidence: float = 0.5
    keep_states: bool = False
    arm: str = NO_ARM
    arm_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TickRecord:
    """What happened in one tick (the UI's snapshot, the recorder's row).

    Attributes:
        tick: index. t: loop-clock time at the start of the tick (s).
        frame: the frame used this tick (None when holding without one).
        command: the command in force (None before the first valid frame).
        state: the hand state read this tick (before the new target).
        target: the controller's raw target (None when holding).
        sent: the target the hand received after the safety filter.
        events: safety events this tick. info: the controller's info.
        timings_ms: per-stage durations. settings: the controller's settings.
        controller: the controller's name.
        sim_state: the simulator's full state when ``state`` was read (simulated hands).
        arm: the arm's state read this tick (with an arm), its ``target`` the palm target
            sent this tick or last.
    """

    tick: int
    t: float
    frame: HumanFrame | None
    command: Command | None
    state: HandState
    target: np.ndarray | None
    sent: np.ndarray
    events: tuple[str, ...]
    info: dict[str, Any]
    timings_ms: dict[str, float]
    settings: dict[str, Any]
    controller: str
    sim_state: np.ndarray | None = None
    arm: ArmState | None = None


class Session:
    """Builds the device, hand, retargeter and controller from a :class:`SessionConfig`."""

    def __init__(
        self, config: SessionConfig, *, clock: Clock | None = None, device: Device | None = None
    ) -> None:
        """Build the session; ``device`` overrides ``config.device`` with a ready instance."""
        self.config = config
        if not (np.isfinite(config.rate_hz) and config.rate_hz > 0):
            raise ValueError(f"rate_hz must be finite and positive, got {config.rate_hz}")
        if config.stale_ticks < 1:
            raise ValueError("stale_ticks must be at least 1")
        self.clock: Clock = clock or (SimClock() if config.fast else RealClock())
        self.period_s = 1.0 / config.rate_hz
        self.device: Device = device or DEVICES.make(config.device, **config.device_options)
        robot_options = {"hand": config.hand, **config.robot_options}
        if robot_options.setdefault("rate_hz", config.rate_hz) != config.rate_hz:
            # The hand's rate limit is per tick of its own rate: the two must agree.
            raise ValueError(
                f"the hand runs at {robot_options['rate_hz']} Hz but the loop at "
                f"{config.rate_hz} Hz; leave the hand's rate_hz unset"
            )
        if robot_options["hand"] != config.hand:
            raise ValueError(
                f"the session is for {config.hand} but the robot options ask for "
                f"{robot_options['hand']}; choose the hand with the session's hand only"
            )
        arm_cls = None if config.arm == NO_ARM else ARMS.get(config.arm)
        if arm_cls is not None:  # what the arm needs of the hand backend (the sim's own arm)
            robot_options = arm_cls.robot_options(config.robot, robot_options)
            if config.fast and arm_cls.drives_hardware:
                raise ValueError(
                    f"arm {config.arm} drives real hardware: it runs in real time only "
                    "(no --fast, no counterfactual replay on it)"
                )
        if config.fast and ROBOTS.get(config.robot).drives_hardware:
            # a virtual clock runs ticks as fast as the CPU: rate limits per second of
            # virtual time would let real joints move at any speed
            raise ValueError(
                f"robot {config.robot} drives real hardware: it runs in real time only "
                "(no --fast, no counterfactual replay on it)"
            )
        self.robot: Robot = ROBOTS.make(config.robot, **robot_options)
        #: the arm carrying the hand, or None (the hand's own mount)
        self.arm: Arm | None = None
        if arm_cls is not None:
            arm_options = {"rate_hz": config.rate_hz, **config.arm_options}
            if arm_options["rate_hz"] != config.rate_hz:
                raise ValueError("the arm runs at the loop's rate; leave its rate_hz unset")
            self.arm = ARMS.make(config.arm, **arm_options)
            self.arm.attach(self.robot)
        retarget = config.retarget
        if config.fast:  # a virtual clock: no wall-clock cap, so runs are reproducible
            retarget = dataclasses.replace(retarget, max_solve_s=None)
        self.command_builder = CommandBuilder(self.robot.hand, retarget, config.axis)
        self.retargeter = self.command_builder.retargeter  # its settings, for replays and the UI
        self.controller_name = config.controller
        self.controller: Controller = self._make_controller(
            config.controller, config.controller_options
        )
        self.metrics = Metrics(STAGES)
        self._failures = RepeatedLog(log)  # a failure every tick: logged once, then counted
        self.states: list[np.ndarray] = []  # full sim states, when keep_states
        self.commands: list[np.ndarray | None] = []  # commanded keypoints per tick (palm)
        self._changes: queue.SimpleQueue[tuple[Callable[[Session], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._submit_lock = threading.Lock()
        self._closed = False
        self._switch_gen = 0  # switches requested so far
        self._switch_pending: int | None = None  # the switch the hand holds for
        self._simulated: Simulated | None = (
            self.robot if isinstance(self.robot, Simulated) else None
        )
        #: when set, ``command_source(frame)`` replaces retargeting (replaying recordings)
        self.command_source: Callable[[HumanFrame], Command] | None = None
        self._snapshot: TickRecord | None = None
        self._snapshot_lock = threading.Lock()
        self._listeners: list[Callable[[TickRecord], None]] = []
        self._listeners_lock = threading.Lock()
        self._stop = threading.Event()
        self.estop = False
        #: the e-stop was engaged and freezes at the next reading of the hand (that tick's)
        self._estop_freeze = False
        #: the hand's report section, read as the session closes (before the hand disconnects)
        self._hand_report: dict[str, Any] | None = None
        self._arm_report: dict[str, Any] | None = None
        self._reset_loop_state()

    # -- building blocks ----------------------------------------------------------------------
    def _make_controller(self, name: str, options: dict[str, Any]) -> Controller:
        options = {"hand": self.config.hand, **options}
        controller = CONTROLLERS.make(name, **options)
        controller.check_physics(self.robot.physics())
        if controller.notice:
            log.warning("controller %s: %s", name, controller.notice)
        return controller

    def _reset_loop_state(self) -> None:
        self.tick_index = 0
        self._command: Command | None = None
        self._last_seq: int | None = None
        self._last_frame_t: float | None = None
        self._ticks_without_new = 0
        self._last_send_t: float | None = None
        self._wrist_pose: np.ndarray | None = None  # the operator's latest (aligned) wrist
        self._last_bad: object = None

    # -- thread-safe API for the UI ----------------------------------------------------------
    def submit(self, change: Callable[[Session], Any]) -> Future[Any]:
        """Queue ``change(session)`` to run at the start of the next tick, on the loop thread.

        Returns a future that holds what ``change`` returned, or the exception it raised (a
        refused change is also counted as ``change_rejected``; the loop goes on). A change
        whose future was cancelled before its tick is skipped. Once the session is closed,
        the future fails at once (and changes still queued fail when it closes).
        """
        future: Future[Any] = Future()
        with self._submit_lock:
            if self._closed:
                future.set_exception(RuntimeError("the session is closed"))
            else:
                self._changes.put((change, future))
        return future

    def set_controller(self, name: str, *, build_now: bool = False, **options: Any) -> Future[str]:
        """Switch controller without restarting the session.

        The hand holds its pose from the next tick until the switch is done. The new
        controller is built off the loop thread (loading a model can take longer than a tick)
        and then reset from the measured state and put in place at the start of a tick; with
        ``build_now`` it is built at the next tick instead. If it cannot be built (unknown,
        not trained yet, bad options) the old one stays and goes on; the future says why.
        The latest request wins: a switch superseded by a later one before it was put in
        place is dropped (its future says so), whatever order the builds finish in.
        """
        return ControllerSwitch(self, name, options).start(build_now=build_now)

    def set_axis(self, choice: str) -> Future[None]:
        """The operator picks the rotation axis in the app: a palm axis (``+x`` ... ``-z``)
        that overrides the device's selection, or ``device`` (see
        :meth:`AxisSelector.choose`). Takes effect at the next tick, also for the command in
        force; the future holds the ValueError of an unknown choice."""

        def change(s: Session) -> None:
            selector = s.command_builder.axis_selector
            selector.choose(choice)
            if s._command is not None and selector.chosen != "device":
                s._command = dataclasses.replace(
                    s._command, axis=np.array(PALM_AXES[selector.chosen])
                )

        return self.submit(change)

    def update_controller(self, **changes: Any) -> Future[None]:
        """Change live controller settings (e.g. guidance strength) at the next tick; the
        future holds the ValueError of a refused change."""
        return self.submit(lambda s: s.controller.update(**changes))

    def set_estop(self, on: bool) -> Future[None]:
        """Emergency stop: targets freeze at the measured pose until released. Releasing
        resets the controller and retargeting from the measured pose, and the hand waits for
        a new frame from the operator before it moves."""

        def change(s: Session) -> None:
            if on:
                was, s.estop = s.estop, True  # engaged first, whatever follows
                if not was:  # frozen where this tick measures the hand, not one read earlier
                    s._estop_freeze = True
            elif s.estop:
                # Released only once everything restarted from the measured pose; if that
                # fails the stop stays engaged and the future says why.
                state = s.robot.read()
                s.command_builder.restart_solve(state.q)
                s.controller.reset(state)
                s._command = None
                if s.arm is not None:  # the wrist re-latches where the arm stands
                    s.arm.restart()
                s.estop = s._estop_freeze = False

        return self.submit(change)

    def clear_fault(self) -> Future[bool]:
        """The operator acknowledges a hand fault: if the backend finds its cause gone, the
        hand moves again from its measured pose (as after an e-stop, waiting for a new frame);
        the future says whether it cleared."""

        def change(s: Session) -> bool:
            if s.arm is not None and s.arm.fault is not None and not s.arm.clear_fault():
                return False  # the arm's recovery is the operator's explicit action
            if s.robot.fault is None:
                return True
            if not s.robot.clear_fault():
                return False
            state = s.robot.read()
            s.robot.safety.reset(state.q)
            s.command_builder.restart_solve(state.q)
            s.controller.reset(state)
            s._command = None
            return True

        return self.submit(change)

    @property
    def switching(self) -> bool:
        """A controller switch is in progress (the hand holds)."""
        return self._switch_pending is not None

    def snapshot(self) -> TickRecord | None:
        """The latest tick, for readers on other threads."""
        with self._snapshot_lock:
            return self._snapshot

    def subscribe(self, listener: Callable[[TickRecord], None]) -> None:
        """Call ``listener(record)`` on the loop thread after every tick (keep it cheap).
        Safe from any thread, also while the loop runs."""
        with self._listeners_lock:  # copy on write: a tick iterates the list it started with
            self._listeners = [*self._listeners, listener]

    def unsubscribe(self, listener: Callable[[TickRecord], None]) -> None:
        """Stop calling ``listener`` (from the next tick on); unknown listeners are ignored."""
        with self._listeners_lock:
            self._listeners = [x for x in self._listeners if x is not listener]

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current tick (any thread). A stop requested
        before :meth:`run` starts makes it return at once."""
        self._stop.set()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect the hand and the device; reset retargeting and the controller."""
        with self._submit_lock:
            self._closed = False
        self._hand_report = None
        self._arm_report = None
        self.robot.connect()
        try:
            if self.arm is not None:
                self.arm.connect()
            self.device.connect(self.clock)
        except BaseException:
            if self.arm is not None:
                self.arm.disconnect()
            self.robot.disconnect()
            raise
        start = self.controller.sim_start()
        sim = self._simulated
        if start is not None and sim is not None and self.robot.read().object_pose is not None:
            sim.start_rotation(start)  # the object in the pose the policy starts from
        state = self.robot.read()
        self.command_builder.start(state.q)
        self.controller.reset(state)
        self._reset_loop_state()

    def close(self) -> None:
        """Disconnect the device and the hand. Changes still queued fail (their futures say
        the session closed); later ones fail at once."""
        with self._submit_lock:
            self._closed = True
            pending = []
            while True:
                try:
                    pending.append(self._changes.get_nowait())
                except queue.Empty:
                    break
        for _change, future in pending:
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError("the session closed before this change"))
        self.device.disconnect()
        if self.robot.connected:  # the report's hand section is read before the hand goes
            try:
                self._hand_report = self.robot.hand_report()
            except Exception as e:  # noqa: BLE001 - a failing read must not keep it connected
                log.error("could not read the hand's report: %s", e)
        if self.arm is not None:
            if self.arm.connected:
                try:
                    self._arm_report = self.arm.report()
                except Exception as e:  # noqa: BLE001 - a failing read must not keep it on
                    log.error("could not read the arm's report: %s", e)
            self.arm.disconnect()
        self.robot.disconnect()
        self._failures.flush()

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop --------------------------------------------------------------------------
    def run(self, duration_s: float | None = None, *, ticks: int | None = None) -> int:
        """Run the loop for ``duration_s`` (``round(duration_s * rate_hz)`` ticks), ``ticks``,
        or until :meth:`stop`. Returns the number of ticks run."""
        if ticks is None and duration_s is not None:
            if not duration_s > 0:
                raise ValueError(f"duration must be positive, got {duration_s}")
            ticks = round(duration_s * self.config.rate_hz)
        n = 0
        deadline = self.clock.now()
        wall0 = time.perf_counter()
        try:
            while not self._stop.is_set() and (ticks is None or n < ticks):
                self.tick()
                n += 1
                deadline += self.period_s
                now = self.clock.now()
                if now > deadline:  # this tick overran its slot: count it, do not catch up
                    self.metrics.missed_deadlines += 1
                    deadline = now
                else:
                    self.clock.sleep_until(deadline)
        finally:
            self.metrics.wall_time_s += time.perf_counter() - wall0
            self._stop.clear()
        return n

    def tick(self) -> TickRecord:
        """One control tick.

        Bad input, a failing device, retargeter, controller or listener never stop it: the
        hand holds and the event is counted. Only a failure to read or write the hand itself
        propagates (nothing safe can be done without the hand).
        """
        t_start = time.perf_counter()
        while True:
            try:
                change, future = self._changes.get_nowait()
            except queue.Empty:
                break
            if not future.set_running_or_notify_cancel():
                continue  # cancelled before its tick
            try:
                out = change(self)
            except Exception as e:  # noqa: BLE001 - a bad UI change must not stop the loop
                log.error("could not apply a change: %s", e)
                self.metrics.count("change_rejected")
                future.set_exception(e)
            else:
                future.set_result(out)
        now = self.clock.now()
        timings: dict[str, float] = {}

        hold: str | None = None
        try:
            frame = self.device.latest()
        except Exception as e:  # noqa: BLE001 - a failing device reads as no input
            log.warning("device %s failed: %s", self.config.device, e)
            self.metrics.count("device_error")
            frame = None
        new_frame = False
        if frame is None:
            self._ticks_without_new += 1
            hold = "stale_input"
        else:
            problem = frame_problem(
                frame, last_t=self._last_frame_t, min_confidence=self.config.min_confidence
            )
            if problem is None and frame.seq == self._last_seq:
                self._ticks_without_new += 1
            elif problem is None:
                new_frame = True
                self._ticks_without_new = 0
                self.metrics.frames_used += 1
            else:
                hold = problem
                self._ticks_without_new += 1
                if frame is not self._last_bad:  # count each bad frame once
                    self.metrics.frames_rejected[problem] += 1
                    self._last_bad = frame
            if problem is None:
                timings["frame_age"] = (now - float(frame.t)) * 1e3
        if hold is None and self._ticks_without_new >= self.config.stale_ticks:
            hold = "stale_input"

        if new_frame:
            assert frame is not None
            self._last_seq = frame.seq
            self._last_frame_t = float(frame.t)
            t0 = time.perf_counter()
            try:
                if self.command_source is not None:  # replaying recorded commands
                    self._command = self.command_source(frame)
                else:
                    self._command = self.command_builder(
                        frame, fields=self.controller.command_fields
                    )
            except Exception as e:  # noqa: BLE001 - retargeting failures hold the hand
                self._failures.warning("retargeting failed: %s", e)
                hold = "retarget_error"
            timings["retarget"] = (time.perf_counter() - t0) * 1e3

        t0 = time.perf_counter()
        state = self.robot.read()
        sim_state = None if self._simulated is None else self._simulated.sim_state()
        timings["hand_read"] = (time.perf_counter() - t0) * 1e3
        arm_state: ArmState | None = None
        if self.arm is not None:
            t0 = time.perf_counter()
            arm_state = self.arm.read()
            if self._simulated is None:  # a real hand: where the arm holds it
                state = dataclasses.replace(state, wrist=arm_state.palm)
            timings["arm_read"] = (time.perf_counter() - t0) * 1e3

        target: np.ndarray | None = None
        info: dict[str, Any] = {}
        if self.estop:
            hold = "emergency_stop"
            if self._estop_freeze:
                self.robot.safety.reset(state.q)
                self._estop_freeze = False
        elif self.robot.fault is not None:  # a servo or finger failed: hold until cleared
            hold = "hand_fault"
        elif self.arm is not None and self.arm.fault is not None:  # a reflex, a lost link
            hold = "arm_fault"
        elif self._switch_pending is not None:
            hold = "switching_controller"
        elif hold is None and self._command is None:
            hold = "stale_input"
        if (self.robot.supports_wrist_pose or self.arm is not None) and new_frame:
            assert frame is not None
            pose = np.array(frame.wrist, dtype=float)
            if self.config.wrist_alignment is not None:
                pose[:3, :3] = pose[:3, :3] @ np.reshape(self.config.wrist_alignment, (3, 3))
            self._wrist_pose = pose
        if hold is None:
            assert self._command is not None
            t0 = time.perf_counter()
            try:
                target, info = self.controller.step(state, self._command)
                if self.controller.physics_notice:  # trained on other physics
                    info = {**info, "other_physics": 1.0}
            except Exception as e:  # noqa: BLE001 - a failing controller holds the hand
                # one template per controller: another controller's failure is logged anew
                self._failures.warning(f"controller {self.controller_name} failed: %s", e)
                hold = "controller_error"
            timings["controller"] = (time.perf_counter() - t0) * 1e3

        if hold == "hand_fault" and self.robot.fault is not None:
            info = {"hand_fault": str(self.robot.fault)}  # which servo or finger, and why
        elif hold == "arm_fault" and self.arm is not None and self.arm.fault is not None:
            info = {"arm_fault": str(self.arm.fault)}
        send_t = self.clock.now()  # the rate limits count time between actual sends
        dt_s = None if self._last_send_t is None else send_t - self._last_send_t
        self._last_send_t = send_t
        t0 = time.perf_counter()
        if self._wrist_pose is not None:
            # every tick, through the wrist's own filter (a jump from a slow device is spread
            # over ticks like a joint target); the wrist moves only when the hand may
            if self.arm is not None:
                self.arm.send(self._wrist_pose, hold=hold, dt_s=dt_s)
            else:
                self.robot.send_wrist(self._wrist_pose, hold=hold, dt_s=dt_s)
        sent, events = self.robot.send(target, hold=hold, dt_s=dt_s)
        timings["hand_write"] = (time.perf_counter() - t0) * 1e3
        timings["tick"] = (time.perf_counter() - t_start) * 1e3

        record = TickRecord(
            tick=self.tick_index,
            t=now,
            frame=frame if new_frame else None,
            command=self._command,
            state=state,
            target=target,
            sent=sent,
            events=tuple(events),
            info=info,
            timings_ms=timings,
            settings=self._settings(),
            controller=self.controller_name,
            sim_state=sim_state,
            arm=arm_state,
        )
        self.metrics.add_tick(record)
        if self.config.keep_states and self._simulated is not None:
            # for video: the state after this tick's step (the record holds the one before)
            self.states.append(self._simulated.sim_state())
            self.commands.append(None if self._command is None else self._command.keypoints)
        with self._snapshot_lock:
            self._snapshot = record
        for listener in self._listeners:
            try:
                listener(record)
            except Exception as e:  # noqa: BLE001 - a broken plot must not stop the hand
                log.warning("tick listener failed: %s", e)
                self.metrics.count("listener_error")
        self.tick_index += 1
        return record

    def _settings(self) -> dict[str, Any]:
        try:
            return self.controller.settings()
        except Exception as e:  # noqa: BLE001 - reporting settings must not stop the loop
            log.warning("controller settings failed: %s", e)
            return {}

    # -- results -----------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The run's report (see :meth:`Metrics.report`), with what was run.

        Call it when the loop is not running (it reads the hand and the counters)."""
        rep = self.metrics.report(
            rate_target_hz=self.config.rate_hz,
            fast=self.config.fast,
            limit_violations=self.robot.limit_violations,
            safety_counts=dict(self.robot.safety.counts),
        )
        if self.robot.wrist_filter.counts:
            rep["wrist_events"] = dict(sorted(self.robot.wrist_filter.counts.items()))
        # the hand as it was when the session closed (a real hand cannot be read after)
        hand = self._hand_report if self._hand_report is not None else self.robot.hand_report()
        rep["hand"] = hand
        if self.arm is not None:
            arm = self._arm_report if self._arm_report is not None else self.arm.report()
            rep["arm"] = arm
        if not self.robot.drives_hardware:
            state = self.robot.read()
            if state.object_dropped is not None:
                rep["object_dropped"] = bool(state.object_dropped)
        status = self.device.status()
        age = rep["latency_ms"]["frame_age"]
        rep["device"] = {
            "name": self.config.device,
            "frames_received": status.frames,
            "frames_used": self.metrics.frames_used,
            "frames_rejected": dict(sorted(status.rejected.items())),  # by the device
            "frames_refused": dict(sorted(self.metrics.frames_rejected.items())),  # by the loop
            "frame_age_ms": {"p50": age["p50"], "p99": age["p99"]},
            "stale_ticks": int(rep["safety_events"].get("stale_input", 0)),
            "message": status.message,
        }
        rep["device"].update(self.device.report_extra())
        rep["config"] = _jsonable(dataclasses.asdict(self.config))
        rep["controller_final"] = self.controller_name
        return rep


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x
