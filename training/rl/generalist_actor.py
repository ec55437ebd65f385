"""The rotation generalist as a PPO actor: reinforcement learning on top of distillation.

The generalist (:mod:`controllers.dexndm.generalist`) is cloned from oracle specialists that
see the object; it sees only its joint history, the axis and the wrist. What it cannot infer
from those it averages, and under random pushes it keeps 75-80 % of the +z specialist's
speed whatever the distillation recipe (BENCHMARKS.md, In-hand rotation). ``train rl --init
GENERALIST.pt`` goes on from the clone with PPO in the same ``rotate`` task, its actor the
generalist's own network on its own observation (``oracle`` off: the environment's actor
group is the joint history, the axis, gravity and a style column; the generalist reads the
first ``T * 2n + 6`` of them, :func:`~controllers.dexndm.generalist.generalist_obs`'s
layout), its critic privileged as for every specialist. Each export writes both the PPO
policy file and a generalist file the DexNDM controller runs.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from rsl_rl.models import MLPModel
from rsl_rl.utils import resolve_class
from torch import nn

from assets import checkpoint
from controllers.dexndm.generalist import (
    GeneralistConfig,
    GeneralistNet,
    RotationGeneralist,
)

#: the actor class as the PPO configuration names it (rsl-rl resolves it by name)
ACTOR_CLASS = "training.rl.generalist_actor:GeneralistActor"


class _Head(nn.Module):
    """The generalist's network on the first ``obs_dim`` columns of the actor's group."""

    def __init__(self, cfg: GeneralistConfig) -> None:
        super().__init__()
        self.obs_dim = cfg.obs_dim
        self.net = GeneralistNet(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[..., : self.obs_dim])


class GeneralistActor(MLPModel):
    """An rsl-rl actor whose mean action is the generalist's (tanh, in [-1, 1]); its own
    input normaliser (fixed at distillation) replaces rsl-rl's running one."""

    def __init__(
        self,
        obs: Any,
        obs_groups: dict[str, list[str]],
        obs_set: str,
        output_dim: int,
        generalist: dict[str, Any] | None = None,
        distribution_cfg: dict | None = None,
    ) -> None:
        nn.Module.__init__(self)
        self.obs_groups, self.obs_dim = self._get_obs_dim(obs, obs_groups, obs_set)
        cfg = GeneralistConfig(**(generalist or {}))
        if cfg.n != output_dim:
            raise ValueError(f"the generalist acts on {cfg.n} joints, the task on {output_dim}")
        if self.obs_dim < cfg.obs_dim:
            raise ValueError(
                f"the actor's observation has {self.obs_dim} columns, the generalist reads "
                f"{cfg.obs_dim} (T = {cfg.history}); build the task with its history and "
                "oracle=False"
            )
        self.gen_cfg = cfg
        self.obs_normalization = False
        self.obs_normalizer = nn.Identity()
        self.distribution = None
        if distribution_cfg is not None:
            dist_class, dist_cfg = resolve_class(distribution_cfg)
            self.distribution = dist_class(output_dim, **dist_cfg)
        self.mlp = _Head(cfg)

    @property
    def net(self) -> GeneralistNet:
        return self.mlp.net


def actor_config(gen: RotationGeneralist, init_std: float) -> dict[str, Any]:
    """The PPO configuration's ``actor`` entry for fine-tuning ``gen``."""
    return {
        "class_name": ACTOR_CLASS,
        "generalist": asdict(gen.cfg),
        "distribution_cfg": {
            "class_name": "rsl_rl.modules.distribution.GaussianDistribution",
            "init_std": init_std,
        },
    }


def env_overrides(path: str | Path) -> dict[str, Any]:
    """The task settings the generalist at ``path`` acts in (its action layout, history,
    physics, rest pose, start and object sizes, as for evaluating it), with an actor group
    that holds no object state."""
    from training.rl.distill import rotation_run_settings

    over, start = rotation_run_settings(path)
    if start:
        over["start"] = start
    return {**over, "oracle": False, "gait": False, "styles": ("steady",)}


def check_env(env: Any, gen: RotationGeneralist) -> None:
    """Refuse a task whose actor observation is not the generalist's (an oracle or gait
    actor group, another history or action layout): it would read the wrong columns."""
    cfg = env.cfg
    wrong = [
        f"{k}={getattr(cfg, k)!r}"
        for k, want in (
            ("oracle", False),
            ("gait", False),
            ("history", gen.cfg.history),
            ("action_mode", gen.cfg.action_mode),
            ("action_scale_rad", gen.cfg.action_scale_rad),
        )
        if getattr(cfg, k) != want
    ]
    if wrong:
        raise ValueError(
            f"the generalist acts on its own observation and actions; this task has "
            f"{', '.join(wrong)}"
        )


def load_into(actor: GeneralistActor, gen: RotationGeneralist) -> None:
    """The generalist's weights (and input normaliser) into the actor's network."""
    if actor.gen_cfg != gen.cfg:
        raise ValueError(f"the actor is built for {actor.gen_cfg}, the generalist is {gen.cfg}")
    actor.net.load_state_dict(gen.net.state_dict())


def export_generalist(
    actor: GeneralistActor,
    source_meta: dict[str, Any],
    path: str | Path,
    run: dict[str, Any],
    curve: list[dict[str, Any]] | None = None,
) -> Path:
    """The fine-tuned actor as a generalist file (the DexNDM controller's format). Its meta
    is the source generalist's, its data fingerprint changed (the residuals trained for the
    source do not silently pass for this one) and ``fine_tuned`` recording the run. Beside
    it, as for a distilled one, its report (``.json``): the source's distillation report,
    the run and its PPO curve up to this export."""
    import json

    from assets.atomic import write_atomic

    net = copy.deepcopy(actor.net)  # the live actor keeps its mode and weights
    meta = {k: v for k, v in source_meta.items() if k != "physics_differences"}
    meta["fine_tuned"] = run
    meta["data_fingerprint"] = checkpoint.fingerprint(
        source_meta.get("data_fingerprint"), run.get("env_fingerprint"), run.get("env_steps")
    )
    meta["commit"] = checkpoint.git_commit()
    out = RotationGeneralist(net, meta).save(path, meta)
    report = {"source_report": source_meta.get("report"), "fine_tuned": run, "curve": curve or []}
    write_atomic(Path(path).with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    return out


__all__ = [
    "ACTOR_CLASS",
    "GeneralistActor",
    "actor_config",
    "check_env",
    "env_overrides",
    "export_generalist",
    "load_into",
]
