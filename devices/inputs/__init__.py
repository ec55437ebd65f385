"""Input devices publishing HumanFrames, the replay file format and the clip generator."""

from devices.inputs import glove as _glove  # noqa: F401  (registers "glove")
from devices.inputs import quest as _quest  # noqa: F401  (registers "quest3")
from devices.inputs import replay as _replay  # noqa: F401  (registers "replay")
from devices.inputs import vive as _vive  # noqa: F401  (registers "vive")
from devices.inputs import webcam as _webcam  # noqa: F401  (registers "webcam")
from devices.inputs.base import DEVICES, Device, DeviceStatus
from devices.inputs.clips import Clip, ClipFormatError, load_clip, save_clip

__all__ = [
    "DEVICES",
    "Clip",
    "ClipFormatError",
    "Device",
    "DeviceStatus",
    "load_clip",
    "save_clip",
]
