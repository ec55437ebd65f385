"""DexGen between a simulated operator and the hand, for many worlds at once.

:class:`Assistant` drives DexGen's guided step (:class:`controllers.dexgen.core.GuidedCore`,
the same one the ``dexgen`` controller runs with one hand) for every world of an
environment, for the assist benchmark (DexterityGen Sec. IV-B, Fig. 8): each control step it
takes the operator's joint targets for every world, turns them into a keypoint command
through forward kinematics (as the app's retargeting produces keypoint commands), and
returns DexGen's joint targets. A world's history restarts when its episode ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assets.hands import load_hand
from controllers.dexgen.core import GuidedCore
from controllers.dexgen.models import DexGenModel


class Assistant:
    """``targets_fn(env, operator_targets) -> targets`` for :func:`training.rl.evaluate`.

    Args:
        model: the DexGen model. hand: the hand's name (for forward kinematics).
        num_envs: worlds. guidance: alpha. steps: DDIM steps. sample_every: steps per sample.
        max_offset_m: clip of each keypoint's commanded offset (as the controller).
    """

    def __init__(
        self,
        model: DexGenModel,
        hand: str,
        num_envs: int,
        *,
        guidance: float,
        steps: int = 10,
        sample_every: int = 2,
        max_offset_m: float = 0.02,
        mode: str = "anygrasp",
        seed: int = 0,
    ) -> None:
        self.core = GuidedCore(model, num_envs, steps=steps, sample_every=sample_every,
                               max_offset_m=max_offset_m, seed=seed)  # fmt: skip
        self.hand = load_hand(hand)
        self.guidance, self.mode = guidance, mode
        self.interventions: list[float] = []
        self.dists: list[float] = []
        self.sample_s = 0.0
        self.samples = 0

    def __call__(self, env: Any, targets: np.ndarray) -> np.ndarray:
        kp = env.keypoints()
        last_done = getattr(env, "last_done", None)
        if last_done is not None and last_done.any():
            self.core.restart(np.flatnonzero(last_done))  # a new episode samples at once
        self.core.observe(kp, env.q, env.target)
        asked = self.hand.keypoints(np.clip(targets, env.lower, env.upper))
        res = self.core.step(kp, asked, env.target, guidance=self.guidance, mode=self.mode)
        if res.sampled:
            self.sample_s += res.sample_ms / 1e3
            self.samples += 1
            self.dists.append(res.guidance_dist_m)
        steer = self.hand.keypoints(np.clip(res.targets, env.lower, env.upper))
        self.interventions.append(float(np.linalg.norm(steer - asked, axis=2).mean()))
        return res.targets

    def summary(self) -> dict[str, float]:
        return {
            "intervention_mm_mean": 1e3 * float(np.mean(self.interventions or [np.nan])),
            "guidance_dist_mm_mean": 1e3 * float(np.mean(self.dists or [np.nan])),
            "sample_ms_mean": 1e3 * self.sample_s / max(self.samples, 1),
        }
