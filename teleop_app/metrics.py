"""Aggregates TickRecords into the run report."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

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
        }
