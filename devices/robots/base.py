"""The hand backend interface: a simulated or real hand the control loop drives."""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from assets.hands import Hand
from assets.registry import Registry
from devices.robots.safety import SafetyFilter
from devices.tick import HandState

#: Every hand backend by name: ``ROBOTS.make("sim", hand="leap")``.
ROBOTS: Registry[Robot] = Registry("robot")

#: Tolerance (rad) when counting targets outside the joint limits at the hand itself.
LIMIT_TOL_RAD = 1e-9


class Robot(abc.ABC):
    """A hand at a fixed control rate.

    Subclasses implement :meth:`_read` and :meth:`_write`. Callers use :meth:`send`, which
    passes every target through the hand's :class:`SafetyFilter`; there is no other way
    to write a target. The hand also counts, independently of the filter, every target that
    reached :meth:`_write` outside the joint limits (``limit_violations``, which must stay 0).
    """

    Config: ClassVar[type]
    supports_wrist_pose: ClassVar[bool] = False

    def __init__(self, hand: Hand, rate_hz: float) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.hand = hand
        self.rate_hz = float(rate_hz)
        self.safety = SafetyFilter(
            hand.lower,
            hand.upper,
            hand.spec.max_joint_speed_rad_s,
            1.0 / self.rate_hz,
            hand.default_open,
        )
        self.limit_violations = 0
        self._connected = False

    # -- lifecycle -------------------------------------------------------------------------
    def connect(self) -> None:
        self._connect()
        self._connected = True
        self.safety.reset(self._read().q)

    def disconnect(self) -> None:
        if self._connected:
            self._disconnect()
        self._connected = False

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def connected(self) -> bool:
        return self._connected

    # -- I/O -------------------------------------------------------------------------------
    def read(self) -> HandState:
        return self._read()

    def send(
        self, target: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Filter ``target`` for safety and write it. Returns the sent target and events.

        ``dt_s`` is the time since the previous send on the caller's clock (None: one
        period); the rate limit scales with it, so a caller catching up cannot go faster.
        """
        safe, events = self.safety(target, hold=hold, dt_s=dt_s)
        if np.any(safe < self.hand.lower - LIMIT_TOL_RAD) or np.any(
            safe > self.hand.upper + LIMIT_TOL_RAD
        ):
            self.limit_violations += 1
        self._write(safe)
        return safe, events

    def set_wrist_pose(self, pose: np.ndarray) -> None:  # noqa: B027 - optional capability
        """Follow the operator's wrist (4, 4 world pose); backends without a mount ignore it."""

    # -- for subclasses ----------------------------------------------------------------------
    def _connect(self) -> None:  # noqa: B027 - optional hook
        pass

    def _disconnect(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def _read(self) -> HandState: ...

    @abc.abstractmethod
    def _write(self, target: np.ndarray) -> None: ...
