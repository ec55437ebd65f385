"""The wrist's own safety filter: every wrist (mount or arm) pose passes it before a backend.

The operator's wrist pose arrives in the input device's world frame. :class:`WristFilter`
latches the first valid pose as the origin and turns each later one into a pose relative to
it (translation = displacement from the origin, rotation = the wrist's absolute orientation,
which shares its axes with the palm frame), then:

- clips the displacement to the workspace box (``±workspace_m`` per axis, or the box
  ``box_min_m``..``box_max_m`` around the origin, m);
- optionally keeps the orientation within ``max_tilt_rad`` of the first pose's;
- limits the translation speed (``max_speed_m_s``) and the rotation speed
  (``max_rot_speed_rad_s``) against the last safe pose, over ``min(dt, period)``, and
  optionally the accelerations (``max_accel_m_s2``, ``max_rot_accel_rad_s2``: the speed
  changes by at most that much per second and is capped so that it can still stop at the
  target, sqrt(2 a d));
- holds the last safe pose on a hold reason (stale input, emergency stop, a switch) or an
  invalid pose (wrong shape, non-finite, not a rotation); before the first valid pose there
  is nothing to hold and nothing is written.

Counts of the filter's own events are kept in ``counts`` (hold reasons are the joint safety
filter's to count).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from devices.robots import limits
from devices.tick import is_rotation


@dataclass(frozen=True)
class WristLimits:
    """Workspace and speed limits of the wrist (defaults: a seated operator's reach).

    Attributes:
        workspace_m: half-size of the box around the origin, per axis, m.
        max_speed_m_s: largest translation speed, m/s.
        max_rot_speed_rad_s: largest rotation speed, rad/s.
        box_min_m / box_max_m: an asymmetric box around the origin (x, y, z), m, instead of
            ``±workspace_m`` (both or neither; the origin inside).
        max_accel_m_s2 / max_rot_accel_rad_s2: acceleration limits (None: none).
        max_tilt_rad: the largest angle between the orientation and the first pose's
            (None: any orientation).
    """

    workspace_m: float = 0.5
    max_speed_m_s: float = 2.0
    max_rot_speed_rad_s: float = 4.0 * np.pi
    box_min_m: tuple[float, float, float] | None = None
    box_max_m: tuple[float, float, float] | None = None
    max_accel_m_s2: float | None = None
    max_rot_accel_rad_s2: float | None = None
    max_tilt_rad: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "workspace_m",
            "max_speed_m_s",
            "max_rot_speed_rad_s",
            "max_accel_m_s2",
            "max_rot_accel_rad_s2",
            "max_tilt_rad",
        ):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ValueError(f"wrist limit {name} must be finite and positive, got {v}")
        if (self.box_min_m is None) != (self.box_max_m is None):
            raise ValueError("wrist limits: give both box_min_m and box_max_m, or neither")
        if self.box_min_m is not None:
            lo, hi = np.asarray(self.box_min_m, float), np.asarray(self.box_max_m, float)
            if lo.shape != (3,) or hi.shape != (3,) or not np.all(np.isfinite([lo, hi])):
                raise ValueError("wrist limits: box_min_m and box_max_m are 3 finite numbers")
            if not np.all(lo <= 0) or not np.all(hi >= 0):
                raise ValueError("wrist limits: the box must hold the origin (min <= 0 <= max)")

    @property
    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) of the workspace box around the origin, m."""
        if self.box_min_m is not None:
            return np.asarray(self.box_min_m, float), np.asarray(self.box_max_m, float)
        return np.full(3, -self.workspace_m), np.full(3, self.workspace_m)


def _axis_angle(delta: np.ndarray) -> tuple[np.ndarray, float]:
    """The unit axis and angle (rad) of the rotation matrix ``delta``."""
    angle = float(np.arccos(np.clip((np.trace(delta) - 1.0) / 2.0, -1.0, 1.0)))
    w = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0], delta[1, 0] - delta[0, 1]])
    n = np.linalg.norm(w)
    if n < 1e-9:  # none or a half turn: the eigenvector of eigenvalue 1 is the axis
        vals, vecs = np.linalg.eig(delta)
        return np.real(vecs[:, np.argmin(np.abs(vals - 1.0))]), angle
    return w / n, angle


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _toward(
    last_v: float, dist: float, max_speed: float, max_accel: float | None, dt: float
) -> tuple[float, str | None]:
    """The speed toward a target ``dist`` away, for a step of ``dt``: at most
    ``max_speed``; with ``max_accel``, within ``max_accel * dt`` of the last speed and no
    faster than can still stop there, sqrt(2 a d). Returns it and what limited it (None,
    ``speed``, ``accel``); unlimited means the step reaches the target."""
    if dt <= 0:  # no time: no motion
        return 0.0, ("speed" if dist > 0 else None)
    want = dist / dt
    v, why = (max_speed, "speed") if want > max_speed else (want, None)
    if max_accel is not None:
        a = min(v, float(np.sqrt(2.0 * max_accel * dist)), last_v + max_accel * dt)
        a = max(a, last_v - max_accel * dt, 0.0)
        a = min(a, want)  # never past the target
        if a < v - 1e-12:
            v, why = a, "accel"
    return v, why


