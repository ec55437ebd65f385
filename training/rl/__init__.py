"""PPO on the parallel simulated environments (:mod:`training.envs`)."""

#: The run sizes of ``train rl`` (see :func:`training.rl.ppo.scale_preset`).
SCALES = ("smoke", "demo", "full")
