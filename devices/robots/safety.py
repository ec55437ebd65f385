"""The safety filter between every controller and every hand.

Every target a hand receives passes through :class:`SafetyFilter`: it is replaced by the last
safe target when the input is stale or invalid, clipped to the joint limits, and rate
limited so that no joint's target moves more than ``max_delta`` per tick. The output is
always inside the limits and within ``max_delta`` of the previous output, whatever the
input (a property test checks this).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

#: Event names counted by the filter (and reported by the session).
HOLD_EVENTS = ("stale_input", "invalid_input", "emergency_stop")
TARGET_EVENTS = ("invalid_target", "clipped_to_limits", "rate_limited")


class SafetyFilter:
    """Joint limits, rate limit, and hold-last-safe-target.

    Args:
        lower, upper: (n,) joint limits, rad.
        max_delta: (n,) or scalar, the largest change of the target per tick, rad.
        initial: (n,) the pose to hold before the first target (clipped to the limits).
    """

    def __init__(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        max_delta: np.ndarray | float,
        initial: np.ndarray,
    ) -> None:
        self.lower = np.asarray(lower, dtype=float).copy()
        self.upper = np.asarray(upper, dtype=float).copy()
        if self.lower.shape != self.upper.shape or self.lower.ndim != 1:
            raise ValueError("lower and upper must be 1-D arrays of the same length")
        if np.any(self.lower > self.upper):
            raise ValueError("lower limits must not exceed upper limits")
        self.n = self.lower.size
        self.max_delta = np.broadcast_to(np.asarray(max_delta, dtype=float), (self.n,)).copy()
        if np.any(~np.isfinite(self.max_delta)) or np.any(self.max_delta <= 0):
            raise ValueError("max_delta must be finite and positive")
        self.counts: Counter[str] = Counter()
        self.last = self.lower.copy()
        self.reset(initial)

    def reset(self, measured: np.ndarray) -> None:
        """Hold ``measured`` (clipped to the limits) as the last safe target."""
        measured = np.asarray(measured, dtype=float)
        if measured.shape != (self.n,) or not np.all(np.isfinite(measured)):
            measured = (self.lower + self.upper) / 2
        self.last = np.clip(measured, self.lower, self.upper)

    def __call__(self, target: object, *, hold: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Filter one target.

        Args:
            target: the controller's target, expected (n,) finite floats; anything else holds.
            hold: a reason to ignore ``target`` and hold the last safe target (e.g.
                ``"stale_input"``), or None.

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
                clipped = np.clip(t, self.lower, self.upper)
                if np.any(clipped != t):
                    events.append("clipped_to_limits")
                step = np.clip(clipped - self.last, -self.max_delta, self.max_delta)
                if np.any(step != clipped - self.last):
                    events.append("rate_limited")
                # last and clipped are inside the box, so is every point between them;
                # clip once more only against floating-point rounding.
                self.last = np.clip(self.last + step, self.lower, self.upper)
        self.counts.update(events)
        return self.last.copy(), events
