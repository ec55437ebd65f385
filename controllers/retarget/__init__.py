"""The baseline controller: the retargeted joint targets, passed through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.base import CONTROLLERS, Controller, ControllerConfig, live
from devices.tick import Command, HandState


@dataclass
class RetargetControllerConfig(ControllerConfig):
    """What retargeting says is what the hand gets, optionally smoothed.

    Attributes:
        smoothing: exponential smoothing of the joint targets, 0 (pass through) to 0.95
            (slow, steady); each tick moves ``1 - smoothing`` of the way to the new target.
    """

    smoothing: float = live(
        0.0,
        "float",
        label="smoothing",
        help="0 passes retargeting through; higher values steady a jittery tracker",
        low=0.0,
        high=0.95,
        step=0.05,
        plot=True,
    )


@CONTROLLERS.register("retarget")
class RetargetController(Controller):
    """Passes ``command.joints`` through; holds the last target when there are none.

    Every learned controller is compared against this one.
    """

    Config = RetargetControllerConfig
    command_fields = frozenset({"joints"})

    def __init__(self, config: RetargetControllerConfig) -> None:
        super().__init__(config)
        self.config: RetargetControllerConfig = config
        self._last: np.ndarray | None = None

    def reset(self, state: HandState) -> None:
        self._last = state.target.copy()

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        if command.joints is None:
            return state.target.copy(), {"holding": 1.0}
        target = np.asarray(command.joints, dtype=float)
        a = self.config.smoothing
        if a > 0 and self._last is not None:
            target = a * self._last + (1.0 - a) * target
        self._last = target.copy()
        return target, {"holding": 0.0}
