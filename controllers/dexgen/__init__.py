"""DexGen (DexterityGen): a diffusion prior over finger keypoint motions, guided toward the
operator's command, and an inverse dynamics model that turns motions into joint targets.
Everything the controller needs at run time:

- :mod:`controllers.dexgen.models`: the networks, normalisers and checkpoint files.
- :mod:`controllers.dexgen.sampler`: guided DDIM sampling (the choice of Sigma is documented
  there) and the proprioception history.
- :mod:`controllers.dexgen.core`: the guided step for B hands at once (history, sampling
  every few steps, re-anchoring in between), the one implementation that the controller
  (B = 1) and the assist benchmark (B worlds) both call.
- :mod:`controllers.dexgen.controller`: the ``dexgen`` controller.

Training (``dexteleop train dexgen``) lives in :mod:`training.dexgen`.
"""

from controllers.dexgen.controller import (  # registers "dexgen"
    MODES,
    DexGenController,
    DexGenControllerConfig,
)

__all__ = ["MODES", "DexGenController", "DexGenControllerConfig"]
