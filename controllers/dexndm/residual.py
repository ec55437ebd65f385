"""DexNDM's residual policy (Sec. 3.3): a correction added to the base policy's action.

``pi_res(o_gene, a) -> a_res``: from the generalist's observation (joint angle and target
histories, axis, gravity) and its action (the target step it asks for, rad), a correction
to the joint targets (rad), bounded by ``max_rad`` (tanh). It is trained, through a neural
dynamics model of the hand it will run on, so that the hand moved by ``a + a_res`` ends
where the simulator's hand did after ``a`` (``training.dexndm.residual_train``); at run
time the DexNDM controller sends ``target + a_res``. The last layer starts at zero: an
untrained residual changes nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
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
    """

    n: int = 16
    history: int = 10
    hidden: int = 256
    layers: int = 3
    max_rad: float = 0.05

    @property
    def obs_dim(self) -> int:
        """The generalist's observation plus its action (target step, rad)."""
        return self.history * 2 * self.n + 6 + self.n


class ResidualPolicy(nn.Module):
    """``forward(obs_gene, base_step) -> a_res`` (rad), (B, T*2n+6) and (B, n) inputs."""

    def __init__(self, cfg: ResidualConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = Normalizer(cfg.obs_dim)
        dims = [cfg.obs_dim] + [cfg.hidden] * cfg.layers + [cfg.n]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ELU()]
        self.net = nn.Sequential(*layers[:-1])
        last = self.net[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def forward(self, obs_gene: torch.Tensor, base_step: torch.Tensor) -> torch.Tensor:
        x = self.norm(torch.cat([obs_gene, base_step], dim=-1))
        return self.cfg.max_rad * torch.tanh(self.net(x))


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
    "load_residual",
    "save_residual",
]
