"""MoDex (neural internal models + bidirectional CEM planning): everything the controller
needs at run time, the batched planning core the reach benchmark shares, and the names
the registry lists without importing torch.

- :mod:`controllers.modex.hand`: the hand as MoDex's models see it (fingertip sensors,
  actuator ranges, the rate limit per control period).
- :mod:`controllers.modex.models`: forward / inverse models, normalisers, checkpoint files.
- :mod:`controllers.modex.planners`: random shooting, gradient descent, CEM and MoDex's
  bidirectional CEM.
- :mod:`controllers.modex.core`: loaded models, the rate-limited predictions and the offset
  observer, shared by the controller and the reach task.
- :mod:`controllers.modex.gestures`: gesture cost functions and the custom-cost checker.
- :mod:`controllers.modex.controller`: the ``modex`` controller.

Trainers, exploration data and the reach benchmark live in :mod:`training.modex`.
"""

#: The built-in gestures (cost functions in ``controllers.modex.gestures``); here, without
#: importing torch, so that the controller registry can list them cheaply.
GESTURES = ("thumbs_up", "ok", "scissors", "rock_and_roll", "call", "finger_gun", "point")

from assets.hands import HAND_SPECS  # noqa: E402
from controllers.modex.hand import EXTRA_HANDS  # noqa: E402

#: Hands MoDex explores (the app's and the paper's extra ones) and the two settings of the
#: paper (Sec. 2.1, Table 2).
MODEX_HANDS = (*HAND_SPECS, *EXTRA_HANDS)
SETTINGS = ("quasi-static", "sequential")

from controllers.modex.controller import (  # noqa: E402  (registers "modex")
    TIP_INDEX,
    ModexController,
    ModexControllerConfig,
)

__all__ = ["TIP_INDEX", "ModexController", "ModexControllerConfig"]
