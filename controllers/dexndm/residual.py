"""DexNDM's residual policy (Sec. 3.3): a correction added to the base policy's action.

``pi_res(o_gene, a) -> a_res``: from the generalist's observation (joint angle and target
histories, axis, gravity) and its action (the target step it asks for, rad), a correction
to the joint targets (rad), bounded by ``max_rad`` (tanh). It is trained, through a neural
dynamics model of the hand it will run on, so that the hand moved by ``a + a_res`` ends
where the simulator's hand did after ``a`` (``training.dexndm.residual_train``); at run
time the DexNDM controller sends ``target + a_res``. The last layer starts at zero: an
untrained residual changes nothing.

An ensemble (``members`` > 1, built by :func:`ensemble` from residuals trained alike but
for their seed) averages its members' corrections; how far they disagree
(:meth:`ResidualPolicy.spread`) tells where the training data said little. A blend
(:func:`blend`, ``weights``) sends a weighted sum of residuals trained for different
objectives (e.g. one matching the next angles and one matching the actuators' torques too,
each through its own dynamics model).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assets import checkpoint
from controllers.nets import Normalizer

RESIDUAL_FORMAT = "dexteleop-dexndm-residual/1"


@dataclass
class ResidualConfig:
    """The residual network.

    Attributes:
        n: joints. history: the generalist's T. hidden / layers: the MLP.
        max_rad: the largest correction per joint (rad).
        members: networks whose corrections are averaged (1: one network).
        weights: the members' weights in the correction (empty: their mean, an ensemble;
            a blend: :func:`blend`).
    """

    n: int = 16
    history: int = 10
    hidden: int = 256
    layers: int = 3
    max_rad: float = 0.05
    members: int = 1
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.weights = tuple(float(w) for w in self.weights)  # a list, read from a file

    @property
    def obs_dim(self) -> int:
        """The generalist's observation plus its action (target step, rad)."""
        return self.history * 2 * self.n + 6 + self.n


def _mlp(cfg: ResidualConfig) -> nn.Sequential:
    """The correction's network, its last layer at zero."""
    dims = [cfg.obs_dim] + [cfg.hidden] * cfg.layers + [cfg.n]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.ELU()]
    net = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.zero_()
    return net


class _Member(nn.Module):
    """An ensemble's further member: its own input normaliser and network."""

    def __init__(self, cfg: ResidualConfig) -> None:
        super().__init__()
        self.norm = Normalizer(cfg.obs_dim)
        self.net = _mlp(cfg)


