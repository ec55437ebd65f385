"""Rotation-axis selection for in-hand rotation controllers (DexNDM's teleoperation modes).

Two modes, as DexNDM ran them with a Quest 3 (its Fig. 40):

- ``buttons``: held buttons select fixed axes in the palm frame; by default X -> +z,
  Y -> -z, LG -> -y (the three axes DexNDM found enough for lightbulb assembly).
- ``orientation``: the operator rotates the left controller away from a rest pose, latched
  at the first tracked frame and again whenever the re-centre button is pressed; the axis
  is the direction of that rotation (its rotation vector), expressed in the rest pose's
  controller frame, with the component about the controller's short axis down-weighted
  (a wrist twist about the grip's thin axis is the least deliberate motion). Rotations
  smaller than a dead band select no axis. The controller frame is taken as aligned with
  the palm frame at rest ("hold the controller like the hand"), through a fixed
  permutation ``controller_to_palm``.

The operator may also pick one of the six signed palm axes in the app
(:meth:`AxisSelector.choose`); until they choose ``device`` again that axis overrides the
device's. The output is an :class:`AxisCommand`: a unit vector in the palm frame, or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devices.tick import PALM_AXES, HumanFrame

AXIS_MODES = ("off", "buttons", "orientation")

#: What the app's axis buttons offer: a palm axis, or the input device's own selection.
AXIS_CHOICES: tuple[str, ...] = (*PALM_AXES, "device")


@dataclass(frozen=True)
class AxisCommand:
    """A rotation axis for the hand: unit (3,) in the palm frame, or None (no rotation)."""

    axis: np.ndarray | None
    source: str = ""


def _default_buttons() -> dict[str, tuple[float, float, float]]:
    return {"X": (0.0, 0.0, 1.0), "Y": (0.0, 0.0, -1.0), "LG": (0.0, -1.0, 0.0)}


@dataclass
class AxisConfig:
    """Settings of the axis selector.

    Attributes:
        mode: ``off``, ``buttons`` or ``orientation``.
        buttons: button name -> axis in the palm frame (the first held one in this order wins).
        controller: which ``HumanFrame.controllers`` entry drives the orientation mode.
        recentre: button that re-latches the rest pose in orientation mode.
        short_axis: index (0, 1, 2) of the controller's short axis in its own frame. With
            the Quest device's axes (x along the pointing direction, y left, z up) the
            grip's thin axis is y (1).
        short_axis_weight: factor on the rotation component about the short axis.
        deadband_deg: rotations smaller than this select no axis.
        controller_to_palm: (3, 3) row-major, controller-frame axes -> palm-frame axes.
    """

    mode: str = "buttons"
    buttons: dict[str, tuple[float, float, float]] = field(default_factory=_default_buttons)
    controller: str = "left"
    recentre: str = "LJ"
    short_axis: int = 1
    short_axis_weight: float = 0.3
    deadband_deg: float = 15.0
    controller_to_palm: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """The rotation vector (axis * angle, rad) of a rotation matrix (3, 3)."""
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # half turn: the axis is the dominant column of (R + I) / 2
        m = (r + np.eye(3)) / 2.0
        axis = m[:, int(np.argmax(np.diag(m)))]
        return angle * axis / np.linalg.norm(axis)
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return angle * w / (2.0 * np.sin(angle))


class AxisSelector:
    """Turns HumanFrames (buttons, controller poses) into AxisCommands."""

    def __init__(self, config: AxisConfig | None = None) -> None:
        self.config = config or AxisConfig()
        if self.config.mode not in AXIS_MODES:
            raise ValueError(f"unknown axis mode {self.config.mode!r}; known: {AXIS_MODES}")
        self._buttons = {}
        for name, v in self.config.buttons.items():
            v = np.asarray(v, dtype=float)
            if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-9:
                raise ValueError(f"axis for button {name!r} must be a non-zero 3-vector")
            self._buttons[name] = v / np.linalg.norm(v)
        if self.config.short_axis not in (0, 1, 2):
            raise ValueError(f"short_axis must be 0, 1 or 2, got {self.config.short_axis}")
        c2p = np.asarray(self.config.controller_to_palm, dtype=float).reshape(3, 3)
        if not np.allclose(c2p @ c2p.T, np.eye(3), atol=1e-6):
            raise ValueError("controller_to_palm must be a rotation/permutation matrix")
        self._c2p = c2p
        self._rest: np.ndarray | None = None
        self._recentre_was_down = False
        self.chosen = "device"

    def reset(self) -> None:
        self._rest = None

    def choose(self, choice: str) -> None:
        """The operator's pick in the app: a palm axis (``+x`` ... ``-z``) that overrides the
        device, or ``device`` to follow the device's buttons / orientation again."""
        if choice not in AXIS_CHOICES:
            raise ValueError(f"rotation axis must be one of {list(AXIS_CHOICES)}, got {choice!r}")
        self.chosen = choice

    def __call__(self, frame: HumanFrame) -> AxisCommand:
        if self.chosen in PALM_AXES:
            return AxisCommand(np.array(PALM_AXES[self.chosen]), f"app {self.chosen}")
        mode = self.config.mode
        if mode == "buttons":
            for name, axis in self._buttons.items():
                if frame.buttons.get(name, 0.0) > 0.5:
                    return AxisCommand(axis.copy(), f"button {name}")
            return AxisCommand(None, "no button")
        if mode == "orientation":
            return self._from_orientation(frame)
        return AxisCommand(None, "off")

    def _from_orientation(self, frame: HumanFrame) -> AxisCommand:
        pose = frame.controllers.get(self.config.controller)
        if pose is None:
            return AxisCommand(None, "controller not tracked")
        r = np.asarray(pose, dtype=float)[:3, :3]
        down = frame.buttons.get(self.config.recentre, 0.0) > 0.5
        if self._rest is None or (down and not self._recentre_was_down):
            self._rest = r.copy()
        self._recentre_was_down = down
        rv = rotation_vector(self._rest.T @ r)  # in the rest controller frame
        if np.degrees(np.linalg.norm(rv)) < self.config.deadband_deg:
            return AxisCommand(None, "inside dead band")
        rv[self.config.short_axis] *= self.config.short_axis_weight
        n = np.linalg.norm(rv)
        if n < 1e-9:
            return AxisCommand(None, "only about the short axis")
        return AxisCommand(self._c2p @ (rv / n), "orientation")
