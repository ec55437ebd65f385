"""The baseline controller: the retargeted joint targets, passed through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.base import CONTROLLERS, Controller, ControllerConfig
from devices.retargeting.command import Command
from devices.robots.state import HandState


@dataclass
class RetargetControllerConfig(ControllerConfig):
    """No settings beyond the hand: what retargeting says is what the hand gets."""


@CONTROLLERS.register("retarget")
class RetargetController(Controller):
    """Passes ``command.joints`` through; holds the last target when there are none.

    Every learned controller is compared against this one.
    """

    Config = RetargetControllerConfig

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        if command.joints is None:
            return state.target.copy(), {"holding": 1.0}
        return np.asarray(command.joints, dtype=float), {"holding": 0.0}
