"""The safety filter between every controller and every hand.

Every target a hand receives passes through :class:`SafetyFilter`: it is replaced by the last
safe target when the input is stale or invalid, clipped to the joint limits, and rate
limited so that no joint's target moves faster than ``max_speed`` rad/s: a step may be at
most ``max_speed * min(dt, period)``, where ``dt`` is the time since the previous target
(a loop catching up after an overrun cannot move the hand faster than the limit). The
clipping and the rate limit are :func:`devices.robots.limits.limit_step`, the rule the RL
environments and MoDex apply too; this filter adds the hold and the event counts. Between
resets, the output is always inside the limits and within that step of the previous output,
whatever the input (a property test checks this). ``reset`` (at connection, on emergency
stop) re-anchors the filter at the measured pose.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from devices.robots import limits


class SafetyFilter:
    """Joint limits, rate limit, and hold-last-safe-target.

    Args:
        lower, upper: (n,) joint limits, rad.
        max_speed: (n,) or scalar, the largest target speed, rad/s.
        period_s: the nominal control period; steps never exceed ``max_speed * period_s``.
        initial: (n,) the pose to hold before the first target (clipped to the limits).
    """

    def __init__(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        max_speed: np.ndarray | float,
        period_s: float,
        initial: np.ndarray,
    ) -> None:
        self.lower = np.asarray(lower, dtype=float).copy()
        self.upper = np.asarray(upper, dtype=float).copy()
        if self.lower.shape != self.upper.shape or self.lower.ndim != 1:
            raise ValueError("lower and upper must be 1-D arrays of the same length")
        if np.any(self.lower > self.upper):
            raise ValueError("lower limits must not exceed upper limits")
        self.n = self.lower.size
        self.max_speed = np.broadcast_to(np.asarray(max_speed, dtype=float), (self.n,)).copy()
        if np.any(~np.isfinite(self.max_speed)) or np.any(self.max_speed <= 0):
            raise ValueError("max_speed must be finite and positive")
        if not (np.isfinite(period_s) and period_s > 0):
            raise ValueError("period_s must be finite and positive")
        self.period_s = float(period_s)
        self.counts: Counter[str] = Counter()
        self.last = self.lower.copy()
        self.reset(initial)

    def max_step(self, dt_s: float | None = None) -> np.ndarray:
        """(n,) the largest allowed change after ``dt_s`` seconds (default: one period)."""
        return limits.max_step(self.max_speed, self.period_s, dt_s)

    def reset(self, measured: np.ndarray) -> None:
        """Hold ``measured`` (clipped to the limits) as the last safe target."""
        measured = np.asarray(measured, dtype=float)
        if measured.shape != (self.n,) or not np.all(np.isfinite(measured)):
            measured = (self.lower + self.upper) / 2
        self.last = np.clip(measured, self.lower, self.upper)

    def __call__(
        self, target: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Filter one target.

        Args:
            target: the controller's target, expected (n,) finite floats; anything else holds.
            hold: a reason to ignore ``target`` and hold the last safe target (e.g.
                ``"stale_input"``), or None.
            dt_s: seconds since the previous target; None means one period.

        Returns:
            The safe target (a new (n,) array) and the list of events this tick.
        """
        events: list[str] = []
        if hold is not None:
            events.append(hold)
        else:
            try:
                t = np.asarray(target, dtype=float)
            except (TypeError, ValueError):
                t = None
            if t is None or t.shape != (self.n,) or not np.all(np.isfinite(t)):
                events.append("invalid_target")
            else:
                limit = self.max_step(dt_s)
                clipped = np.clip(t, self.lower, self.upper)
                if np.any(clipped != t):
                    events.append("clipped_to_limits")
                if np.any(np.abs(clipped - self.last) > limit):
                    events.append("rate_limited")
                self.last = limits.limit_step(
                    t, self.last, lower=self.lower, upper=self.upper, max_step=limit
                )
        self.counts.update(events)
        return self.last.copy(), events
