"""Rolling history of the last ticks, for live plots (no Qt).

A :class:`TickHistory` subscribes to a session: the loop thread appends one row per tick
(cheap copies into preallocated arrays under a lock); a view copies what it needs at its
own rate with :meth:`TickHistory.view`. Nothing here blocks the loop for longer than a
few array copies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from teleop_app.metrics import STAGES

if TYPE_CHECKING:
    from teleop_app.session import TickRecord

#: Stages plotted as latency (ms), a subset of :data:`teleop_app.metrics.STAGES`.
PLOT_STAGES = tuple(s for s in STAGES if s not in ("frame_age", "hand_read"))


@dataclass(frozen=True)
class HistoryView:
    """The last ``n`` ticks, oldest first. Missing values are NaN.

    Attributes:
        t: loop time (s). tick: tick index.
        commanded: (n, K, 3) commanded keypoints, palm frame (m).
        executed: (n, K, 3) the hand's keypoints, palm frame (m).
        sent: (n, J) targets the hand received. measured: (n, J) joint positions.
        latency_ms: stage -> (n,) durations. missed: (n,) missed deadlines so far.
        intervention_mm: (n,) mean distance between the previous tick's commanded keypoints
            and where the hand's keypoints are now (what the operator asked vs what the hand
            did, one tick later).
        controller_intervention_mm: (n,) the controller's own ``info["intervention_mm"]``.
        settings: live numeric setting -> (n,) value (NaN while another controller runs).
        holding: (n,) 1 when the hand held this tick. estop: (n,) 1 under emergency stop.
    """

    t: np.ndarray
    tick: np.ndarray
    commanded: np.ndarray
    executed: np.ndarray
    sent: np.ndarray
    measured: np.ndarray
    latency_ms: dict[str, np.ndarray]
    missed: np.ndarray
    intervention_mm: np.ndarray
    controller_intervention_mm: np.ndarray
    settings: dict[str, np.ndarray]
    holding: np.ndarray
    estop: np.ndarray

    def __len__(self) -> int:
        return int(self.t.size)

    def rate_hz(self, window_s: float = 2.0) -> float:
        """Ticks per second over the last ``window_s`` (0 with fewer than two ticks)."""
        if self.t.size < 2:
            return 0.0
        recent = self.t[self.t >= self.t[-1] - window_s]
        span = float(recent[-1] - recent[0])
        return (recent.size - 1) / span if span > 0 else 0.0


class TickHistory:
    """A ring buffer of ``capacity`` ticks, filled by ``history(record)`` on the loop thread.

    ``missed_deadlines`` is a callable returning the loop's missed-deadline count (the
    session's metrics), read as each row is written.
    """

    def __init__(
        self,
        n_joints: int,
        *,
        n_keypoints: int = 8,
        capacity: int = 600,
        missed_deadlines: object = None,
    ) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.n_joints = n_joints
        self._missed_fn = missed_deadlines
        c, k = capacity, n_keypoints
        self._t = np.full(c, np.nan)
        self._tick = np.zeros(c, dtype=np.int64)
        self._cmd = np.full((c, k, 3), np.nan)
        self._exe = np.full((c, k, 3), np.nan)
        self._sent = np.full((c, n_joints), np.nan)
        self._meas = np.full((c, n_joints), np.nan)
        self._lat = {s: np.full(c, np.nan) for s in PLOT_STAGES}
        self._missed = np.zeros(c)
        self._interv = np.full(c, np.nan)
        self._ctrl_interv = np.full(c, np.nan)
        self._settings: dict[str, np.ndarray] = {}
        self._hold = np.zeros(c)
        self._estop = np.zeros(c)
        self._n = 0  # rows written in all
        self._prev_cmd: np.ndarray | None = None
        self._lock = threading.Lock()

    def __call__(self, r: TickRecord) -> None:
        """Append one tick (the session listener)."""
        cmd = None if r.command is None else r.command.keypoints
        with self._lock:
            i = self._n % self.capacity
            self._t[i] = r.t
            self._tick[i] = r.tick
            self._cmd[i] = np.nan if cmd is None else cmd
            self._exe[i] = r.state.keypoints
            self._sent[i] = r.sent
            self._meas[i] = r.state.q
            for stage, arr in self._lat.items():
                arr[i] = r.timings_ms.get(stage, np.nan)
            self._missed[i] = self._missed_fn() if callable(self._missed_fn) else 0
            prev = self._prev_cmd
            self._interv[i] = (
                np.nan
                if prev is None
                else 1e3 * float(np.linalg.norm(r.state.keypoints - prev, axis=1).mean())
            )
            self._ctrl_interv[i] = float(r.info.get("intervention_mm", np.nan))
            for name, value in r.settings.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                arr = self._settings.get(name)
                if arr is None:
                    arr = self._settings[name] = np.full(self.capacity, np.nan)
                arr[i] = value
            for name, arr in self._settings.items():
                if name not in r.settings:
                    arr[i] = np.nan
            self._hold[i] = float(r.target is None)
            self._estop[i] = float("emergency_stop" in r.events)
            self._prev_cmd = None if cmd is None else np.array(cmd, dtype=float)
            self._n += 1

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    def view(self, last: int | None = None) -> HistoryView:
        """Copies of the last ``last`` rows (default all kept), oldest first."""
        with self._lock:
            n = min(self._n, self.capacity)
            if last is not None:
                n = min(n, max(0, int(last)))
            end = self._n % self.capacity
            idx = (np.arange(end - n, end)) % self.capacity

            def take(a: np.ndarray) -> np.ndarray:
                return a[idx].copy()

            return HistoryView(
                t=take(self._t),
                tick=take(self._tick),
                commanded=take(self._cmd),
                executed=take(self._exe),
                sent=take(self._sent),
                measured=take(self._meas),
                latency_ms={s: take(a) for s, a in self._lat.items()},
                missed=take(self._missed),
                intervention_mm=take(self._interv),
                controller_intervention_mm=take(self._ctrl_interv),
                settings={k: take(a) for k, a in self._settings.items()},
                holding=take(self._hold),
                estop=take(self._estop),
            )
