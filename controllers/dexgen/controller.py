"""The DexGen controller: the operator's keypoint command, projected onto safe hand motion.

Every ``sample_every`` control ticks (2 at 20 Hz: the paper's 10 Hz) it samples a keypoint
motion for the next T steps from the diffusion prior, guided toward the operator's command
(the retargeted keypoints, as offsets from where the hand's keypoints are now), and the
inverse dynamics model turns it into a joint target. On the ticks between samples the rest
of the planned motion is re-anchored on the keypoints as measured and turned into a target
again, so the hand gets a fresh target at the full loop rate from the latest state without
a second sample (DexterityGen Sec. III-D; guidance in :mod:`controllers.dexgen.sampler`, the
step in :mod:`controllers.dexgen.core`).

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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controllers.base import CONTROLLERS, Controller, ControllerConfig, ControllerUnavailable, live
from devices.tick import Command, HandState

#: The task modes a DexGen model knows, one-hot in this order (no torch at import).
MODES = ("anygrasp", "free_finger", "rotate")


def _checkpoint(hand: str, path: str | None) -> Path:
    from controllers.dexgen.models import shipped_checkpoint

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
        choices=MODES,
    )
    sample_every: int = 2
    max_offset_m: float = 0.02
    seed: int = 0
    precision: str = "float32"

    def __post_init__(self) -> None:
        super().__post_init__()
        # the constraints a type cannot say, checked before any model is loaded
        if self.sample_every < 1:
            raise ValueError(f"dexgen setting sample_every must be >= 1, got {self.sample_every}")
        if not self.max_offset_m > 0:
            raise ValueError(f"dexgen setting max_offset_m must be > 0, got {self.max_offset_m}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"dexgen setting precision must be one of {list(PRECISIONS)}, "
                f"got {self.precision!r}"
            )


#: The networks' number formats (torch dtypes by name; no torch at import).
PRECISIONS = ("float32", "bfloat16")


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

        from controllers.dexgen.core import GuidedCore
        from controllers.dexgen.models import CheckpointError, load_model

        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
        path = _checkpoint(config.hand, config.checkpoint)
        try:
            # on other physics it runs, and says so (Controller.check_physics)
            model, meta = load_model(path, hand=config.hand)
        except CheckpointError as e:
            raise ControllerUnavailable(
                f"DexGen: {e}; train with 'dexteleop train dexgen --hand {config.hand} "
                "--data PATH --ship'"
            ) from None
        if model.config.n_joints != self.hand.n_joints:
            raise ControllerUnavailable(f"DexGen: {path} has {model.config.n_joints} joints")
        self.meta = meta
        self._trained_on(meta.get("physics"))
        self.modes_trained = tuple(meta.get("modes", MODES[: model.config.modes]))
        self._check_mode(config.mode)
        self.model = model
        self.core = GuidedCore(
            model,
            1,
            steps=config.ddim_steps,
            sample_every=config.sample_every,
            max_offset_m=config.max_offset_m,
            dtype=dtypes[config.precision],
            seed=config.seed,
        )
        # warm up here (the app builds controllers off the loop thread)
        self.core.warm_up(config.ddim_steps)

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
            self.core.drop_plan()  # the next tick samples with the new settings

    def reset(self, state: HandState) -> None:
        self.core.restart()
        self.core.reseed(self.config.seed)

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        hold = state.target.copy()
        kp = np.asarray(state.keypoints, dtype=float)
        q = np.asarray(state.q, dtype=float)
        if not (np.all(np.isfinite(kp)) and np.all(np.isfinite(q))):
            self.core.restart()
            return hold, {"holding": 1.0, "reason": "non-finite hand state"}
        self.core.observe(kp[None], q[None], state.target[None])
        if command.keypoints is None:
            self.core.drop_plan()
            return hold, {"holding": 1.0, "reason": "no keypoint command"}
        goal = np.asarray(command.keypoints, dtype=float)
        if goal.shape != kp.shape or not np.all(np.isfinite(goal)):
            self.core.drop_plan()
            return hold, {"holding": 1.0, "reason": "bad keypoint command"}
        out = self.core.step(
            kp[None],
            goal[None],
            state.target[None],
            guidance=cfg.guidance,
            mode=cfg.mode,
            steps=cfg.ddim_steps,
        )
        info: dict[str, Any] = {"holding": 0.0, "guidance": cfg.guidance}
        if out.sampled:
            info["sample_ms"] = out.sample_ms
        target = out.targets[0]
        if not np.all(np.isfinite(target)):
            self.core.drop_plan()
            return hold, {"holding": 1.0, "reason": "non-finite target"}
        target = self.hand.clip(target)  # the safety filter clips again
        asked = goal if command.joints is None else self.hand.keypoints(command.joints)
        steer = self.hand.keypoints(target)
        info["guidance_dist_mm"] = out.guidance_dist_m * 1e3
        info["intervention_mm"] = float(np.linalg.norm(steer - asked, axis=1).mean() * 1e3)
        return target, info
