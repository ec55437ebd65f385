"""DexGen's two networks (DexterityGen Sec. III-C, Appendix F), with their normalisers.

- The **diffusion model** predicts the noise in a future keypoint motion
  ``dx = x[t+1..t+T] - x[t]`` (T steps, K = 8 keypoints, palm frame), conditioned on the
  robot state (4 steps of proprioception) and a one-hot task mode. A state encoder (MLP with
  GroupNorm) and a mode embedding make the condition; a U-Net of fully connected residual
  blocks (3 down, 3 up, skip connections, FiLM conditioning in every block) predicts the
  noise. The U-Net's top width is the paper's hidden dimension (768); each level down halves
  it, the fully connected analogue of a convolutional U-Net's contracting path.
- The **inverse dynamics model** is a residual MLP from (state, motion) to a diagonal
  Gaussian over the joint target, expressed as the change from the target in force.

Every input and output is normalised with statistics of the training data, kept as buffers
so that they travel inside the checkpoint with the weights and the configuration.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from assets import CHECKPOINTS_DIR, checkpoint
from assets.checkpoint import CheckpointError as CheckpointError  # raised by load_model
from assets.hands import NUM_ROBOT_KEYPOINTS as NUM_KEYPOINTS
from controllers.dexgen.controller import MODES
from controllers.nets import Normalizer  # statistics in float64, std at least 1e-4

FORMAT = "dexteleop-dexgen/1"
#: The shipped demo-scale models, one per hand (``shipped_checkpoint``).
SHIPPED = CHECKPOINTS_DIR / "dexgen"


def shipped_checkpoint(hand: str) -> Path:
    """The shipped model of ``hand`` (it may not exist: not every hand has one)."""
    return SHIPPED / f"{hand}.pt"


@dataclass
class DexGenConfig:
    """Shapes and sizes of a DexGen model.

    Attributes:
        hand: the hand it was trained on. n_joints: its joint count.
        history: proprioception steps in the state (the paper: 4).
        horizon: future steps T of a motion (the paper: 2, at 20 Hz).
        unet_width: the U-Net's top width (the paper: 768); levels halve it.
        unet_skip: how an up block takes its down block's output: ``add`` (summed into
            the up path) or ``concat`` (concatenated, twice the input width; the first
            shipped model). At batch 1 the sample's latency is reading the weights, and
            concatenation makes the decoder 1.7x heavier (6.6 M vs 4.9 M weights at 768).
        cond_dim: width of the condition vector that drives FiLM.
        encoder_width, encoder_layers: the state encoder (the paper: 1024 x 6).
        groups: GroupNorm groups after every hidden layer.
        inverse_width, inverse_blocks: the inverse dynamics residual MLP.
        train_timesteps: diffusion steps of the training (DDPM) schedule.
        beta_schedule: the diffusers beta schedule.
        modes: width of the mode one-hot: the first ``modes`` of ``MODES`` (models trained
            before ``rotate`` was a mode have 2 and load as they were).
    """

    hand: str = "leap"
    n_joints: int = 16
    history: int = 4
    horizon: int = 2
    unet_width: int = 768
    unet_skip: str = "add"
    cond_dim: int = 256
    encoder_width: int = 1024
    encoder_layers: int = 6
    groups: int = 8
    inverse_width: int = 512
    inverse_blocks: int = 3
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    modes: int = 2

    @property
    def state_dim(self) -> int:
        # per history step: keypoints, joint positions, targets in force, control error
        return self.history * (NUM_KEYPOINTS * 3 + 3 * self.n_joints)

    @property
    def motion_dim(self) -> int:
        return self.horizon * NUM_KEYPOINTS * 3


#: Model sizes: ``paper`` is Appendix F's; ``demo`` is what this machine trains in the
#: background and ships; ``smoke`` is for tests.
SIZES: dict[str, dict[str, int]] = {
    "paper": dict(unet_width=768, cond_dim=256, encoder_width=1024, encoder_layers=6,
                  inverse_width=1024, inverse_blocks=3),
    "demo": dict(unet_width=256, cond_dim=128, encoder_width=512, encoder_layers=4,
                 inverse_width=512, inverse_blocks=2),
    "smoke": dict(unet_width=64, cond_dim=32, encoder_width=64, encoder_layers=2,
                  inverse_width=64, inverse_blocks=1),
}  # fmt: skip


def state_features(keypoints: Any, q: Any, prev_target: Any) -> np.ndarray:
    """The state vector (B, H * (3K + 3n)) from a proprioception history.

    Args:
        keypoints: (B, H, K, 3) keypoints, palm frame, m (last = now).
        q: (B, H, n) joint positions. prev_target: (B, H, n) the target in force at each step.

    Per step: keypoints, joint positions, targets and control error (target - position).
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    q = np.asarray(q, dtype=np.float32)
    tg = np.asarray(prev_target, dtype=np.float32)
    b, h = q.shape[:2]
    return np.concatenate([kp.reshape(b, h, -1), q, tg, tg - q], axis=2).reshape(b, -1)


