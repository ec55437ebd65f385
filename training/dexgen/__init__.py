"""DexGen (DexterityGen): a diffusion prior over finger keypoint motions, guided toward the
operator's command, and an inverse dynamics model that turns motions into joint targets.

- :mod:`training.dexgen.models`: the networks, normalisers and checkpoint files.
- :mod:`training.dexgen.sampler`: guided DDIM sampling (the choice of Sigma is documented
  there) and the proprioception history.
- :mod:`training.dexgen.train`: ``dexteleop train dexgen`` (AdamW, cosine, EMA, resumable,
  DDP under torchrun).
"""
