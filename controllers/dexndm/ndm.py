"""Neural dynamics models of the hand (DexNDM Sec. 3.3): joint-wise and whole-hand.

Both predict the next joint angles from a window of the last ``W`` (10) joint angles and
joint targets (the actions, rad) at the control rate:

- **joint-wise** (DexNDM): joint ``i``'s next angle from its own window only,
  ``q^i_{t+1} = f_psi_i(h^i_t)``, ``h^i_t = {q^i_j, a^i_j}``; one small MLP per joint. The
  16 MLPs are one module: their weights are stacked ``(n, in, out)`` tensors and a layer is
  one batched matmul (``einsum('bni,nio->bno')``) over all joints, so that a joint-wise
  model trains at the speed of one network, not of 16 (the paper trains them one by one:
  4-6x slower than the whole-hand model, its Table 12).
- **whole-hand** (the baseline): every joint's next angle from every joint's window,
  ``q_{t+1} = f_theta(H_t)``; one MLP.

Inputs are taken relative to the latest angle (``q_j - q_t``, ``a_j - q_t``) plus the
latest angle itself, normalised per feature; the output is the step ``q_{t+1} - q_t``,
normalised by its standard deviation. The models are differentiable in the actions (the
residual policy is trained through them).

With ``effort`` (ours, beyond the paper) a model also predicts each joint's actuator torque
at ``t+1`` (N m; a second output per joint, from the same inputs): joint angles alone do
not show a servo that pushes with less force against an object it already touches, a
torque does (a weaker gain, more friction: see ``bench/dexndm_gap.py``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assets import checkpoint
from assets.checkpoint import CheckpointError
from controllers.nets import Normalizer

NDM_FORMAT = "dexteleop-ndm/1"
KINDS = ("joint_wise", "whole_hand")


@dataclass
class NDMConfig:
    """A dynamics model's shape.

    Attributes:
        kind: ``joint_wise`` or ``whole_hand``. n: joints. window: W, steps of (q, a) seen.
        hidden / layers: each MLP's width and hidden layers (joint-wise: per joint).
        effort: also predict each joint's actuator torque at t+1 (N m; trained on data
            with ``effort``).
    """

    kind: str = "joint_wise"
    n: int = 16
    window: int = 10
    hidden: int = 128
    layers: int = 3
    effort: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown NDM kind {self.kind!r}; known: {', '.join(KINDS)}")
        if min(self.n, self.window, self.hidden, self.layers) < 1:
            raise ValueError("n, window, hidden and layers must be >= 1")

    @property
    def outputs(self) -> int:
        """Per joint: the next angle's step, and the torque with ``effort``."""
        return 2 if self.effort else 1

    @property
    def joint_features(self) -> int:
        """Per joint: W relative angles, W relative targets, the latest angle."""
        return 2 * self.window + 1


def joint_features(hist_q: torch.Tensor, hist_a: torch.Tensor) -> torch.Tensor:
    """(B, n, 2W + 1) per-joint inputs from (B, W, n) angle and target windows (oldest
    first): ``q_j - q_t``, ``a_j - q_t`` and ``q_t``."""
    last = hist_q[:, -1:, :]
    rel_q = (hist_q - last).transpose(1, 2)
    rel_a = (hist_a - last).transpose(1, 2)
    return torch.cat([rel_q, rel_a, last.transpose(1, 2)], dim=2)


