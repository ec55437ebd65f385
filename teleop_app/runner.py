"""Runs a session's control loop on a thread of its own, for the app (no Qt).

The app never calls the session's loop itself: :class:`SessionRunner` builds the session,
starts the loop on the ``control-loop`` thread, and offers what views need:

- a :class:`~teleop_app.history.TickHistory` of the last ticks (plots),
- the latest :class:`SceneFrame` (the 3D view renders it on its own thread),
- the device's status, the loop's state and its last error,
- changes (controller, live settings, emergency stop) forwarded to the session's queue,
  applied at the start of the next tick.

Connecting again (another hand, device, object) stops the old loop, closes its session,
and builds a new one; an engaged emergency stop stays engaged across reconnects.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import traceback
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

import numpy as np

from devices.inputs.base import Device, DeviceStatus
from teleop_app.history import TickHistory
from teleop_app.session import Session, SessionConfig, TickRecord
from teleop_app.workers import start_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneFrame:
    """What the 3D view draws for one tick.

    Attributes:
        tick: the tick index. q: measured joint positions.
        sim_state: the simulator's full state (hand, object, mount), when simulated.
        commanded: (K, 3) commanded keypoints in the palm frame, or None.
        robot: the hand backend that produced it (a view must draw it with that model).
        arm: the arm model carrying a hand without a simulator (``panda``), else None;
            arm_q: its measured joints.
    """

    robot: object
    tick: int
    q: np.ndarray
    sim_state: np.ndarray | None
    commanded: np.ndarray | None
    arm: str | None = None
    arm_q: np.ndarray | None = None


class SessionRunner:
    """Owns the running session and its loop thread."""

    def __init__(self, *, history_capacity: int = 600) -> None:
        self.history_capacity = history_capacity
        self.session: Session | None = None
        self.history: TickHistory | None = None
        self.state = "idle"  # idle | connecting | running | stopped | error
        self.error = ""
        self.estop = False
        #: the operator's rotation axis in the app (kept across reconnects, like the e-stop)
        self.axis = "device"
        #: the report of the last session that was stopped (see ``Session.report``)
        self.last_report: dict[str, Any] | None = None
        self._scene: SceneFrame | None = None
        self._lock = threading.Lock()  # session, scene and e-stop change together under it
        self._thread: threading.Thread | None = None
        self._connect_lock = threading.Lock()
        self._closing = False
        self._stuck: threading.Thread | None = None  # a loop that would not stop
        self._collectors: list[Future[Any]] = []

    # -- lifecycle -----------------------------------------------------------------------
    def connect(self, config: SessionConfig, *, device: Device | None = None) -> Session:
        """Stop any running session, build and start a new one, run its loop. Blocking
        (building loads models): the app calls it through :meth:`connect_async`."""
        with self._connect_lock:
            if self._closing:
                raise RuntimeError("the app is closing")
            if not self._shutdown():
                raise RuntimeError("the previous control loop did not stop; restart the app")
            self.state, self.error = "connecting", ""
            try:
                session = Session(config, device=device)
                history = TickHistory(
                    session.robot.hand.n_joints,
                    capacity=self.history_capacity,
                    missed_deadlines=lambda: session.metrics.missed_deadlines,
                )
                session.subscribe(history)
                session.subscribe(lambda r: self._keep_scene(session, r))
                session.start()
            except Exception as e:
                self.state, self.error = "error", _one_line(e)
                raise
            thread = threading.Thread(
                target=self._loop, args=(session,), name="control-loop", daemon=True
            )
            with self._lock:
                # Under the lock set_estop and close take: an e-stop pressed at any moment
                # reaches either this session (below) or the flag read here, and a window
                # closed while we were loading is seen here.
                closing = self._closing
                if not closing:
                    if self.estop:
                        session.set_estop(True)
                    if self.axis != "device":
                        session.set_axis(self.axis)
                    self.session, self.history, self._thread = session, history, thread
                    self._scene = None
                    self.state = "running"
            if closing:
                session.close()
                self.state = "stopped"
                raise RuntimeError("the app is closing")
            thread.start()
            return session

    def connect_async(self, config: SessionConfig, *, device: Device | None = None) -> Future[Any]:
        """:meth:`connect` on a worker thread; the future holds the session or the error."""
        future: Future[Any] = Future()
        self.state, self.error = "connecting", ""

        def work() -> None:
            try:
                future.set_result(self.connect(config, device=device))
            except Exception as e:  # noqa: BLE001 - reported through the future and state
                future.set_exception(e)

        start_worker(work, "session-connect")
        return future

    def disconnect(self) -> None:
        """Stop the loop and close the session (the hand and device disconnect)."""
        with self._connect_lock:
            self._shutdown()
            if self.state != "error":
                self.state = "stopped"

    def close(self) -> None:
        """For good (the window closes): stop the session without waiting for a connect
        in progress; that one closes its own session when it finishes loading."""
        with self._lock:
            self._closing = True
        if self._connect_lock.acquire(blocking=False):
            try:
                self._shutdown()
                if self.state != "error":
                    self.state = "stopped"
            finally:
                self._connect_lock.release()

    def _shutdown(self) -> bool:
        """Stop and close the current session. False if its loop would not stop (then it
        is left alone, and nothing new may take the hand)."""
        with self._lock:
            session, thread = self.session, self._thread
            self.session, self._thread, self._scene = None, None, None
            collectors, self._collectors = self._collectors, []
        for future in collectors:
            with contextlib.suppress(InvalidStateError):
                future.set_exception(RuntimeError("the session stopped"))
        if session is None:
            return self._stuck is None
        session.stop()
        if thread is not None:
            thread.join(timeout=5.0)
            if thread.is_alive():
                # Never report on or close a session whose loop may still step the hand.
                frame = sys._current_frames().get(thread.ident or -1)
                where = "".join(traceback.format_stack(frame)) if frame is not None else "?"
                log.error(
                    "the control loop did not stop within 5 s; leaving it. It is at:\n%s", where
                )
                self.state, self.error = "error", "the control loop did not stop"
                self._stuck = thread
                return False
        try:
            self.last_report = session.report()
        except Exception as e:  # noqa: BLE001 - a report must not block closing
            log.warning("no report for the session: %s", e)
        try:
            session.close()
        except Exception as e:  # noqa: BLE001 - closing must go on
            log.warning("closing the session failed: %s", e)
        return True

    def _loop(self, session: Session) -> None:
        try:
            session.run()
        except Exception as e:
            log.exception("control loop stopped")
            self.state, self.error = "error", f"control loop stopped: {_one_line(e)}"

    @property
    def running(self) -> bool:
        return self.state == "running" and self._thread is not None and self._thread.is_alive()

    # -- what views read ---------------------------------------------------------------------
    def _keep_scene(self, session: Session, r: TickRecord) -> None:
        robot = session.robot
        cmd = None if r.command is None else r.command.keypoints
        # the simulator state the tick read (None on hardware: the view draws r.state.q)
        arm = None
        if session.arm is not None and r.sim_state is None:  # a real arm: drawn measured
            arm = session.arm.spec.name
        arm_q = None if r.arm is None else r.arm.q
        frame = SceneFrame(robot, r.tick, r.state.q, r.sim_state, cmd, arm, arm_q)
        with self._lock:
            if self.session is session:
                self._scene = frame

    def scene(self) -> SceneFrame | None:
        with self._lock:
            return self._scene

    def snapshot(self) -> TickRecord | None:
        return None if self.session is None else self.session.snapshot()

    def device_status(self) -> DeviceStatus | None:
        session = self.session
        if session is None:
            return None
        try:
            return session.device.status()
        except Exception as e:  # noqa: BLE001 - a broken status reads as disconnected
            return DeviceStatus(False, 0.0, None, 0, 0, f"status failed: {_one_line(e)}")

    def collect_frames(self, seconds: float) -> Future[list[Any]]:
        """The operator's new frames over the next ``seconds`` of ticks (for calibration),
        gathered on the loop thread; the future fails if no session runs or it stops."""
        future: Future[list[Any]] = Future()
        session = self.session
        if session is None or not self.running:
            future.set_exception(RuntimeError("connect a device first"))
            return future
        frames: list[Any] = []
        t_end: list[float] = []
        with self._lock:
            self._collectors.append(future)

        def listen(r: TickRecord) -> None:
            if not t_end:
                t_end.append(r.t + seconds)
            if r.frame is not None:
                frames.append(r.frame)
            if r.t >= t_end[0] or future.done():
                session.unsubscribe(listen)
                with contextlib.suppress(InvalidStateError):
                    future.set_result(frames)

        session.subscribe(listen)
        return future

    # -- changes (applied at the next tick) ----------------------------------------------------
    def set_controller(self, name: str, **options: Any) -> Future[Any]:
        return self._forward(lambda s: s.set_controller(name, **options))

    def update_controller(self, **changes: Any) -> Future[Any]:
        return self._forward(lambda s: s.update_controller(**changes))

    def set_axis(self, choice: str) -> Future[Any]:
        """The operator's rotation axis (``Session.set_axis``), for the running session and
        the ones connected later."""
        from devices.retargeting.axis import AXIS_CHOICES

        if choice in AXIS_CHOICES:
            self.axis = choice
        return self._forward(lambda s: s.set_axis(choice))

    def set_estop(self, on: bool) -> Future[Any]:
        """Engage or release the emergency stop of the running session, and of every
        session connected later (it stays engaged across reconnects until released)."""
        with self._lock:
            self.estop = on
            session = self.session
            if session is not None:  # running, or about to: queued for its next tick
                return session.set_estop(on)
        future: Future[Any] = Future()
        future.set_result(None)  # no session: remembered for the next one
        return future

    def _forward(self, call: Any) -> Future[Any]:
        session = self.session
        if session is None or not self.running:
            future: Future[Any] = Future()
            future.set_exception(RuntimeError("no session is running"))
            return future
        return call(session)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
