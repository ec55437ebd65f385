"""The DexGen controller: the operator's keypoint command, projected onto safe hand motion.

Every ``sample_every`` control ticks (2 at 20 Hz: the paper's 10 Hz) it samples a keypoint
motion for the next T steps from the diffusion prior, guided toward the operator's command
(the retargeted keypoints, as offsets from where the hand's keypoints are now), and the
inverse dynamics model turns it into a joint target. On the ticks between samples the rest
of the planned motion is re-anchored on the keypoints as measured and turned into a target
again, so the hand gets a fresh target at the full loop rate from the latest state without
a second sample (DexterityGen Sec. III-D; guidance in :mod:`training.dexgen.sampler`).

Live settings: the guidance strength alpha (0 = the prior alone, 1 = follow the command as
far as the prior lets it), the DDIM steps, and the task mode. The target is not trusted:
the safety filter clips and rate-limits it like every controller's.

``info``: ``guidance_dist_mm`` (mean distance between the sampled future keypoints and the
command, per keypoint and step), ``intervention_mm`` (mean distance between the keypoints of
DexGen's joint target and of the operator's own joint target, or the commanded keypoints
when retargeting gave no joints: how far DexGen steers away from what was asked),
``sample_ms``, ``guidance``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controllers.base import CONTROLLERS, Controller, ControllerConfig, ControllerUnavailable, live
from devices.retargeting.command import Command
from devices.robots.state import HandState

#: The task modes (``training.dexgen.models.MODES``; no torch at import).
MODE_CHOICES = ("anygrasp", "free_finger")


def _checkpoint(hand: str, path: str | None) -> Path:
    from training.dexgen.cli import shipped_checkpoint

    return Path(path) if path else shipped_checkpoint(hand)


@dataclass
class DexGenControllerConfig(ControllerConfig):
    """DexGen (see the module docstring).

    Attributes:
        checkpoint: the model file (default: the shipped one of the hand).
        guidance: alpha, the guidance strength in [0, 1].
        ddim_steps: denoising steps per sample (the paper: 8-12).
        mode: the task mode given to the prior.
        sample_every: control ticks per sample (2 at 20 Hz = 10 Hz sampling; 1 samples
            every tick).
        max_offset_m: the command's offset of each keypoint is clipped to this length
            before guidance (a far command asks for a direction, not a teleport; the prior's
            motions are millimetres per step).
        seed: the sampler's noise seed.
        precision: the networks' number format, ``float32`` or ``bfloat16`` (half the
            weights' memory traffic: what brings a paper-size model under the paper's
            27 ms per sample on a 2-core CPU with bfloat16 instructions; see BENCHMARKS.md).
    """

    checkpoint: str | None = None
    guidance: float = live(
        0.5,
        "float",
        label="guidance α",
        help="0: DexGen's own safe motion; 1: follow the command as far as it stays safe",
        low=0.0,
        high=1.0,
        step=0.05,
        plot=True,
    )
    ddim_steps: int = live(10, "int", label="DDIM steps", low=2, high=20, step=1)
    mode: str = live(
        "anygrasp",
        "choice",
        label="mode",
        help="the task the prior's motion serves",
        choices=MODE_CHOICES,
    )
    sample_every: int = 2
    max_offset_m: float = 0.02
    seed: int = 0
    precision: str = "float32"


@CONTROLLERS.register("dexgen")
class DexGenController(Controller):
    """Guided diffusion over keypoint motions + inverse dynamics (DexterityGen)."""

    Config = DexGenControllerConfig

    @classmethod
    def availability(cls, hand: str) -> str | None:
        path = _checkpoint(hand, None)
        if not path.is_file():
            return (
                f"no DexGen model for {hand} ({path.name}); train one with "
                f"'dexteleop train dexgen --hand {hand} --data PATH --ship'"
            )
        return None

    def __init__(self, config: DexGenControllerConfig) -> None:
        super().__init__(config)
        self.config: DexGenControllerConfig = config
        import torch

        from devices.retargeting.kinematics import hand_kinematics
        from training.dexgen.models import CheckpointError, load_model
        from training.dexgen.sampler import GuidedSampler, History

        if config.sample_every < 1:
            raise ValueError(f"sample_every must be >= 1, got {config.sample_every}")
        if not config.max_offset_m > 0:
            raise ValueError(f"max_offset_m must be > 0, got {config.max_offset_m}")
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
        if config.precision not in dtypes:
            raise ValueError(f"precision must be one of {list(dtypes)}, got {config.precision!r}")
        path = _checkpoint(config.hand, config.checkpoint)
        try:
            model, meta = load_model(path, hand=config.hand)
        except CheckpointError as e:
            raise ControllerUnavailable(
                f"DexGen: {e}; train with 'dexteleop train dexgen --hand {config.hand} "
                "--data PATH --ship'"
            ) from None
        if model.config.n_joints != self.hand.n_joints:
            raise ControllerUnavailable(f"DexGen: {path} has {model.config.n_joints} joints")
        self.meta = meta
        self.modes_trained = tuple(meta.get("modes", MODE_CHOICES))
        self._check_mode(config.mode)
        self.model = model
        self.sampler = GuidedSampler(model, steps=config.ddim_steps, dtype=dtypes[config.precision])
        self.history = History(1, model.config.history, self.hand.n_joints)
        self.kin = hand_kinematics(config.hand)
        self._torch = torch
        self._gen = torch.Generator().manual_seed(config.seed)
        self._plan: np.ndarray | None = None  # (T, K, 3) planned offsets from the anchor
        self._anchor: np.ndarray | None = None  # (K, 3) keypoints when it was sampled
        self._since = 0
        self._dist_mm = float("nan")
        # warm up here (the app builds controllers off the loop thread): the first sample
        # imports diffusers and builds the schedule, ~2 s that must not land on a tick
        c = model.config
        self.sampler.sample(np.zeros((1, c.state_dim)), steps=config.ddim_steps,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip

    def _check_mode(self, mode: str) -> None:
        if mode not in self.modes_trained:
            raise ValueError(
                f"mode {mode!r}: this DexGen model saw no {mode} data "
                f"(trained on {', '.join(self.modes_trained)})"
            )

    def _apply_live(self, changes: dict[str, Any]) -> None:
        if "mode" in changes:
            self._check_mode(changes["mode"])
        if changes:
            self._plan = None  # the next tick samples with the new settings

    def reset(self, state: HandState) -> None:
        self.history.restart([0])
        self._plan = None
        self._gen.manual_seed(self.config.seed)

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        hold = state.target.copy()
        kp = np.asarray(state.keypoints, dtype=float)
        q = np.asarray(state.q, dtype=float)
        if not (np.all(np.isfinite(kp)) and np.all(np.isfinite(q))):
            self.history.restart([0])
            self._plan = None
            return hold, {"holding": 1.0, "reason": "non-finite hand state"}
        self.history.push(kp[None], q[None], state.target[None])
        if command.keypoints is None:
            self._plan = None
            return hold, {"holding": 1.0, "reason": "no keypoint command"}
        goal = np.asarray(command.keypoints, dtype=float)
        if goal.shape != kp.shape or not np.all(np.isfinite(goal)):
            self._plan = None
            return hold, {"holding": 1.0, "reason": "bad keypoint command"}
        offset = goal - kp
        norm = np.linalg.norm(offset, axis=1, keepdims=True)
        offset *= np.minimum(1.0, cfg.max_offset_m / np.maximum(norm, 1e-12))
        features = self.history.features()
        info: dict[str, Any] = {"holding": 0.0, "guidance": cfg.guidance}
        if self._plan is None or self._since >= cfg.sample_every:
            t0 = time.perf_counter()
            smp = self.sampler.sample(
                features,
                mode=cfg.mode,
                command=offset[None],
                guidance=cfg.guidance,
                steps=cfg.ddim_steps,
                generator=self._gen,
            )
            info["sample_ms"] = (time.perf_counter() - t0) * 1e3
            self._plan = smp.motion[0].numpy().astype(float)
            self._anchor = kp.copy()
            self._since = 0
            self._dist_mm = float(np.linalg.norm(self._plan - offset, axis=-1).mean() * 1e3)
        from training.dexgen.sampler import remaining_motion  # loaded by __init__

        assert self._anchor is not None
        motion = remaining_motion(self._plan[None], self._anchor[None], self._since, kp[None])[0]
        target = self.sampler.targets(features, motion[None], state.target[None])[0].numpy()
        self._since += 1
        if not np.all(np.isfinite(target)):
            self._plan = None
            return hold, {"holding": 1.0, "reason": "non-finite target"}
        target = self.hand.clip(target.astype(float))  # the safety filter clips again
        asked = goal if command.joints is None else self.kin.keypoints(command.joints)
        steer = self.kin.keypoints(target)
        info["guidance_dist_mm"] = self._dist_mm
        info["intervention_mm"] = float(np.linalg.norm(steer - asked, axis=1).mean() * 1e3)
        return target, info