def _norm(width: int, groups: int) -> nn.GroupNorm:
    g = math.gcd(width, groups)
    return nn.GroupNorm(g, width)


class StateEncoder(nn.Module):
    """MLP with GroupNorm and Mish after every hidden layer."""

    def __init__(self, n_in: int, width: int, layers: int, n_out: int, groups: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        last = n_in
        for _ in range(layers):
            mods += [nn.Linear(last, width), _norm(width, groups), nn.Mish()]
            last = width
        mods.append(nn.Linear(last, n_out))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of the diffusion step (computed in float32), through an MLP."""

    def __init__(self, n_out: int, dim: int = 128) -> None:
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(dim, 2 * n_out), nn.Mish(), nn.Linear(2 * n_out, n_out))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / (half - 1))
        a = t.float()[:, None] * freqs[None]
        emb = torch.cat([a.sin(), a.cos()], dim=1)
        return self.net(emb.to(self.net[0].weight.dtype))


class FiLMBlock(nn.Module):
    """Two fully connected layers (GroupNorm, Mish), FiLM after the first, a residual path.

    ``film`` maps the condition to the block's (scale, shift); it is linear, so a sampler
    can split it into a per-sample part and a per-diffusion-step part computed once.
    """

    def __init__(self, n_in: int, n_out: int, cond_dim: int, groups: int) -> None:
        super().__init__()
        self.l1, self.n1 = nn.Linear(n_in, n_out), _norm(n_out, groups)
        self.film = nn.Linear(cond_dim, 2 * n_out)
        self.l2, self.n2 = nn.Linear(n_out, n_out), _norm(n_out, groups)
        self.skip: nn.Module = nn.Linear(n_in, n_out) if n_in != n_out else nn.Identity()

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``film``: (B, 2 * n_out), the output of ``self.film`` for the condition."""
        h = F.mish(self.n1(self.l1(x)))
        scale, shift = film.chunk(2, dim=1)
        h = h * (1.0 + scale) + shift
        h = F.mish(self.n2(self.l2(h)))
        return h + self.skip(x)


class FCUNet(nn.Module):
    """A U-Net whose convolutions are fully connected layers: 3 blocks down (widths w, w/2,
    w/4), one in the middle, 3 up, each up block fed the matching down block's output."""

    def __init__(self, dim: int, width: int, cond_dim: int, groups: int, skip: str = "add") -> None:
        super().__init__()
        if skip not in ("add", "concat"):
            raise ValueError(f"unet_skip must be 'add' or 'concat', not {skip!r}")
        self.concat = skip == "concat"
        k = 2 if self.concat else 1
        w = [width, max(width // 2, groups), max(width // 4, groups)]
        self.inp = nn.Linear(dim, w[0])
        self.down = nn.ModuleList(
            [
                FiLMBlock(w[0], w[0], cond_dim, groups),
                FiLMBlock(w[0], w[1], cond_dim, groups),
                FiLMBlock(w[1], w[2], cond_dim, groups),
            ]
        )
        self.mid = FiLMBlock(w[2], w[2], cond_dim, groups)
        self.up = nn.ModuleList(
            [
                FiLMBlock(k * w[2], w[1], cond_dim, groups),
                FiLMBlock(k * w[1], w[0], cond_dim, groups),
                FiLMBlock(k * w[0], w[0], cond_dim, groups),
            ]
        )
        self.out = nn.Linear(w[0], dim)
        nn.init.zeros_(self.out.weight)  # start by predicting zero noise
        nn.init.zeros_(self.out.bias)

    def blocks(self) -> list[FiLMBlock]:
        return [*self.down, self.mid, *self.up]

    def films(self, cond: torch.Tensor) -> list[torch.Tensor]:
        return [blk.film(cond) for blk in self.blocks()]

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.films(cond))

    def run(self, x: torch.Tensor, films: list[torch.Tensor]) -> torch.Tensor:
        """The network given every block's FiLM output (in :meth:`blocks` order)."""
        h = self.inp(x)
        skips = []
        nd = len(self.down)
        for blk, f in zip(self.down, films[:nd], strict=True):
            h = blk(h, f)
            skips.append(h)
        h = self.mid(h, films[nd])
        for blk, f in zip(self.up, films[nd + 1 :], strict=True):
            s = skips.pop()
            h = blk(torch.cat([h, s], dim=1) if self.concat else h + s, f)
        return self.out(h)


class InverseDynamics(nn.Module):
    """Residual MLP: (state, motion) -> mean and log std of the normalised target change."""

    def __init__(self, n_in: int, n_out: int, width: int, blocks: int, groups: int) -> None:
        super().__init__()
        self.inp = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList([self._block(width, groups) for _ in range(blocks)])
        self.head = nn.Sequential(_norm(width, groups), nn.Mish(), nn.Linear(width, 2 * n_out))

    @staticmethod
    def _block(width: int, groups: int) -> nn.Sequential:
        return nn.Sequential(
            _norm(width, groups), nn.Mish(), nn.Linear(width, width),
            _norm(width, groups), nn.Mish(), nn.Linear(width, width),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(x)
        for blk in self.blocks:
            h = h + blk(h)
        mean, log_std = self.head(h).chunk(2, dim=1)
        return mean, log_std.clamp(-7.0, 2.0)


class DexGenModel(nn.Module):
    """The diffusion model and the inverse dynamics model of one hand, with normalisers.

    Shapes: B batch, S = ``config.state_dim``, M = ``config.motion_dim``, n joints.
    """

    def __init__(self, config: DexGenConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.state_norm = Normalizer(c.state_dim)
        self.motion_norm = Normalizer(c.motion_dim)
        self.action_norm = Normalizer(c.n_joints)  # of (target - target in force)
        self.encoder = StateEncoder(c.state_dim, c.encoder_width, c.encoder_layers, c.cond_dim,
                                    c.groups)  # fmt: skip
        if not 1 <= c.modes <= len(MODES):
            raise ValueError(f"modes must be in 1..{len(MODES)}, got {c.modes}")
        self.mode_embed = nn.Linear(c.modes, c.cond_dim, bias=False)
        self.time_embed = TimeEmbedding(c.cond_dim)
        self.unet = FCUNet(c.motion_dim, c.unet_width, c.cond_dim, c.groups, c.unet_skip)
        self.inverse = InverseDynamics(c.state_dim + c.motion_dim, c.n_joints, c.inverse_width,
                                       c.inverse_blocks, c.groups)  # fmt: skip

    # -- diffusion -------------------------------------------------------------------------
    def condition(self, state_n: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        """(B, cond_dim) from the normalised state and the (B, modes) one-hot mode; computed
        once per sample, reused at every denoising step. A one-hot over all ``MODES`` is
        cut to the model's own modes (a mode it does not know is refused earlier)."""
        return self.encoder(state_n) + self.mode_embed(mode[:, : self.config.modes])

    def eps(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted noise in the normalised noisy motion ``x`` (B, M) at steps ``t`` (B,)."""
        return self.unet(x, cond + self.time_embed(t))

    # -- inverse dynamics ------------------------------------------------------------------
    def action_dist(
        self, state_n: torch.Tensor, motion_n: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (mean, log std) of the target change for a normalised motion."""
        return self.inverse(torch.cat([state_n, motion_n], dim=1))

    def targets(
        self, state_n: torch.Tensor, motion_n: torch.Tensor, target_now: torch.Tensor
    ) -> torch.Tensor:
        """(B, n) joint targets (rad): the mean of the inverse model, added to the target in
        force ``target_now`` (B, n)."""
        mean, _ = self.action_dist(state_n, motion_n)
        return target_now + self.action_norm.inverse(mean)

    def num_parameters(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        diffusion = count(self.encoder) + count(self.mode_embed) + count(self.time_embed)
        return {"diffusion": diffusion + count(self.unet), "inverse": count(self.inverse)}

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | Path, **meta: Any) -> Path:
        """Write the weights, normalisers, configuration and ``meta`` (the trainer's, with
        its provenance: see :mod:`assets.checkpoint`) atomically."""
        record = {"config": asdict(self.config), "state": self.state_dict()}
        return checkpoint.save(path, record, format=FORMAT, meta=meta)


def load_model(
    path: str | Path, *, hand: str | None = None, physics: dict | None = None
) -> tuple[DexGenModel, dict]:
    """A saved :class:`DexGenModel` in eval mode, and its metadata.

    Raises:
        CheckpointError: the file is missing, not a DexGen checkpoint, damaged (weights that
            do not fit the configuration, non-finite values), for another hand, or trained
            on other ``physics`` (see :func:`assets.checkpoint.load`).
    """
    ck = checkpoint.load(path, format=FORMAT, what="DexGen", physics=physics)
    try:
        fields = {f.name for f in dataclasses.fields(DexGenConfig)}
        # checkpoints from before the skip option concatenated
        cfg = {"unet_skip": "concat", **ck["config"]}
        config = DexGenConfig(**{k: v for k, v in cfg.items() if k in fields})
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.config_error(ck, "DexGen", e) from None
    checkpoint.check_hand(ck, config.hand, hand, "DexGen")
    return checkpoint.restore(ck, lambda: DexGenModel(config), "DexGen"), ck.meta