class ResidualPolicy(nn.Module):
    """``forward(obs_gene, base_step) -> a_res`` (rad), (B, T*2n+6) and (B, n) inputs.

    The first member is ``norm`` / ``net`` (a one-network residual is just that); further
    members of an ensemble are in ``others``."""

    def __init__(self, cfg: ResidualConfig) -> None:
        super().__init__()
        if cfg.members < 1:
            raise ValueError(f"a residual has at least one member, got {cfg.members}")
        if cfg.weights and len(cfg.weights) != cfg.members:
            raise ValueError(f"{len(cfg.weights)} weights for {cfg.members} members")
        self.cfg = cfg
        self.norm = Normalizer(cfg.obs_dim)
        self.net = _mlp(cfg)
        self.others = nn.ModuleList(_Member(cfg) for _ in range(cfg.members - 1))

    def member_outputs(self, obs_gene: torch.Tensor, base_step: torch.Tensor) -> torch.Tensor:
        """Every member's correction (M, ..., n), rad."""
        x = torch.cat([obs_gene, base_step], dim=-1)
        outs = [self.net(self.norm(x))] + [m.net(m.norm(x)) for m in self.others]
        return self.cfg.max_rad * torch.tanh(torch.stack(outs))

    def forward(self, obs_gene: torch.Tensor, base_step: torch.Tensor) -> torch.Tensor:
        return self.correction(obs_gene, base_step)[0]

    def correction(
        self, obs_gene: torch.Tensor, base_step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the correction (..., n) rad, how far the members disagree (...): per sample the
        mean over joints of their standard deviation, rad; zeros for one network), from one
        pass over the members."""
        outs = self.member_outputs(obs_gene, base_step)
        if len(outs) == 1:
            return outs[0], torch.zeros(outs.shape[1:-1])
        spread = outs.std(dim=0, unbiased=False).mean(dim=-1)
        if self.cfg.weights:
            w = torch.as_tensor(self.cfg.weights, dtype=outs.dtype)
            return torch.tensordot(w, outs, dims=1), spread
        return outs.mean(dim=0), spread

    def scaled(self, scale: float) -> ResidualPolicy:
        """This policy sending ``scale`` times its corrections: the same weights under a cap
        ``scale`` times its own (a correction is ``max_rad * tanh(.)``)."""
        out = ResidualPolicy(replace(self.cfg, max_rad=self.cfg.max_rad * scale))
        out.load_state_dict(self.state_dict())
        return out

    def spread(self, obs_gene: torch.Tensor, base_step: torch.Tensor) -> torch.Tensor:
        """How far the members' corrections disagree (:meth:`correction`'s second part)."""
        return self.correction(obs_gene, base_step)[1]


#: what residuals may differ in and still be one ensemble's members
_MEMBER_FREE = ("seed", "threads")


def ensemble(
    members: list[tuple[ResidualPolicy, dict[str, Any]]],
) -> tuple[ResidualPolicy, dict[str, Any]]:
    """One residual averaging the corrections of ``members`` ((model, meta) pairs as
    :func:`load_residual` gives them), which must have been trained alike: the same hand,
    network, dynamics model, rollouts, base policy and training settings but for the seed.
    Returns (ensemble, meta); the meta keeps each member's seed and report."""
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two residuals")
    if any(model.cfg.members != 1 for model, _ in members):
        raise ValueError("an ensemble's members are single residuals, not ensembles")
    model0, meta0 = members[0]

    def same(meta: dict[str, Any]) -> dict[str, Any]:
        cfg = {k: v for k, v in (meta.get("config") or {}).items() if k not in _MEMBER_FREE}
        return {
            "hand": meta.get("hand"),
            "data_fingerprint": meta.get("data_fingerprint"),
            "ndm": meta.get("ndm"),
            "ndm_kind": meta.get("ndm_kind"),
            "base_policy": meta.get("base_policy"),
            "config": cfg,
        }

    ref = same(meta0)
    for k, (model, meta) in enumerate(members[1:], start=1):
        if model.cfg != model0.cfg:
            raise ValueError(f"member {k}'s network differs: {model.cfg} vs {model0.cfg}")
        got = same(meta)
        diff = [key for key in ref if got[key] != ref[key]]
        if diff:
            raise ValueError(
                f"member {k} was trained differently ({', '.join(diff)}); an ensemble's "
                "members differ only in their seed"
            )
    seeds = [(meta.get("config") or {}).get("seed") for _, meta in members]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"members share a seed ({seeds}): they would be the same network")
    out = _stack([model for model, _ in members], replace(model0.cfg, members=len(members)))
    meta = {
        key: meta0.get(key)
        for key in ("hand", "ndm", "ndm_kind", "ndm_data", "data", "base_policy", "config")
    }
    meta["data_fingerprint"] = meta0.get("data_fingerprint")
    meta["members"] = [
        {"seed": s, "val": meta.get("val"), "val_before": meta.get("val_before")}
        for s, (_, meta) in zip(seeds, members, strict=True)
    ]
    return out, meta


def _stack(models: list[ResidualPolicy], cfg: ResidualConfig) -> ResidualPolicy:
    """One residual of ``cfg`` (``members`` = len(models)) holding each model's normaliser and
    network as a member, in order."""
    out = ResidualPolicy(cfg)
    with torch.no_grad():
        out.norm.load_state_dict(models[0].norm.state_dict())
        out.net.load_state_dict(models[0].net.state_dict())
        for dst, model in zip(out.others, models[1:], strict=True):
            dst.norm.load_state_dict(model.norm.state_dict())
            dst.net.load_state_dict(model.net.state_dict())
    out.eval()
    return out


