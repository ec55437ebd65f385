"""The in-hand rotation generalist (DexNDM Sec. 3.2): one policy for every axis and wrist.

DexNDM distils its per-object rotation specialists into one policy by behaviour cloning.
Its input is what a real hand knows: the last ``T = 10`` joint angles and joint targets (the
previous action), the wrist orientation (here the gravity direction in the palm frame, as
the simulated and real backends report it) and the commanded rotation axis (palm frame);
its output is the next action (delta joint targets, ``target += action_scale_rad * a``).
The network is a residual MLP: blocks ``y = ReLU(W1 x + W3 ReLU(W2 x))``.

This module is the model and its file; ``training.rl.distill`` trains it from the
specialists' rollouts; the DexNDM controller runs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assets import checkpoint
from assets.checkpoint import CheckpointError
from controllers.nets import Normalizer
from devices.robots.scene import wrist_gravity
from devices.tick import axis_vector

GENERALIST_FORMAT = "dexteleop-rotation-generalist/1"


@dataclass
class GeneralistConfig:
    """The network and its interface.

    Attributes:
        n: joints. history: T, steps of (q, target) it sees. hidden / blocks: the residual
        MLP's width and depth. action_mode / action_scale_rad: how its actions in [-1, 1]
        become joint targets (``delta``: the last target plus ``action_scale_rad * a``).
    """

    n: int = 16
    history: int = 10
    hidden: int = 512
    blocks: int = 5
    action_mode: str = "delta"
    action_scale_rad: float = 0.1

    @property
    def obs_dim(self) -> int:
        return self.history * 2 * self.n + 6


def generalist_obs(hist_q: Any, hist_target: Any, axis: Any, gravity: Any) -> Any:
    """(..., T * 2n + 6) the generalist's input from (..., T, n) joint-angle and joint-target
    histories (oldest first; the last T steps are used by the caller's slicing), the
    (..., 3) axis and the (..., 3) gravity direction, both in the palm frame. numpy arrays
    or torch tensors (the residual policy's trainer builds it batched in torch)."""
    if isinstance(hist_q, torch.Tensor):
        if hist_q.shape != hist_target.shape or hist_q.dim() < 3:
            raise ValueError(f"histories must be (..., T, n) alike, got {hist_q.shape}")
        hist = torch.cat([hist_q, hist_target], dim=-1).flatten(-2)
        return torch.cat([hist, axis, gravity], dim=-1)
    hq, ht = np.asarray(hist_q, dtype=float), np.asarray(hist_target, dtype=float)
    if hq.shape != ht.shape or hq.ndim < 3:
        raise ValueError(f"histories must be (..., T, n) alike, got {hq.shape} and {ht.shape}")
    hist = np.concatenate([hq, ht], axis=-1).reshape(*hq.shape[:-2], -1)
    return np.concatenate([hist, np.asarray(axis, float), np.asarray(gravity, float)], axis=-1)


class ResidualBlock(nn.Module):
    """DexNDM's block: ``ReLU(NN1(x) + NN3(ReLU(NN2(x))))``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.skip = nn.Linear(width, width)
        self.inner = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.skip(x) + self.outer(torch.relu(self.inner(x))))


class GeneralistNet(nn.Module):
    """Normalised observation -> residual MLP -> actions in [-1, 1] (tanh)."""

    def __init__(self, cfg: GeneralistConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = Normalizer(cfg.obs_dim)
        self.stem = nn.Linear(cfg.obs_dim, cfg.hidden)
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.hidden) for _ in range(cfg.blocks)])
        self.head = nn.Linear(cfg.hidden, cfg.n)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(self.norm(obs)))
        return torch.tanh(self.head(self.blocks(h)))


def _degrees_to_nearest(known: dict[str, np.ndarray] | None, v: np.ndarray) -> float:
    """Degrees from direction ``v`` to the nearest of the unit vectors ``known`` (0 where
    there are none to compare with)."""
    if known is None:
        return 0.0
    u = np.asarray(v, dtype=float) / np.linalg.norm(v)
    cos = max(float(np.clip(k @ u, -1.0, 1.0)) for k in known.values())
    return float(np.degrees(np.arccos(cos)))


class RotationGeneralist:
    """A shipped generalist, loaded: ``act(hist_q, hist_target, axis, gravity)``."""

    def __init__(self, net: GeneralistNet, meta: dict[str, Any], path: Path | None = None):
        self.net = net.eval()
        self.cfg = net.cfg
        self.meta = meta
        self.path = path
        # read once: the loop asks each tick
        self._trained_axes = self._read_axes(meta)
        self._trained_wrists = self._read_wrists(meta)

    @staticmethod
    def load(
        path: str | Path, *, hand: str | None = None, physics: dict | None = None
    ) -> RotationGeneralist:
        """Read a generalist; refuses another hand (and, given ``physics``, other physics:
        the differences are kept in ``meta['physics_differences']``). CheckpointError."""
        what = "rotation generalist"
        ck = checkpoint.load(
            path, format=GENERALIST_FORMAT, what=what, physics=physics, strict_physics=False
        )
        checkpoint.check_hand(ck, ck.meta.get("hand", hand), hand, what)
        try:
            cfg = GeneralistConfig(**ck["config"])
        except (KeyError, TypeError) as e:
            raise checkpoint.config_error(ck, what, e) from None
        net = checkpoint.restore(ck, lambda: GeneralistNet(cfg), what)
        meta = dict(ck.meta, physics_differences=ck.physics_differences)
        return RotationGeneralist(net, meta, Path(path))

    @property
    def trained_axes(self) -> dict[str, np.ndarray] | None:
        """The axes its specialists turned (name: palm-frame unit vector), or None where it
        was trained on axes drawn from the whole sphere (``any``) or does not say."""
        return self._trained_axes

    @staticmethod
    def _read_axes(meta: dict[str, Any]) -> dict[str, np.ndarray] | None:
        names = meta.get("trained", {}).get("axes")
        if not names or "any" in names:
            return None
        try:
            return {n: axis_vector(n) for n in names}
        except ValueError:  # a name this version cannot read: it does not say, then
            return None

    def axis_off_deg(self, axis: np.ndarray) -> float:
        """Degrees from ``axis`` to the nearest axis it was trained about (0 where it knows
        every axis)."""
        return _degrees_to_nearest(self.trained_axes, axis)

    @property
    def trained_wrists(self) -> dict[str, np.ndarray] | None:
        """The wrists its specialists turned the object at (name: gravity in the palm
        frame, unit), or None where it does not say (or names one this version cannot
        read)."""
        return self._trained_wrists

    @staticmethod
    def _read_wrists(meta: dict[str, Any]) -> dict[str, np.ndarray] | None:
        names = meta.get("trained", {}).get("wrists")
        if not names:
            return None
        try:
            return {n: wrist_gravity(n) for n in names}
        except ValueError:  # "random" or a name this version cannot read
            return None

    def wrist_off_deg(self, gravity: np.ndarray) -> float:
        """Degrees from ``gravity`` (palm frame) to the nearest wrist it was trained at (0
        where it does not say)."""
        return _degrees_to_nearest(self.trained_wrists, gravity)

    def save(self, path: str | Path, meta: dict[str, Any]) -> Path:
        self.meta = dict(meta)
        self._trained_axes = self._read_axes(self.meta)
        self._trained_wrists = self._read_wrists(self.meta)
        return checkpoint.save(
            path,
            {"config": asdict(self.cfg), "state": self.net.state_dict()},
            format=GENERALIST_FORMAT,
            meta=meta,
        )

    @torch.inference_mode()
    def act(
        self,
        hist_q: np.ndarray,
        hist_target: np.ndarray,
        axis: np.ndarray,
        gravity: np.ndarray,
    ) -> np.ndarray:
        """(N, n) actions in [-1, 1] from (N, >= T, n) histories (the last T are used)."""
        T = self.cfg.history
        hq, ht = np.asarray(hist_q), np.asarray(hist_target)
        if hq.shape[1] < T:
            raise ValueError(f"the generalist needs {T} steps of history, got {hq.shape[1]}")
        return self.act_obs(generalist_obs(hq[:, -T:], ht[:, -T:], axis, gravity))

    @torch.inference_mode()
    def act_obs(self, obs: np.ndarray) -> np.ndarray:
        """(N, n) actions from (N, T * 2n + 6) observations (:func:`generalist_obs`)."""
        if not np.all(np.isfinite(obs)):
            raise ValueError("non-finite joint state, axis or gravity given to the generalist")
        return self.net(torch.as_tensor(obs, dtype=torch.float32)).numpy().astype(float)

    def targets(self, last_target: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Joint targets from actions (before the safety filter's limits)."""
        return np.asarray(last_target) + self.cfg.action_scale_rad * np.asarray(actions)


__all__ = [
    "GENERALIST_FORMAT",
    "CheckpointError",
    "GeneralistConfig",
    "GeneralistNet",
    "ResidualBlock",
    "RotationGeneralist",
    "generalist_obs",
]
