"""Retargeting the operator's hand to robot commands."""

from devices.retargeting.command import Command
from devices.retargeting.kinematics import HandKinematics, hand_kinematics
from devices.retargeting.retargeter import RETARGET_MODES, RetargetConfig, Retargeter, default_scale

__all__ = [
    "RETARGET_MODES",
    "Command",
    "HandKinematics",
    "RetargetConfig",
    "Retargeter",
    "default_scale",
    "hand_kinematics",
]