def blend(
    members: list[tuple[ResidualPolicy, dict[str, Any]]], weights: list[float]
) -> tuple[ResidualPolicy, dict[str, Any]]:
    """One residual sending ``sum_k weights[k] x`` the correction of ``members[k]`` ((model,
    meta) pairs as :func:`load_residual` gives them): residuals of one hand and one base
    policy, of the same network shape, trained for different objectives or through
    different dynamics models (their caps may differ: each member keeps its own, folded
    into its weight). Returns (blend, meta); the meta's ``blend`` keeps each member's weight,
    dynamics model, data, objective and report; its ``ndm`` is the first member's (the one
    the controller reads its one-step prediction through)."""
    if len(members) < 2:
        raise ValueError("a blend needs at least two residuals")
    if len(weights) != len(members):
        raise ValueError(f"{len(weights)} weights for {len(members)} residuals")
    if not all(np.isfinite(w) for w in weights):
        raise ValueError(f"a blend's weights must be finite, got {weights}")
    model0, meta0 = members[0]
    shape = ("n", "history", "hidden", "layers")
    for k, (model, meta) in enumerate(members):
        if model.cfg.members != 1:
            raise ValueError(f"member {k} is an ensemble or a blend; blend single residuals")
        if k == 0:
            continue
        if any(getattr(model.cfg, a) != getattr(model0.cfg, a) for a in shape):
            raise ValueError(f"member {k}'s network differs: {model.cfg} vs {model0.cfg}")
        for key in ("hand", "base_policy"):
            if meta.get(key) != meta0.get(key):
                raise ValueError(
                    f"member {k} has another {key} ({meta.get(key)} vs {meta0.get(key)}); a "
                    "blend's members correct one base policy on one hand"
                )
    # a member's correction is its own cap x tanh(.): the blend's cap is the first one's
    folded = [
        float(w) * m.cfg.max_rad / model0.cfg.max_rad
        for w, (m, _) in zip(weights, members, strict=True)
    ]
    cfg = replace(model0.cfg, members=len(members), weights=tuple(folded))
    out = _stack([model for model, _ in members], cfg)
    meta = {
        key: meta0.get(key)
        for key in ("hand", "ndm", "ndm_kind", "ndm_data", "data", "base_policy")
    }
    meta["blend"] = [
        {
            "weight": float(w),
            "cap_rad": model.cfg.max_rad,
            "ndm": m.get("ndm"),
            "ndm_kind": m.get("ndm_kind"),
            "data": m.get("data"),
            "effort_weight": (m.get("config") or {}).get("effort_weight", 0.0),
            "seed": (m.get("config") or {}).get("seed"),
            "val": m.get("val"),
            "val_before": m.get("val_before"),
            "source": m.get("source") or (m.get("selection") or {}).get("chosen"),
        }
        for w, (model, m) in zip(weights, members, strict=True)
    ]
    return out, meta


def load_residual(
    path: str | Path, *, hand: str | None = None
) -> tuple[ResidualPolicy, dict[str, Any]]:
    """Read a residual policy (refusing another hand); (model, meta). CheckpointError."""
    ck, _, model = checkpoint.load_module(
        path,
        format=RESIDUAL_FORMAT,
        what="DexNDM residual",
        config_cls=ResidualConfig,
        build=ResidualPolicy,
        hand=hand,
    )
    return model, dict(ck.meta)


def save_residual(path: str | Path, model: ResidualPolicy, meta: dict[str, Any]) -> Path:
    return checkpoint.save_module(path, model, model.cfg, format=RESIDUAL_FORMAT, meta=meta)


__all__ = [
    "RESIDUAL_FORMAT",
    "ResidualConfig",
    "ResidualPolicy",
    "blend",
    "ensemble",
    "load_residual",
    "save_residual",
]
