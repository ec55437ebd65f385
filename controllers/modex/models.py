"""MoDex's neural internal models (paper Sec. 2.1), with their normalisers.

- :class:`ForwardModel` ``f(s, a) -> s'`` trained with the multi-step discounted loss
  (eq. 2) on sequential data. With ``context`` (the default for new models) it also sees
  the period before: the fingertips one period earlier and the target executed over it
  (``f(s, a | s_prev, a_prev)``). A servo with rotor inertia is still moving when the next
  target arrives (LEAP's fingers settle in about 0.13 s, the period is 50 ms), so the
  fingertips alone are not a state; with the last period's motion and target they nearly
  are (``bench/results/modex_servo``); ``QuasiStaticForward`` ``f'(a) -> s'`` with MSE (eq. 3-4).
- :class:`InverseModel` ``g(s, s_T) -> a`` with the L1 loss (eq. 8, target shift t0 = 1) and
  the spread ``sigma = E|a - g(s, s_T)|`` estimated on the data (eq. 7), so that actions are
  proposed as ``N(g(s, s_T), diag(sigma^2))`` (eq. 6); ``QuasiStaticInverse`` ``g'(s_T)``
  likewise (eq. 9-10).

Every model normalises its inputs and outputs with statistics of its training data; they
are buffers, saved in the checkpoint with the weights and the model's configuration
(:mod:`assets.checkpoint`; files from before its format tag load as they are).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assets import CHECKPOINTS_DIR, checkpoint
from assets.checkpoint import CheckpointError as CheckpointError  # raised by load_model
from controllers.nets import Normalizer

FORMAT = "dexteleop-modex/1"


@dataclass
class ModelConfig:
    """Attributes: kind (forward, qs_forward, inverse, qs_inverse); hand; state_dim H;
    action_dim K; hidden layer widths; the action bounds (for clipping proposals);
    ``context``: a sequential forward model that also sees the period before;
    ``start_action``: the target the hand holds at rest (what precedes a trajectory's first
    action), for ``context``."""

    kind: str
    hand: str
    state_dim: int
    action_dim: int
    hidden: tuple[int, ...] = (256, 256, 256)
    action_low: list[float] = field(default_factory=list)
    action_high: list[float] = field(default_factory=list)
    context: bool = False
    start_action: list[float] = field(default_factory=list)


def _normalizer(dim: int) -> Normalizer:
    """MoDex's normalisers: statistics in float32, std at least 1e-6 (as it was trained)."""
    return Normalizer(dim, min_std=1e-6, fit_dtype=torch.float32)


