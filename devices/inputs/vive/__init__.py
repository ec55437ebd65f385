"""HTC Vive tracker on the operator's wrist (through OpenVR / SteamVR) as an input device.

The wrist pose comes from a Vive tracker strapped to the wrist; the finger keypoints come from
a glove receiver (the ``glove`` device) when one is configured, else they are the human hand
model's open pose.

- :mod:`~devices.inputs.vive.steamvr`: OpenVR access, world axes, the mount, the trackers;
- :mod:`~devices.inputs.vive.device`: the registered ``vive`` device and its tracking losses.
"""

from devices.inputs.vive.device import ViveConfig, ViveDevice
from devices.inputs.vive.steamvr import (
    OPENVR_TO_WORLD,
    OpenVRLike,
    ViveError,
    VRSystemLike,
    enumerate_trackers,
    init_openvr,
    list_trackers,
    mount_from_reference,
    mount_matrix,
    openvr_to_world,
    pose_to_matrix,
    select_tracker,
)

__all__ = [
    "OPENVR_TO_WORLD",
    "OpenVRLike",
    "VRSystemLike",
    "ViveConfig",
    "ViveDevice",
    "ViveError",
    "enumerate_trackers",
    "init_openvr",
    "list_trackers",
    "mount_from_reference",
    "mount_matrix",
    "openvr_to_world",
    "pose_to_matrix",
    "select_tracker",
]
