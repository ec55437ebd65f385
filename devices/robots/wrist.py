"""The wrist's own safety filter: every wrist (mount or arm) pose passes it before a backend.

The operator's wrist pose arrives in the input device's world frame. :class:`WristFilter`
latches the first valid pose as the origin and turns each later one into a pose relative to
it (translation = displacement from the origin, rotation = the wrist's absolute orientation,
which shares its axes with the palm frame), then:

- clips the displacement to the workspace box (``±workspace_m`` per axis, m);
- limits the translation speed (``max_speed_m_s``) and the rotation speed
  (``max_rot_speed_rad_s``) against the last safe pose, over ``min(dt, period)``;
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
    """

    workspace_m: float = 0.5
    max_speed_m_s: float = 2.0
    max_rot_speed_rad_s: float = 4.0 * np.pi

    def __post_init__(self) -> None:
        for name in ("workspace_m", "max_speed_m_s", "max_rot_speed_rad_s"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"wrist limit {name} must be finite and positive, got {v}")


def _rot_limit(last: np.ndarray, new: np.ndarray, max_angle: float) -> tuple[np.ndarray, bool]:
    """``new`` (3, 3), or the rotation ``max_angle`` from ``last`` toward it."""
    delta = last.T @ new
    angle = float(np.arccos(np.clip((np.trace(delta) - 1.0) / 2.0, -1.0, 1.0)))
    if angle <= max_angle:
        return new, False
    w = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0], delta[1, 0] - delta[0, 1]])
    n = np.linalg.norm(w)
    if n < 1e-9:  # a half turn: any axis orthogonal to the rotation's; use the eigenvector
        vals, vecs = np.linalg.eig(delta)
        axis = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    else:
        axis = w / n
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    step = np.eye(3) + np.sin(max_angle) * k + (1 - np.cos(max_angle)) * (k @ k)
    return last @ step, True


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
        self.last: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the origin: the next valid pose is the new origin."""
        self.origin = None
        self.last = None

    def __call__(
        self, pose: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray | None, list[str]]:
        """The safe pose (4, 4) relative to the origin, or None before the first valid
        pose; and this call's events."""
        events: list[str] = []
        if hold is not None:
            events.append(hold)
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
            else:
                events += self._accept(p, dt_s)
        self.counts.update(e for e in events if e != hold)  # holds: the joint filter counts
        return (None if self.last is None else self.last.copy()), events

    def _accept(self, p: np.ndarray, dt_s: float | None) -> list[str]:
        events = []
        if self.origin is None:
            self.origin = p[:3, 3].copy()
        rel = np.eye(4)
        rel[:3, :3] = p[:3, :3]
        disp = p[:3, 3] - self.origin
        box = self.limits.workspace_m
        clipped = np.clip(disp, -box, box)
        if np.any(clipped != disp):
            events.append("wrist_workspace")
        rel[:3, 3] = clipped
        if self.last is not None:
            step = rel[:3, 3] - self.last[:3, 3]
            max_step = limits.max_step(self.limits.max_speed_m_s, self.period_s, dt_s)
            max_angle = limits.max_step(self.limits.max_rot_speed_rad_s, self.period_s, dt_s)
            n = float(np.linalg.norm(step))
            if n > max_step:
                rel[:3, 3] = self.last[:3, 3] + step * (max_step / n)
                events.append("wrist_rate_limited")
            rel[:3, :3], limited = _rot_limit(self.last[:3, :3], rel[:3, :3], max_angle)
            if limited:
                events.append("wrist_rate_limited")
        self.last = rel
        return events
