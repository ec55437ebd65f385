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
(:meth:`ResidualPolicy.spread`) tells where the training data said little.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
    """

    n: int = 16
    history: int = 10
    hidden: int = 256
    layers: int = 3
    max_rad: float = 0.05
    members: int = 1

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
        return outs.mean(dim=0), outs.std(dim=0, unbiased=False).mean(dim=-1)

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
    cfg = replace(model0.cfg, members=len(members))
    out = ResidualPolicy(cfg)
    with torch.no_grad():
        out.norm.load_state_dict(model0.norm.state_dict())
        out.net.load_state_dict(model0.net.state_dict())
        for dst, (model, _) in zip(out.others, members[1:], strict=True):
            dst.norm.load_state_dict(model.norm.state_dict())
            dst.net.load_state_dict(model.net.state_dict())
    out.eval()
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
    "ensemble",
    "load_residual",
    "save_residual",
]
