"""The operator's :class:`~devices.tick.Command`, built in one place each tick.

A new :class:`~devices.tick.HumanFrame` becomes a command in the robot's palm frame:

- ``keypoints``: the operator's keypoints mapped onto the robot's (always; cheap);
- ``joints``: retargeting's joint solve, only when the controller reads them (the solve is
  the costliest part of a tick before the controller: ``Controller.command_fields``);
- ``axis``: the rotation axis from the :class:`AxisSelector` (buttons or the controller's
  orientation), always, so recordings hold it every tick;
- ``gesture``: None from a live device (the gesture is a controller setting today;
  recordings replay the gesture they hold).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Set

import numpy as np

from assets.hands import Hand
from devices.retargeting.axis import AxisConfig, AxisSelector
from devices.retargeting.retargeter import RetargetConfig, Retargeter
from devices.tick import Command, HumanFrame

#: The fields of a Command a controller may read.
COMMAND_FIELDS = frozenset({"keypoints", "joints", "axis", "gesture"})


class CommandBuilder:
    """Retargeting + axis selection: ``builder(frame, fields=...) -> Command``.

    Args:
        hand: the robot hand. retarget: retargeting settings. axis: axis selection settings.
    """

    def __init__(
        self, hand: Hand, retarget: RetargetConfig | None = None, axis: AxisConfig | None = None
    ) -> None:
        self.retargeter = Retargeter(hand, retarget or RetargetConfig())
        self.axis_selector = AxisSelector(axis)

    def start(self, q: np.ndarray) -> None:
        """A new session: the solver warm-starts from ``q``, the axis rest pose is forgotten."""
        self.retargeter.reset(q)
        self.axis_selector.reset()

    def restart_solve(self, q: np.ndarray) -> None:
        """The joint solve restarts from the measured ``q`` (after a stop or a switch to a
        controller that reads joints, when the last solves were skipped or are stale)."""
        self.retargeter.reset(q)

    def __call__(self, frame: HumanFrame, *, fields: Set[str] = COMMAND_FIELDS) -> Command:
        """The command for a validated ``frame``; ``fields``: what the controller reads."""
        command = self.retargeter(frame, solve="joints" in fields)
        return dataclasses.replace(command, axis=self.axis_selector(frame).axis)
