"""DexGen's guided step for B hands at once: the one implementation behind the ``dexgen``
controller (B = 1) and the assist benchmark (B simulated worlds).

Each step it appends the hands' proprioception to their histories; every ``sample_every``
steps (or when the plan was dropped: a restart, a new setting, a hold) it samples a motion
for the next T steps from the diffusion prior, guided toward the command (offsets of the
keypoints from where they are now, each clipped to ``max_offset_m``); between samples the
rest of the planned motion is re-anchored on the keypoints as measured. The inverse dynamics
model turns the motion into joint targets (DexterityGen Sec. III-D).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from controllers.dexgen.models import DexGenModel
from controllers.dexgen.sampler import GuidedSampler, History, remaining_motion


@dataclass(frozen=True)
class GuidedTargets:
    """One step's result.

    Attributes:
        targets: (B, n) joint targets, rad (not clipped; the safety filter decides).
        sampled: whether this step drew a new sample. sample_ms: how long it took (or nan).
        guidance_dist_m: mean distance between the last sampled motion and its command,
            per keypoint and step (m).
    """

    targets: np.ndarray
    sampled: bool
    sample_ms: float
    guidance_dist_m: float


def clip_offsets(offset: np.ndarray, max_offset_m: float) -> np.ndarray:
    """Each keypoint's offset (..., K, 3) shortened to at most ``max_offset_m`` (a far command
    asks for a direction, not a teleport: the prior's motions are millimetres per step)."""
    norm = np.linalg.norm(offset, axis=-1, keepdims=True)
    return offset * np.minimum(1.0, max_offset_m / np.maximum(norm, 1e-12))


class GuidedCore:
    """The guided DexGen step of ``batch`` hands.

    Args:
        model: the DexGen model (eval mode). batch: hands stepped together.
        steps: default DDIM steps. sample_every: steps per sample (2 at 20 Hz: the paper's
            10 Hz). max_offset_m: the clip of each keypoint's commanded offset.
        dtype: the networks' precision. seed: the sampler's noise seed.
    """

    def __init__(
        self,
        model: DexGenModel,
        batch: int,
        *,
        steps: int = 10,
        sample_every: int = 2,
        max_offset_m: float = 0.02,
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
    ) -> None:
        if sample_every < 1:
            raise ValueError(f"sample_every must be >= 1, got {sample_every}")
        if not max_offset_m > 0:
            raise ValueError(f"max_offset_m must be > 0, got {max_offset_m}")
        c = model.config
        self.model = model
        self.sampler = GuidedSampler(model, steps=steps, dtype=dtype)
        self.history = History(batch, c.history, c.n_joints)
        self.sample_every = sample_every
        self.max_offset_m = max_offset_m
        self.generator = torch.Generator().manual_seed(seed)
        self._plan: np.ndarray | None = None  # (B, T, K, 3) planned offsets from the anchor
        self._anchor: np.ndarray | None = None  # (B, K, 3) keypoints when it was sampled
        self._since = 0
        self.guidance_dist_m = math.nan

    def warm_up(self, steps: int | None = None) -> None:
        """One unguided sample from a zero state: the first sample imports diffusers and
        builds the schedule (~2 s), which must not land on a control tick."""
        self.sampler.sample(np.zeros((1, self.model.config.state_dim)), steps=steps,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def restart(self, ids: np.ndarray | list[int] | None = None) -> None:
        """Hands ``ids`` (default all) start a new history; the next step samples afresh."""
        self.history.restart(np.arange(len(self.history.q)) if ids is None else ids)
        self._plan = None

    def drop_plan(self) -> None:
        """The next step samples afresh (a new setting, a hold, a new command source)."""
        self._plan = None

    def observe(self, keypoints: np.ndarray, q: np.ndarray, target: np.ndarray) -> None:
        """Append this step's proprioception: (B, K, 3) keypoints, (B, n) joints, (B, n) the
        target in force."""
        self.history.push(keypoints, q, target)

    def step(
        self,
        keypoints: np.ndarray,
        goal: np.ndarray,
        target: np.ndarray,
        *,
        guidance: float,
        mode: str,
        steps: int | None = None,
    ) -> GuidedTargets:
        """Joint targets toward ``goal`` (B, K, 3) keypoints, from ``keypoints`` (B, K, 3)
        measured now and the ``target`` (B, n) in force; call :meth:`observe` first."""
        offset = clip_offsets(np.asarray(goal, dtype=float) - keypoints, self.max_offset_m)
        features = self.history.features()
        sampled, ms = False, math.nan
        if self._plan is None or self._since >= self.sample_every:
            t0 = time.perf_counter()
            smp = self.sampler.sample(
                features,
                mode=mode,
                command=offset,
                guidance=guidance,
                steps=steps,
                generator=self.generator,
            )
            ms = (time.perf_counter() - t0) * 1e3
            self._plan = smp.motion.numpy().astype(float)
            self._anchor = np.asarray(keypoints, dtype=float).copy()
            self._since = 0
            sampled = True
            dist = np.linalg.norm(self._plan - offset[:, None], axis=-1).mean()
            self.guidance_dist_m = float(dist)
        assert self._anchor is not None
        motion = remaining_motion(self._plan, self._anchor, self._since, keypoints)
        out = self.sampler.targets(features, motion, target).numpy().astype(float)
        self._since += 1
        return GuidedTargets(out, sampled, ms, self.guidance_dist_m)
