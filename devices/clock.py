"""Clocks for the control loop and the devices that must agree with it.

``RealClock`` is the monotonic wall clock. ``SimClock`` is virtual time for ``--fast`` runs:
sleeping advances it instantly, so a 20 s session runs as fast as the machine allows, with
the same number of ticks and (for replayed input) the frame due at each tick, exactly and
deterministically; in real time the same holds up to thread scheduling (within a frame).
"""

from __future__ import annotations

import threading
import time


class RealClock:
    """Monotonic seconds; ``sleep_until`` sleeps (never busy-waits for long)."""

    realtime = True

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        dt = t - time.monotonic()
        if dt > 0:
            time.sleep(dt)


class SimClock:
    """Virtual seconds starting at ``start``; ``sleep_until`` jumps forward."""

    realtime = False

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep_until(self, t: float) -> None:
        with self._lock:
            self._t = max(self._t, float(t))


Clock = RealClock | SimClock
