"""Retargeting the operator's hand to robot commands."""

from devices.retargeting.kinematics import HandKinematics, hand_kinematics
from devices.retargeting.mapping import HandMap, default_scale, finger_scales
from devices.retargeting.retargeter import RETARGET_MODES, RetargetConfig, Retargeter

__all__ = [
    "RETARGET_MODES",
    "HandKinematics",
    "HandMap",
    "RetargetConfig",
    "Retargeter",
    "default_scale",
    "finger_scales",
    "hand_kinematics",
]
