"""Arm backends: the arm carrying the hand (``--arm sim``; ``--arm none``: the hand's own
wrist mount); ``--arm franka:host=IP`` for a real Franka."""

from devices.arms import franka as _franka  # noqa: F401  (registers "franka")
from devices.arms import sim as _sim  # noqa: F401  (registers "sim")
from devices.arms.base import ARMS, NO_ARM, Arm, ArmLimitsConfig, ArmState

__all__ = ["ARMS", "NO_ARM", "Arm", "ArmLimitsConfig", "ArmState"]
