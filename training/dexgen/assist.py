"""DexGen between a simulated operator and the hand, for many worlds at once.

:class:`Assistant` is the batched form of the ``dexgen`` controller, used by the assist
benchmark (DexterityGen Sec. IV-B, Fig. 8): each control step it takes the operator's joint
targets for every world, turns them into a keypoint command through forward kinematics (as
the app's retargeting produces keypoint commands), and returns DexGen's joint targets. It
keeps each world's proprioception history (restarted when the world's episode ends), samples
every ``sample_every`` steps and re-anchors the planned motion in between, exactly as the
controller does.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from training.dexgen.models import DexGenModel
from training.dexgen.sampler import GuidedSampler, History, remaining_motion


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
        from devices.retargeting.kinematics import hand_kinematics

        self.sampler = GuidedSampler(model, steps=steps)
        self.kin = hand_kinematics(hand)
        c = model.config
        self.history = History(num_envs, c.history, c.n_joints)
        self.guidance, self.sample_every = guidance, sample_every
        self.max_offset_m, self.mode = max_offset_m, mode
        self.gen = torch.Generator().manual_seed(seed)
        self.plan = np.zeros((num_envs, c.horizon, 8, 3))
        self.anchor = np.zeros((num_envs, 8, 3))
        self.since = np.full(num_envs, sample_every)
        self.interventions: list[float] = []
        self.dists: list[float] = []
        self.sample_s = 0.0
        self.samples = 0

    def fk(self, q: np.ndarray) -> np.ndarray:
        return np.stack([self.kin.keypoints(x) for x in q])

    def __call__(self, env: Any, targets: np.ndarray) -> np.ndarray:
        kp = env.keypoints()
        last_done = getattr(env, "last_done", None)
        if last_done is not None and last_done.any():
            ids = np.flatnonzero(last_done)
            self.history.restart(ids)
            self.since[ids] = self.sample_every  # a new episode samples at once
        self.history.push(kp, env.q, env.target)
        asked = self.fk(np.clip(targets, env.lower, env.upper))
        offset = asked - kp
        norm = np.linalg.norm(offset, axis=2, keepdims=True)
        offset = offset * np.minimum(1.0, self.max_offset_m / np.maximum(norm, 1e-12))
        features = self.history.features()
        if (self.since >= self.sample_every).any():
            t0 = time.perf_counter()
            smp = self.sampler.sample(
                features,
                mode=self.mode,
                command=offset,
                guidance=self.guidance,
                generator=self.gen,
            )
            self.sample_s += time.perf_counter() - t0
            self.samples += 1
            self.plan = smp.motion.numpy().astype(float)
            self.anchor = kp.copy()
            self.since[:] = 0
            self.dists.append(float(np.linalg.norm(self.plan - offset[:, None], axis=-1).mean()))
        motion = remaining_motion(self.plan, self.anchor, int(self.since[0]), kp)
        out = self.sampler.targets(features, motion, env.target).numpy().astype(float)
        self.since += 1
        steer = self.fk(np.clip(out, env.lower, env.upper))
        self.interventions.append(float(np.linalg.norm(steer - asked, axis=2).mean()))
        return out

    def summary(self) -> dict[str, float]:
        return {
            "intervention_mm_mean": 1e3 * float(np.mean(self.interventions or [np.nan])),
            "guidance_dist_mm_mean": 1e3 * float(np.mean(self.dists or [np.nan])),
            "sample_ms_mean": 1e3 * self.sample_s / max(self.samples, 1),
        }
