"""Training DexGen (DexterityGen); the networks, sampler and guided step it trains and the
controller runs live in :mod:`controllers.dexgen`.

- :mod:`training.dexgen.train`: ``dexteleop train dexgen`` (AdamW, cosine, EMA, resumable,
  DDP under torchrun).
- :mod:`training.dexgen.assist`: DexGen assisting a simulated operator in many worlds.
"""
