"""The arm backend interface: an arm carrying the hand, driven by the operator's wrist.

An arm backend is an :class:`Arm` subclass with a ``Config`` dataclass, registered by name
in :data:`ARMS` (``@ARMS.register("sim")``); ``--arm NAME[:key=value,...]`` builds it
(``--arm none``: no arm, the hand's own wrist mount). The operator's wrist pose reaches the
arm only through :meth:`Arm.send`:

1. the wrist filter (:class:`devices.robots.wrist.WristFilter` with the arm's limits: the
   workspace box around the start, the largest tilt from the start orientation, speed and
   acceleration limits, hold on stale input, e-stop or a fault) turns it into a safe
   displacement and rotation relative to the first pose;
2. that becomes a palm-frame target in the world: the palm's start position plus the
   displacement, the start orientation turned by the wrist's rotation since the first pose
   (both in the world frame);
3. the backend's :meth:`_write_palm` moves there (a simulated arm: inverse kinematics, then
   the joint safety filter with the arm's joint limits and speeds; a real arm: its own
   Cartesian controller and reflexes).

Faults (a reflex, a lost connection) hold the arm and the hand until the operator clears
them (:meth:`Arm.clear_fault`, an explicit recovery). The report's ``arm`` section counts
commands, the filter's events and faults and the tracking error of the palm.
"""

from __future__ import annotations

import abc
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from assets.arms import ArmSpec
from assets.registry import Registry
from devices.robots.base import Fault, FaultLog, Robot
from devices.robots.wrist import WristFilter, WristLimits

#: Every arm backend by name: ``ARMS.make("sim")``.
ARMS: Registry[Arm] = Registry("arm")

#: ``--arm none``: no arm (the hand on its own wrist mount).
NO_ARM = "none"


@dataclass
class ArmLimitsConfig:
    """The wrist-to-arm filter's limits (an operator-safe envelope inside the arm's own).

    Attributes:
        box_min_m / box_max_m: the workspace box around the palm's start position (world
            axes: x forward, y left, z up), m.
        max_speed_m_s / max_accel_m_s2: the palm's translation limits.
        max_rot_speed_rad_s / max_rot_accel_rad_s2: its rotation limits.
        max_tilt_deg: the largest turn from the start orientation, degrees.
    """

    box_min_m: tuple[float, float, float] = (-0.25, -0.3, -0.2)
    box_max_m: tuple[float, float, float] = (0.3, 0.3, 0.3)
    max_speed_m_s: float = 0.5
    max_accel_m_s2: float = 3.0
    max_rot_speed_rad_s: float = 1.5
    max_rot_accel_rad_s2: float = 10.0
    max_tilt_deg: float = 120.0

    def wrist_limits(self) -> WristLimits:
        return WristLimits(
            max_speed_m_s=self.max_speed_m_s,
            max_rot_speed_rad_s=self.max_rot_speed_rad_s,
            box_min_m=tuple(self.box_min_m),
            box_max_m=tuple(self.box_max_m),
            max_accel_m_s2=self.max_accel_m_s2,
            max_rot_accel_rad_s2=self.max_rot_accel_rad_s2,
            max_tilt_rad=float(np.radians(self.max_tilt_deg)),
        )


