"""Hand backends: the simulated hand and real LEAP (Dynamixel) / Allegro (CAN) hands."""

from devices.robots import allegro_can as _allegro_can  # noqa: F401  (registers "allegro_can")
from devices.robots import dynamixel as _dynamixel  # noqa: F401  (registers "dynamixel")
from devices.robots import sim as _sim  # noqa: F401  (registers "sim")
from devices.robots.base import ROBOTS, Robot
from devices.robots.safety import SafetyFilter
from devices.robots.scene import WRIST_MODES, WRIST_ORIENTATIONS

__all__ = ["ROBOTS", "WRIST_MODES", "WRIST_ORIENTATIONS", "Robot", "SafetyFilter"]
