"""Aggregates TickRecords into the run report."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from assets.rotations import turn_about_axis
from devices.tick import axis_name

if TYPE_CHECKING:
    from teleop_app.session import TickRecord

#: The per-tick stages the loop times (ms), in this order everywhere: the report's
#: ``latency_ms``, the recordings' ``timing.stage_ms``, the app's latency plots.
STAGES = ("frame_age", "retarget", "controller", "hand_read", "hand_write", "tick")


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0, "n": 0}
    a = np.asarray(values)
    return {
        "p50": round(float(np.percentile(a, 50)), 4),
        "p99": round(float(np.percentile(a, 99)), 4),
        "mean": round(float(a.mean()), 4),
        "max": round(float(a.max()), 4),
        "n": int(a.size),
    }


def axis_in_use(r: TickRecord) -> np.ndarray | None:
    """The rotation axis of a tick: the one the controller turned about (its ``info``
    ``axis_x/y/z``, e.g. a fixed axis setting), else the command's, else None."""
    info = r.info or {}
    if all(k in info for k in ("axis_x", "axis_y", "axis_z")):
        return np.array([info["axis_x"], info["axis_y"], info["axis_z"]], dtype=float)
    return None if r.command is None else r.command.axis


class ObjectMeter:
    """The simulated object's rotation over a run (the report's ``object``).

    Each tick the object's turn since the last tick (world frame) is expressed in the palm
    frame and split into its part about the axis commanded at the tick it turned under (the
    last tick's command: a state is read before the tick's target is sent)
    (``rotation_about_command_axis_rad``, summed with sign) and the rest (``off_axis_rad``,
    summed magnitudes). Ticks without a commanded axis count toward neither; turning stops
    counting once the object has dropped. ``time_to_drop_s``: from the first tick with an
    object to the first tick it reads dropped (None when kept).
    """

    def __init__(self) -> None:
        self.about = 0.0
        self.off = 0.0
        self.ticks_with_axis = 0
        self.by_axis: dict[str, float] = {}
        self.dropped = False
        self.t0: float | None = None
        self.t_drop: float | None = None
        self._prev: np.ndarray | None = None
        self._prev_axis: np.ndarray | None = None

    def add(self, state: Any, axis: np.ndarray | None) -> None:
        pose = state.object_pose
        if pose is None:
            return
        if self.t0 is None:
            self.t0 = state.t
        quat = np.asarray(pose[3:7], dtype=float)
        if self._prev is not None and not self.dropped and self._prev_axis is not None:
            k = self._prev_axis
            along, off = turn_about_axis(self._prev, quat, state.wrist, k)
            if np.isfinite(along):
                self.about += along
                name = axis_name(k)
                self.by_axis[name] = self.by_axis.get(name, 0.0) + along
                self.off += off
                self.ticks_with_axis += 1
        if state.object_dropped and not self.dropped:
            self.dropped = True
            self.t_drop = state.t - self.t0
        self._prev = quat
        self._prev_axis = None
        if axis is not None:
            k = np.asarray(axis, dtype=float)
            self._prev_axis = k / max(float(np.linalg.norm(k)), 1e-12)

    def report(self) -> dict[str, Any] | None:
        if self.t0 is None:
            return None
        return {
            "rotation_about_command_axis_rad": round(self.about, 5),
            "off_axis_rad": round(self.off, 5),
            "ticks_with_axis": self.ticks_with_axis,
            # the same sum split by the axis in use (a palm axis by name, else rounded)
            "rotation_by_axis_rad": {k: round(v, 5) for k, v in self.by_axis.items()},
            "dropped": self.dropped,
            "time_to_drop_s": None if self.t_drop is None else round(self.t_drop, 4),
        }


class Metrics:
    """Counts and distributions over a run.

    Tracking error is the mean distance between the hand's 8 keypoints and the commanded
    keypoints (both in the palm frame) at the start of each tick that has a command; it
    includes the one-tick lag between command and motion.
    """

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.stages = stages
        self.ticks = 0
        self.missed_deadlines = 0
        self.wall_time_s = 0.0
        self.latency_ms: dict[str, list[float]] = {s: [] for s in stages}
        self.tracking_error_m: list[float] = []
        self.other = Counter[str]()
        self.frames_used = 0
        #: frames the loop refused (per distinct frame, by reason)
        self.frames_rejected = Counter[str]()
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.object = ObjectMeter()

    def count(self, name: str) -> None:
        self.other[name] += 1

    def add_tick(self, r: TickRecord) -> None:
        self.ticks += 1
        if self.t_first is None:
            self.t_first = r.t
        self.t_last = r.t
        for stage, ms in r.timings_ms.items():
            if stage in self.latency_ms:
                self.latency_ms[stage].append(ms)
        self.object.add(r.state, axis_in_use(r))
        if r.command is not None and r.command.keypoints is not None:
            err = np.linalg.norm(r.state.keypoints - r.command.keypoints, axis=1).mean()
            self.tracking_error_m.append(float(err))

    def report(
        self,
        *,
        rate_target_hz: float,
        fast: bool,
        limit_violations: int,
        safety_counts: dict[str, int],
    ) -> dict[str, Any]:
        """The report dict.

        ``rate_hz`` is ticks per second of the loop's clock in real time; in fast mode the
        clock is virtual, so it is ticks per wall-clock second (how fast the run went).
        """
        span = (self.t_last - self.t_first) if self.t_first is not None and self.ticks > 1 else 0.0
        if fast:
            rate = self.ticks / self.wall_time_s if self.wall_time_s > 0 else 0.0
        else:
            rate = (self.ticks - 1) / span if span > 0 else 0.0
        err = np.asarray(self.tracking_error_m) * 1e3
        return {
            "ticks": self.ticks,
            "rate_hz": round(rate, 3),
            "rate_target_hz": rate_target_hz,
            "fast": fast,
            "wall_time_s": round(self.wall_time_s, 3),
            "missed_deadlines": self.missed_deadlines,
            "latency_ms": {s: _pct(v) for s, v in self.latency_ms.items()},
            "safety_events": dict(sorted(safety_counts.items())),
            "limit_violations": limit_violations,
            "tracking_error_mm": {
                "mean": round(float(err.mean()), 3) if err.size else None,
                "p95": round(float(np.percentile(err, 95)), 3) if err.size else None,
                "n": int(err.size),
            },
            "other_events": dict(self.other),
            **({"object": obj} if (obj := self.object.report()) is not None else {}),
        }
