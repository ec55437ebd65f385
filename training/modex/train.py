"""Training MoDex's internal models on exploration data (``training.modex.data``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from controllers.modex.models import (
    ForwardModel,
    InverseModel,
    ModelConfig,
    QuasiStaticForward,
    QuasiStaticInverse,
)


@dataclass
class TrainConfig:
    """Attributes: steps (gradient steps), batch, lr, seed; horizon S and discount alpha of
    the multi-step forward loss (eq. 2); hidden widths; ``context``: the sequential forward
    model also sees the period before (:class:`controllers.modex.models.ForwardModel`)."""

    steps: int = 3000
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0
    horizon: int = 4
    alpha: float = 0.8
    hidden: tuple[int, ...] = (256, 256, 256)
    context: bool = True


def _config(kind: str, data: dict[str, Any], tc: TrainConfig) -> ModelConfig:
    from controllers.modex.hand import exploration_hand

    m = data["manifest"]
    hand = exploration_hand(m["hand"])
    return ModelConfig(
        kind=kind,
        hand=m["hand"],
        state_dim=int(m["state_dim"]),
        action_dim=int(m["action_dim"]),
        hidden=tuple(tc.hidden),
        action_low=hand.ctrl_low.tolist(),
        action_high=hand.ctrl_high.tolist(),
        context=kind == "forward" and tc.context,
        start_action=hand.default_ctrl.tolist() if kind == "forward" and tc.context else [],
    )


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def _optimize(
    model: torch.nn.Module,
    tc: TrainConfig,
    batch_loss: Callable[[np.random.Generator], torch.Tensor],
) -> list[float]:
    """``tc.steps`` Adam steps (cosine-decayed lr) on ``batch_loss(rng)`` (seeded); the
    losses. Leaves the model in eval mode."""
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng(tc.seed)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    # cosine decay to 5 % of lr: the last steps polish instead of jittering
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tc.steps, eta_min=0.05 * tc.lr)
    history = []
    for _ in range(tc.steps):
        loss = batch_loss(rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
    model.eval()
    return history


def train_forward(
    data: dict[str, Any], tc: TrainConfig | None = None, *, model: ForwardModel | None = None
) -> tuple[ForwardModel, list[float]]:
    """Eq. 2 on sequential data: windows of ``horizon`` steps, predictions fed back.
    ``model``: fine-tune this one (its normalisers kept) instead of a new one."""
    tc = tc or TrainConfig()
    tips, actions = _t(data["tips"]), _t(data["actions"])
    n_ep, n_t = actions.shape[:2]
    horizon = min(tc.horizon, n_t)
    if model is None:
        model = ForwardModel(_config("forward", data, tc))
        model.fit_normalizers(data["tips"], data["actions"])
    model.train()
    weights = tc.alpha ** torch.arange(horizon, dtype=torch.float32)
    scale = model.d_norm.std  # errors in units of a typical step, per coordinate
    s_before, a_before = model.contexts(tips, actions)  # the period before each step

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        e = torch.as_tensor(rng.integers(0, n_ep, tc.batch))
        t0 = torch.as_tensor(rng.integers(0, n_t - horizon + 1, tc.batch))
        idx = t0[:, None] + torch.arange(horizon)
        a = actions[e[:, None], idx]  # (B, S, K)
        target = tips[e[:, None], idx + 1]  # (B, S, H)
        pred = model.rollout(tips[e, t0], a, s_before[e, t0], a_before[e, t0])
        err = (((pred - target) / scale) ** 2).mean(-1)  # (B, S)
        return (err * weights).sum(-1).mean()

    return model, _optimize(model, tc, batch_loss)


def train_qs_forward(
    data: dict[str, Any],
    tc: TrainConfig | None = None,
    *,
    model: QuasiStaticForward | None = None,
) -> tuple[QuasiStaticForward, list[float]]:
    """Eq. 4: MSE of the settled fingertips from the action alone. ``model``: fine-tune
    this one (its normalisers kept) instead of a new one."""
    tc = tc or TrainConfig()
    a, s = _t(data["actions"]), _t(data["next_tips"])
    if model is None:
        model = QuasiStaticForward(_config("qs_forward", data, tc))
        model.fit_normalizers(data["actions"], data["next_tips"])
    model.train()

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        i = torch.as_tensor(rng.integers(0, len(a), tc.batch))
        return (((model(a[i]) - s[i]) / model.s_norm.std) ** 2).mean()

    return model, _optimize(model, tc, batch_loss)


def _fit_inverse(model: Any, inputs: tuple[torch.Tensor, ...], a: torch.Tensor, tc: TrainConfig):
    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        i = torch.as_tensor(rng.integers(0, len(a), tc.batch))
        pred = model(*(x[i] for x in inputs))
        return ((pred - a[i]).abs() / model.a_norm.std).mean()  # L1 (eq. 8 / 10)

    history = _optimize(model, tc, batch_loss)
    with torch.no_grad():  # eq. 7: the spread of the proposals, from the data
        model.sigma.copy_((model(*inputs) - a).abs().mean(0).clamp_min(1e-4))
    return model, history


def train_inverse(
    data: dict[str, Any], tc: TrainConfig | None = None
) -> tuple[InverseModel, list[float]]:
    """Eq. 8 with t0 = 1: from (s_t, s_{t+1}) to a_t; then sigma (eq. 7)."""
    tc = tc or TrainConfig()
    tips, actions = data["tips"], data["actions"]
    s = _t(tips[:, :-1].reshape(-1, tips.shape[-1]))
    s_next = _t(tips[:, 1:].reshape(-1, tips.shape[-1]))
    a = _t(actions.reshape(-1, actions.shape[-1]))
    model = InverseModel(_config("inverse", data, tc))
    model.fit_normalizers(tips.reshape(-1, tips.shape[-1]), actions.reshape(-1, actions.shape[-1]))
    return _fit_inverse(model, (s, s_next), a, tc)


def train_qs_inverse(
    data: dict[str, Any], tc: TrainConfig | None = None
) -> tuple[QuasiStaticInverse, list[float]]:
    """Eq. 10: from the settled fingertips to the action; then sigma (eq. 9)."""
    tc = tc or TrainConfig()
    model = QuasiStaticInverse(_config("qs_inverse", data, tc))
    model.fit_normalizers(data["next_tips"], data["actions"])
    return _fit_inverse(model, (_t(data["next_tips"]),), _t(data["actions"]), tc)