def mlp(n_in: int, n_out: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = n_in
    for h in hidden:
        layers += [nn.Linear(last, h), nn.SiLU()]
        last = h
    layers.append(nn.Linear(last, n_out))
    return nn.Sequential(*layers)


class _Model(nn.Module):
    def __init__(self, config: ModelConfig, n_in: int, n_out: int) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(n_in, n_out, tuple(config.hidden))

    def save(self, path: str | Path, **meta: Any) -> Path:
        """Write the weights, normalisers, configuration and ``meta`` (with its provenance:
        see :mod:`assets.checkpoint`) atomically."""
        record = {"config": asdict(self.config), "state": self.state_dict()}
        return checkpoint.save(path, record, format=FORMAT, meta=meta)


class ForwardModel(_Model):
    """``s' = s + f(s, a)`` in normalised units (eq. 1): it predicts the change of the
    fingertips, which is what the data varies most in. With ``config.context`` the input
    also holds the last period's fingertip change ``s - s_prev`` and the target ``a_prev``
    executed over it; left out, the context is the hand at rest (``s_prev = s``, ``a_prev``
    = ``config.start_action``)."""

    def __init__(self, config: ModelConfig) -> None:
        n_in = config.state_dim + config.action_dim
        if config.context:
            if len(config.start_action) != config.action_dim:
                raise ValueError("a forward model with context needs its start_action (K,)")
            n_in *= 2
        super().__init__(config, n_in, config.state_dim)
        self.s_norm = _normalizer(config.state_dim)
        self.a_norm = _normalizer(config.action_dim)
        self.d_norm = _normalizer(config.state_dim)

    def fit_normalizers(self, tips: np.ndarray, actions: np.ndarray) -> None:
        self.s_norm.fit(tips[:, :-1])
        self.a_norm.fit(actions)
        self.d_norm.fit(np.diff(tips, axis=1))

    def _context(
        self, s: torch.Tensor, s_prev: torch.Tensor | None, a_prev: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if s_prev is None:
            s_prev = s
        if a_prev is None:
            a_prev = torch.as_tensor(self.config.start_action, dtype=s.dtype)
        return s_prev.expand_as(s), a_prev.expand(*s.shape[:-1], -1)

    def forward(
        self,
        s: torch.Tensor,
        a: torch.Tensor,
        s_prev: torch.Tensor | None = None,
        a_prev: torch.Tensor | None = None,
    ) -> torch.Tensor:
        parts = [self.s_norm(s), self.a_norm(a)]
        if self.config.context:
            s_prev, a_prev = self._context(s, s_prev, a_prev)
            parts += [self.d_norm(s - s_prev), self.a_norm(a_prev)]
        return s + self.d_norm.inverse(self.net(torch.cat(parts, dim=-1)))

    def rollout(
        self,
        s0: torch.Tensor,
        actions: torch.Tensor,
        s_prev: torch.Tensor | None = None,
        a_prev: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted states (..., T, H) for actions (..., T, K) from s0 (..., H), the
        period before being ``s_prev`` / ``a_prev`` (see the class)."""
        out, s = [], s0
        for t in range(actions.shape[-2]):
            a = actions[..., t, :]
            s, s_prev, a_prev = self(s, a, s_prev, a_prev), s, a
            out.append(s)
        return torch.stack(out, dim=-2)

    def contexts(self, tips: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For trajectories ``tips`` (..., T+1, H) and ``actions`` (..., T, K) that start at
        rest: the period before each step, ``s_prev`` (..., T, H) and ``a_prev`` (..., T, K)."""
        start = torch.as_tensor(self.config.start_action or [0.0] * actions.shape[-1])
        start = start.to(actions.dtype).expand(*actions.shape[:-2], 1, -1)
        s_prev = torch.cat([tips[..., :1, :], tips[..., :-2, :]], dim=-2)
        return s_prev, torch.cat([start, actions[..., :-1, :]], dim=-2)


class QuasiStaticForward(_Model):
    """``s' = f'(a)`` (eq. 3): the settled fingertips after action ``a`` from the reset."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.action_dim, config.state_dim)
        self.a_norm = _normalizer(config.action_dim)
        self.s_norm = _normalizer(config.state_dim)

    def fit_normalizers(self, actions: np.ndarray, next_tips: np.ndarray) -> None:
        self.a_norm.fit(actions)
        self.s_norm.fit(next_tips)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.s_norm.inverse(self.net(self.a_norm(a)))


class InverseModel(_Model):
    """``a = g(s, s_T)`` (eq. 5), with ``sigma`` (eq. 7) for proposals ``N(g, sigma^2)``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, 2 * config.state_dim, config.action_dim)
        self.s_norm = _normalizer(config.state_dim)
        self.a_norm = _normalizer(config.action_dim)
        self.register_buffer("sigma", torch.ones(config.action_dim))

    def fit_normalizers(self, states: np.ndarray, actions: np.ndarray) -> None:
        self.s_norm.fit(states)
        self.a_norm.fit(actions)

    def forward(self, s: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.s_norm(s), self.s_norm(target)], dim=-1)
        return self.a_norm.inverse(self.net(x))


class QuasiStaticInverse(_Model):
    """``a = g'(s_T)`` (eq. 9), with ``sigma`` estimated like eq. 7."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, config.state_dim, config.action_dim)
        self.s_norm = _normalizer(config.state_dim)
        self.a_norm = _normalizer(config.action_dim)
        self.register_buffer("sigma", torch.ones(config.action_dim))

    def fit_normalizers(self, next_tips: np.ndarray, actions: np.ndarray) -> None:
        self.s_norm.fit(next_tips)
        self.a_norm.fit(actions)

    def forward(self, target: torch.Tensor) -> torch.Tensor:
        return self.a_norm.inverse(self.net(self.s_norm(target)))


KINDS: dict[str, type[_Model]] = {
    "forward": ForwardModel,
    "qs_forward": QuasiStaticForward,
    "inverse": InverseModel,
    "qs_inverse": QuasiStaticInverse,
}


def load_model(
    path: str | Path,
    *,
    kind: str | None = None,
    hand: str | None = None,
    physics: dict | None = None,
) -> Any:
    """A model saved with ``save``; CheckpointError (saying why) if it is missing, damaged,
    not the ``kind`` / ``hand`` asked for, or trained on other ``physics``."""
    ck = checkpoint.load(path, format=FORMAT, what="MoDex", untagged=True, physics=physics)
    try:
        cfg = dict(ck["config"])
        cfg["hidden"] = tuple(cfg["hidden"])
        config = ModelConfig(**cfg)
        cls = KINDS[config.kind]
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.config_error(ck, "MoDex", e) from None
    checkpoint.check_kind(ck, config.kind, kind, "MoDex")
    checkpoint.check_hand(ck, config.hand, hand, "MoDex")
    model = checkpoint.restore(ck, lambda: cls(config), "MoDex")
    model.trained_physics = ck.meta.get("physics")  # what it learned (Controller.notice)
    return model


DEFAULT_CHECKPOINTS = CHECKPOINTS_DIR / "modex"


def checkpoint_paths(hand: str, setting: str, root: str | Path | None = None) -> dict[str, Path]:
    """Where ``hand``'s models for ``setting`` live (``forward``, ``inverse``, ``report``)."""
    base = Path(root) if root is not None else DEFAULT_CHECKPOINTS
    stem = f"{hand}_{setting}"
    return {
        "forward": base / f"{stem}_forward.pt",
        "inverse": base / f"{stem}_inverse.pt",
        "report": base / f"{stem}.json",
    }