@dataclass
class ArmState:
    """The arm as measured.

    Attributes:
        t: seconds since connecting. q / dq: joint angles (rad) and speeds (rad/s).
        palm: (4, 4) the hand's palm frame in the world (the arm's forward kinematics).
        target: (4, 4) the last palm target sent, or None.
        mode: the control mode (``position``, ``cartesian_impedance``, ...).
    """

    t: float
    q: np.ndarray
    dq: np.ndarray
    palm: np.ndarray
    target: np.ndarray | None = None
    mode: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def pose_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Distance (m) and angle (rad) between two poses (4, 4)."""
    d = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    c = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1.0) / 2.0
    return d, float(np.arccos(np.clip(c, -1.0, 1.0)))


class Arm(abc.ABC, FaultLog):
    """An arm at a fixed control rate carrying the session's hand.

    Subclasses implement :meth:`_read` and :meth:`_write_palm`, and may adapt the hand
    backend's settings (:meth:`robot_options`) and bind to it (:meth:`attach`).
    """

    Config: ClassVar[type]
    fault_kind = "arm"
    #: Whether commands move real hardware (never on a virtual clock).
    drives_hardware: ClassVar[bool] = True
    #: The control mode now (what the status shows).
    mode: str = ""

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> str | None:
        """None if the backend can be used here, else why not (cheap: listings call it)."""
        return None

    @classmethod
    def robot_options(cls, robot: str, options: dict[str, Any]) -> dict[str, Any]:
        """The hand backend's settings with what this arm needs of it (default: as given);
        raises ValueError for a hand backend the arm cannot carry."""
        return options

    def __init__(self, spec: ArmSpec, rate_hz: float, limits: ArmLimitsConfig) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.spec = spec
        self.rate_hz = float(rate_hz)
        self.filter = WristFilter(limits.wrist_limits(), 1.0 / self.rate_hz)
        self.start_palm: np.ndarray | None = None  # where the palm was when the filter latched
        self.reset_faults()
        self.commands = 0
        self.counts: Counter[str] = Counter()
        self._errors_m: list[float] = []
        self._errors_rad: list[float] = []
        self._target: np.ndarray | None = None
        #: the time since the last send (the caller's clock; None: one period), for the
        #: backend's own rate limits
        self._dt_s: float | None = None
        self.workspace_violations = 0
        self.speed_violations = 0
        self._connected = False

    # -- lifecycle -------------------------------------------------------------------------
    def attach(self, robot: Robot) -> None:
        """Bind to the session's hand backend before connecting (a simulated arm shares its
        simulation)."""

    def connect(self) -> None:
        self.reset_faults()
        self._connect()
        self._connected = True
        self.restart()

    def disconnect(self) -> None:
        if self._connected:
            self._disconnect()
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    def restart(self) -> None:
        """Forget the wrist's origin: the next pose latches a new one at the palm's current
        pose (after connecting, a fault cleared, an e-stop released)."""
        self.filter.reset()
        self.start_palm = None
        self._target = None

    # -- faults ----------------------------------------------------------------------------
    def raise_fault(self, source: str, reason: str) -> Fault:
        """Record a fault and make it the active one (the session holds the hand and the arm
        until the operator recovers); the same active fault is not recorded twice."""
        return super().raise_fault(f"arm {source}", reason)

    def clear_fault(self) -> bool:
        """The operator's explicit recovery: the backend recovers (a real arm: its error
        recovery) and the arm restarts from where it stands; False if the cause remains."""
        if self.fault is None:
            return True
        if not self._recover():
            return False
        self.fault = None
        self.restart()
        return True

    def _recover(self) -> bool:
        return True

    # -- each tick -------------------------------------------------------------------------
    def read(self) -> ArmState:
        state = self._read()
        if self._target is not None:  # how far the palm is from the last target
            d, a = pose_error(state.palm, self._target)
            self._errors_m.append(d)
            self._errors_rad.append(a)
        state.target = None if self._target is None else self._target.copy()
        return state

    def send(
        self, pose: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray | None, list[str]]:
        """Filter the operator's wrist pose (4, 4, device world frame; its rotation aligned
        with the palm frame) and move the palm toward the safe target. Returns the palm
        target (world; None before the first valid pose or while a fault holds) and the
        filter's events."""
        if self.fault is not None and hold is None:
            hold = "arm_fault"
        self._dt_s = dt_s
        safe, events = self.filter(pose, hold=hold, dt_s=dt_s)
        self.counts.update(e for e in events if e != hold)
        if safe is None or hold is not None:
            return (None if self._target is None else self._target.copy()), events
        if self.start_palm is None:
            self.start_palm = self._read().palm.copy()
        target = np.eye(4)
        target[:3, 3] = self.start_palm[:3, 3] + safe[:3, 3]
        assert self.filter.origin_rot is not None
        turn = safe[:3, :3] @ self.filter.origin_rot.T  # the wrist's turn since the first pose
        target[:3, :3] = turn @ self.start_palm[:3, :3]
        self._check(target, dt_s)
        self._target = target
        self._write_palm(target)
        self.commands += 1
        return target.copy(), events

    def _check(self, target: np.ndarray, dt_s: float | None) -> None:
        """Count, independently of the filter, targets outside the workspace box or faster
        than the speed limits (both must stay 0)."""
        from devices.robots.limits import max_step

        assert self.start_palm is not None
        lim = self.filter.limits
        lo, hi = lim.box
        rel = target[:3, 3] - self.start_palm[:3, 3]
        if np.any(rel < lo - 1e-9) or np.any(rel > hi + 1e-9):
            self.workspace_violations += 1
        if self._target is not None:
            d, a = pose_error(target, self._target)
            period = 1.0 / self.rate_hz
            if (
                d > max_step(lim.max_speed_m_s, period, dt_s) + 1e-9
                or a > max_step(lim.max_rot_speed_rad_s, period, dt_s) + 1e-9
            ):
                self.speed_violations += 1

    # -- report ------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        def pct(x: list[float], scale: float) -> dict[str, float | None]:
            if not x:
                return {"p50": None, "p95": None}
            p50, p95 = np.percentile(np.asarray(x) * scale, [50, 95])
            return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}

        return {
            "backend": getattr(self, "registered_name", type(self).__name__),
            "model": self.spec.name,
            "commands_sent": self.commands,
            "events": dict(sorted(self.counts.items())),
            "targets_clipped_by_workspace": int(self.counts.get("wrist_workspace", 0)),
            "workspace_violations": self.workspace_violations,
            "speed_violations": self.speed_violations,
            "tracking_error_mm": pct(self._errors_m, 1000.0),
            "tracking_error_deg": pct(self._errors_rad, float(np.degrees(1.0))),
            "faults": [f.to_dict() for f in self.faults],
            **self._report_extra(),
        }

    def _report_extra(self) -> dict[str, Any]:
        return {}

    # -- for subclasses ----------------------------------------------------------------------
    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    @abc.abstractmethod
    def _read(self) -> ArmState: ...

    @abc.abstractmethod
    def _write_palm(self, target: np.ndarray) -> None:
        """Move the palm frame toward ``target`` (4, 4, world; filtered already)."""
