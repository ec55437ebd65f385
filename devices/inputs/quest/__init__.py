"""Meta Quest 3 controllers as an input device, read from the teleop app's logcat stream.

- :mod:`~devices.inputs.quest.protocol`: the app's logcat lines and their parser;
- :mod:`~devices.inputs.quest.frames`: world axes, the wrist clutch and the grasp (samples to
  :class:`~devices.tick.HumanFrame` s);
- :mod:`~devices.inputs.quest.adb`: the live transport (adb, logcat, reconnection);
- :mod:`~devices.inputs.quest.playback`: playing a captured logcat file;
- :mod:`~devices.inputs.quest.device`: the registered ``quest3`` device, its rejections.
"""

from devices.inputs.quest.adb import QuestError, parse_adb_devices, select_headset
from devices.inputs.quest.device import QuestConfig, QuestDevice
from devices.inputs.quest.frames import (
    QUEST_TO_WORLD,
    QuestFrameBuilder,
    WristClutch,
    grasp_keypoints,
    quest_to_world,
)
from devices.inputs.quest.protocol import (
    BOOL_BUTTONS,
    REJECT_REASONS,
    TAG,
    VALUE_BUTTONS,
    QuestSample,
    is_valid_pose,
    parse_logcat_line,
    parse_logcat_line_partial,
)

__all__ = [
    "BOOL_BUTTONS",
    "QUEST_TO_WORLD",
    "REJECT_REASONS",
    "TAG",
    "VALUE_BUTTONS",
    "QuestConfig",
    "QuestDevice",
    "QuestError",
    "QuestFrameBuilder",
    "QuestSample",
    "WristClutch",
    "grasp_keypoints",
    "is_valid_pose",
    "parse_adb_devices",
    "parse_logcat_line",
    "parse_logcat_line_partial",
    "quest_to_world",
    "select_headset",
]
