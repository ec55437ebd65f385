"""Switching controllers without restarting the session.

A switch is requested from any thread (the UI's) and done in steps, each at the start of a
tick on the loop thread or on a builder thread of its own:

1. **hold**: from the next tick the hand holds its pose (``switching_controller``);
2. **build**: the new controller is built off the loop thread (loading a model can take
   longer than a tick), or at the next tick with ``build_now``;
3. **install**: at the start of a tick it is reset from the measured state and put in
   place; if it reads joints and the old one did not, retargeting's solve restarts from
   the measured pose and the cached (joint-less) command is dropped.

The latest request wins: each request takes the next generation number; a request that a
later one superseded before it was installed is dropped (its future says so), whatever
order the builds finish in, and only the latest lets the hand move again. A request that
cannot be built (unknown, not trained yet, bad settings) leaves the old controller driving;
its future holds the reason.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from controllers.base import CONTROLLERS, Controller, ControllerUnavailable
from teleop_app.workers import start_worker

if TYPE_CHECKING:
    from teleop_app.session import Session


class ControllerSwitch:
    """One requested switch of ``session``'s controller to ``name`` with ``options``.

    ``result`` is done with ``name`` once the controller is in place, or with the reason it
    is not.
    """

    def __init__(self, session: Session, name: str, options: dict[str, Any]) -> None:
        self.session = session
        self.name = name
        self.options = options
        self.result: Future[str] = Future()
        with session._submit_lock:
            session._switch_gen += 1
            self.gen = session._switch_gen

    # -- the steps -----------------------------------------------------------------------------
    def start(self, *, build_now: bool = False) -> Future[str]:
        if build_now:  # built at the next tick, on the loop thread
            self.session.submit(lambda s: self._install(s, self._build())).add_done_callback(
                self._finish
            )
        else:
            self.session.submit(self._hold).add_done_callback(self._start_building)
        return self.result

    def _latest(self) -> bool:
        return self.gen == self.session._switch_gen

    def _hold(self, s: Session) -> None:
        if self._latest():
            s._switch_pending = self.gen

    def _start_building(self, held: Future[Any]) -> None:
        if held.exception() is not None:  # the session closed first
            self._finish(held)
            return
        start_worker(self._builder, "controller-build")

    def _builder(self) -> None:
        if not self._latest():  # superseded before we began: do not load a model
            self._install_later(RuntimeError("superseded"))
            return
        self._install_later(self._build())

    def _build(self) -> Controller | BaseException:
        try:
            reason = CONTROLLERS.get(self.name).availability(self.session.config.hand)
            if reason is not None:
                raise ControllerUnavailable(f"{self.name}: {reason}")
            return self.session._make_controller(self.name, self.options)
        except Exception as e:  # noqa: BLE001 - reported through the future
            return e

    def _install_later(self, new: Controller | BaseException) -> None:
        self.session.submit(lambda s: self._install(s, new)).add_done_callback(self._finish)

    def _install(self, s: Session, new: Controller | BaseException) -> str:
        if not self._latest():
            raise RuntimeError(f"the switch to {self.name} was superseded by a later switch")
        s._switch_pending = None  # the latest switch is done: the hand may move
        if isinstance(new, BaseException):
            raise new
        state = s.robot.read()
        new.reset(state)
        if "joints" in new.command_fields and "joints" not in s.controller.command_fields:
            # the joint solve was skipped: restart it from the measured pose, and wait for
            # a new frame's joints (the cached command has none)
            s.command_builder.restart_solve(state.q)
            s._command = None
        s.controller, s.controller_name = new, self.name
        return self.name

    def _finish(self, change: Future[Any]) -> None:
        if change.cancelled():
            self.result.cancel()
            return
        exc = change.exception()
        if exc is None:
            self.result.set_result(self.name)
        else:
            self.result.set_exception(exc)
