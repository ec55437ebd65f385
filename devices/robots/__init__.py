"""Hand backends: the simulated hand and (later) real LEAP / Allegro hands."""

from devices.robots import sim as _sim  # noqa: F401  (registers "sim")
from devices.robots.base import ROBOTS, Robot
from devices.robots.safety import SafetyFilter
from devices.robots.scene import WRIST_MODES, WRIST_ORIENTATIONS

__all__ = ["ROBOTS", "WRIST_MODES", "WRIST_ORIENTATIONS", "Robot", "SafetyFilter"]
