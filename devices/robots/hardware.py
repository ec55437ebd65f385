"""What every real hand backend shares: the measured state as the loop sees it, bus timing
statistics, and the low-rate health poll.

A real backend (:mod:`devices.robots.dynamixel`, :mod:`devices.robots.allegro_can`)
subclasses :class:`RealHand`: it reads joint positions and velocities off its bus in the
hand spec's joint order and hands them to :meth:`RealHand.state`, which adds what the
controllers need (keypoints by forward kinematics of the same model the simulator uses, the
palm frame of the mount's orientation). Faults (:class:`devices.robots.base.Fault`) hold the
hand through the session.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

from assets.hands import Hand
from devices.robots.base import Robot
from devices.robots.scene import MOUNT_POS, WRIST_ORIENTATIONS
from devices.tick import HandState

#: Bus timings kept for the report: the last this many ticks.
TIMING_WINDOW = 4096


class BusTimer:
    """Per operation (``read``, ``write``, ``tick``...): the last :data:`TIMING_WINDOW`
    durations in ms, summarised as p50 / p99 / max for reports and benchmarks."""

    def __init__(self) -> None:
        self._ms: dict[str, deque[float]] = {}

    def add(self, op: str, seconds: float) -> None:
        self._ms.setdefault(op, deque(maxlen=TIMING_WINDOW)).append(seconds * 1e3)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for op, v in sorted(self._ms.items()):
            a = np.asarray(v)
            out[op] = {
                "n": int(a.size),
                "p50": round(float(np.percentile(a, 50)), 3),
                "p99": round(float(np.percentile(a, 99)), 3),
                "max": round(float(a.max()), 3),
            }
        return out


def mounted_wrist(wrist: str) -> np.ndarray:
    """(4, 4) the palm frame in the world for a hand mounted in one of the six fixed
    orientations (as the simulated hand's scene places it)."""
    if wrist not in WRIST_ORIENTATIONS:
        raise ValueError(
            f"unknown wrist {wrist!r}; a real hand is mounted {', '.join(WRIST_ORIENTATIONS)}"
        )
    pose = np.eye(4)
    pose[:3, :3] = WRIST_ORIENTATIONS[wrist]
    pose[:3, 3] = MOUNT_POS
    return pose


class RealHand(Robot):
    """A hand on a bus. Subclasses read and write it and call :meth:`state`."""

    def __init__(self, hand: Hand, rate_hz: float, wrist: str = "palm_up") -> None:
        super().__init__(hand, rate_hz)
        self._wrist = mounted_wrist(wrist)
        self.timer = BusTimer()
        self._last_health = -np.inf

    def state(
        self,
        q: np.ndarray,
        dq: np.ndarray,
        target: np.ndarray,
        effort: np.ndarray | None = None,
    ) -> HandState:
        """The loop's view of measured joints (spec order, rad, rad/s and, where the bus
        reports it, N m)."""
        q = np.asarray(q, dtype=float)
        return HandState(
            t=time.monotonic() - self._t_connect,
            q=q.copy(),
            dq=np.asarray(dq, dtype=float).copy(),
            target=np.asarray(target, dtype=float).copy(),
            keypoints=self.hand.keypoints(q),
            wrist=self._wrist.copy(),
            effort=None if effort is None else np.asarray(effort, dtype=float).copy(),
        )

    def health_due(self, hz: float) -> bool:
        """Whether the low-rate health poll (``hz`` per second; <= 0: never) is due now;
        marks it done."""
        if hz <= 0:
            return False
        now = time.monotonic()
        if now - self._last_health < 1.0 / hz:
            return False
        self._last_health = now
        return True

    def bus_report(self) -> dict[str, Any]:
        """Timings of the bus operations (ms) for the run report."""
        return self.timer.summary()