class WristFilter:
    """Workspace box, speed limits and hold for the wrist pose (see the module docstring).

    Args:
        limits: the limits. period_s: the nominal control period (steps never exceed one
            period's worth of motion).
    """

    def __init__(self, limits: WristLimits, period_s: float) -> None:
        if not (np.isfinite(period_s) and period_s > 0):
            raise ValueError("period_s must be finite and positive")
        self.limits = limits
        self.period_s = float(period_s)
        self.counts: Counter[str] = Counter()
        self.origin: np.ndarray | None = None
        #: the first pose's orientation (the tilt limit's reference)
        self.origin_rot: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self._speed = 0.0  # the last step's translation speed (m/s) and rotation speed
        self._rot_speed = 0.0

    def reset(self) -> None:
        """Forget the origin: the next valid pose is the new origin."""
        self.origin = None
        self.origin_rot = None
        self.last = None
        self._speed = self._rot_speed = 0.0

    def __call__(
        self, pose: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray | None, list[str]]:
        """The safe pose (4, 4) relative to the origin, or None before the first valid
        pose; and this call's events."""
        events: list[str] = []
        if hold is not None:
            events.append(hold)
            self._speed = self._rot_speed = 0.0  # held still
        else:
            try:
                p = np.asarray(pose, dtype=float)
            except (TypeError, ValueError):
                p = None
            if (
                p is None
                or p.shape != (4, 4)
                or not np.all(np.isfinite(p))
                or not is_rotation(p[:3, :3])
            ):
                events.append("invalid_wrist")
                self._speed = self._rot_speed = 0.0
            else:
                events += self._accept(p, dt_s)
        self.counts.update(e for e in events if e != hold)  # holds: the joint filter counts
        return (None if self.last is None else self.last.copy()), events

    def _accept(self, p: np.ndarray, dt_s: float | None) -> list[str]:
        events = []
        lim = self.limits
        if self.origin is None:
            self.origin = p[:3, 3].copy()
            self.origin_rot = p[:3, :3].copy()
        rel = np.eye(4)
        rel[:3, :3] = p[:3, :3]
        if lim.max_tilt_rad is not None:  # within max_tilt of the first orientation
            axis, angle = _axis_angle(rel[:3, :3] @ self.origin_rot.T)
            if angle > lim.max_tilt_rad:
                rel[:3, :3] = _rotation(axis, lim.max_tilt_rad) @ self.origin_rot
                events.append("wrist_tilt_limited")
        disp = p[:3, 3] - self.origin
        lo, hi = lim.box
        clipped = np.clip(disp, lo, hi)
        if np.any(clipped != disp):
            events.append("wrist_workspace")
        rel[:3, 3] = clipped
        if self.last is not None:
            dt = limits.step_dt(self.period_s, dt_s)
            step = rel[:3, 3] - self.last[:3, 3]
            n = float(np.linalg.norm(step))
            v, why = _toward(self._speed, n, lim.max_speed_m_s, lim.max_accel_m_s2, dt)
            if why is not None:
                rel[:3, 3] = self.last[:3, 3] + step * (v * dt / n)
                events.append(f"wrist_{'rate' if why == 'speed' else 'accel'}_limited")
            self._speed = v
            rel[:3, 3] = np.clip(rel[:3, 3], lo, hi)  # inside the box, whatever happened
            axis, angle = _axis_angle(self.last[:3, :3].T @ rel[:3, :3])
            w, why = _toward(
                self._rot_speed, angle, lim.max_rot_speed_rad_s, lim.max_rot_accel_rad_s2, dt
            )
            if why is not None:
                rel[:3, :3] = self.last[:3, :3] @ _rotation(axis, w * dt)
                events.append(f"wrist_{'rate' if why == 'speed' else 'accel'}_limited")
            self._rot_speed = w
        self.last = rel
        return events
