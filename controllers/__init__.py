"""Controllers: the retarget baseline and the learned low-level controllers."""

from controllers import dexgen as _dexgen  # noqa: F401  (registers "dexgen")
from controllers import dexndm as _dexndm  # noqa: F401  (registers "dexndm")
from controllers import modex as _modex  # noqa: F401  (registers "modex")
from controllers import retarget as _retarget  # noqa: F401  (registers "retarget")
from controllers.base import (
    CONTROLLERS,
    Controller,
    ControllerConfig,
    ControllerUnavailable,
    LiveSetting,
    live,
)

__all__ = [
    "CONTROLLERS",
    "Controller",
    "ControllerConfig",
    "ControllerUnavailable",
    "LiveSetting",
    "live",
]
