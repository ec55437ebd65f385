"""DexNDM (in-hand rotation about a commanded axis, adapted to the hand it runs on).

- :mod:`controllers.dexndm.generalist`: the rotation generalist (distilled from the RL
  specialists by ``training.rl.distill``).
- :mod:`controllers.dexndm.ndm`: the joint-wise and whole-hand neural dynamics models.
- :mod:`controllers.dexndm.residual`: the residual policy trained through a dynamics model.
- :mod:`controllers.dexndm.controller`: the ``dexndm`` controller.

Their data and trainers are in :mod:`training.dexndm`.
"""

from controllers.dexndm.controller import (  # (registers "dexndm")
    DexNDMController,
    DexNDMControllerConfig,
    generalist_path,
    residual_path,
)

__all__ = ["DexNDMController", "DexNDMControllerConfig", "generalist_path", "residual_path"]