class GroupedLinear(nn.Module):
    """``n`` independent linear layers applied at once: (B, n, i) -> (B, n, o)."""

    def __init__(self, n: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        bound = 1.0 / np.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, fan_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (n, B, i) @ (n, i, o) -> (n, B, o): one batched matmul for every joint
        return torch.baddbmm(self.bias[:, None, :], x.transpose(0, 1), self.weight).transpose(0, 1)


class NeuralDynamics(nn.Module):
    """``forward(hist_q, hist_a) -> q_next`` for (B, W, n) windows (``predict``: with the
    torque, for a model with ``effort``); see the module doc."""

    def __init__(self, cfg: NDMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n, f, h, k = cfg.n, cfg.joint_features, cfg.hidden, cfg.outputs
        self.in_norm = Normalizer(n * f)
        self.out_norm = Normalizer(n)
        if cfg.effort:
            self.effort_norm = Normalizer(n)
        acts: list[nn.Module] = []
        if cfg.kind == "joint_wise":
            dims = [f] + [h] * cfg.layers + [k]
            for a, b in itertools.pairwise(dims):
                acts += [GroupedLinear(n, a, b), nn.ELU()]
        else:
            dims = [n * f] + [h] * cfg.layers + [n * k]
            for a, b in itertools.pairwise(dims):
                acts += [nn.Linear(a, b), nn.ELU()]
        self.net = nn.Sequential(*acts[:-1])

    def fit_normalizers(
        self,
        hist_q: np.ndarray,
        hist_a: np.ndarray,
        q_next: np.ndarray,
        effort_next: np.ndarray | None = None,
    ) -> None:
        """Fix the input and output statistics from training windows."""
        x = joint_features(torch.as_tensor(hist_q).float(), torch.as_tensor(hist_a).float())
        self.in_norm.fit(x.reshape(len(x), -1))
        self.out_norm.fit(np.asarray(q_next) - np.asarray(hist_q)[:, -1, :])
        if self.cfg.effort:
            if effort_next is None:
                raise ValueError("a model with effort needs the torques to fit its output scale")
            self.effort_norm.fit(np.asarray(effort_next))

    def normalized_outputs(self, hist_q: torch.Tensor, hist_a: torch.Tensor) -> torch.Tensor:
        """(B, n, outputs): the predicted step ``q_{t+1} - q_t`` and, with ``effort``, the
        torque at t+1, each normalised (the training targets)."""
        B, n, k = hist_q.shape[0], self.cfg.n, self.cfg.outputs
        x = self.in_norm(joint_features(hist_q, hist_a).reshape(B, -1))
        if self.cfg.kind == "joint_wise":
            return self.net(x.reshape(B, n, -1))
        return self.net(x).reshape(B, k, n).transpose(1, 2)

    def normalized_step(self, hist_q: torch.Tensor, hist_a: torch.Tensor) -> torch.Tensor:
        """(B, n) the predicted step ``q_{t+1} - q_t``, normalised (the training target)."""
        return self.normalized_outputs(hist_q, hist_a)[..., 0]

    def predict(
        self, hist_q: torch.Tensor, hist_a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(q_next, effort_next): the next angles and, for a model with ``effort``, the
        joints' torques at t+1 (N m; else None)."""
        out = self.normalized_outputs(hist_q, hist_a)
        q_next = hist_q[:, -1, :] + self.out_norm.inverse(out[..., 0])
        return q_next, self.effort_norm.inverse(out[..., 1]) if self.cfg.effort else None

    def forward(self, hist_q: torch.Tensor, hist_a: torch.Tensor) -> torch.Tensor:
        return self.predict(hist_q, hist_a)[0]


def load_ndm(
    path: str | Path, *, hand: str | None = None, kind: str | None = None
) -> tuple[NeuralDynamics, dict[str, Any]]:
    """Read a dynamics model (refusing another hand or kind); (model, meta). CheckpointError."""
    what = "neural dynamics"
    ck, cfg, model = checkpoint.load_module(
        path, format=NDM_FORMAT, what=what, config_cls=NDMConfig, build=NeuralDynamics, hand=hand
    )
    checkpoint.check_kind(ck, cfg.kind, kind, what)
    return model, dict(ck.meta)


def save_ndm(path: str | Path, model: NeuralDynamics, meta: dict[str, Any]) -> Path:
    return checkpoint.save_module(path, model, model.cfg, format=NDM_FORMAT, meta=meta)


__all__ = [
    "KINDS",
    "NDM_FORMAT",
    "CheckpointError",
    "GroupedLinear",
    "NDMConfig",
    "NeuralDynamics",
    "joint_features",
    "load_ndm",
    "save_ndm",
]
