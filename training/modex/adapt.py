"""Adapting a forward model to a changed hand (MoDex Sec. 3.3, Fig. 7).

The hand changes — an actuator fails (its control signal is zero) or fatigues (commands
scaled by a constant) — and the forward model trained on the healthy hand mispredicts.
Fine-tuning it on ``finetune_samples`` (1000, as in the paper) new samples of the changed
hand brings the error on ``eval_samples`` (500) held-out samples of the changed hand back
towards the healthy hand's.

    python -m training.modex.adapt --hand allegro --setting quasi-static --fatigue 0.6
    python -m training.modex.adapt --hand allegro --failed 5
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from training.modex.data import Actuation, collect
from training.modex.pipeline import tip_distance_cm
from training.modex.train import TrainConfig, train_forward, train_qs_forward


@dataclass
class AdaptationResult:
    """Forward-model errors (mean fingertip distance, cm) on held-out samples.

    Attributes: actuation (what changed); healthy_cm (the model on the healthy hand);
    errors_cm: fine-tuning steps -> error on the changed hand (0: before fine-tuning)."""

    actuation: str
    healthy_cm: float
    errors_cm: dict[int, float]


def forward_error_cm(model: Any, data: dict[str, Any]) -> float:
    """The forward model's held-out error on ``data`` (one-step error for sequential)."""
    from controllers.modex.models import QuasiStaticForward

    with torch.no_grad():
        a = torch.as_tensor(data["actions"])
        if isinstance(model, QuasiStaticForward):
            pred, true = model(a), torch.as_tensor(data["next_tips"])
        else:
            tips = torch.as_tensor(data["tips"])
            pred, true = model(tips[:, :-1], a, *model.contexts(tips, a)), tips[:, 1:]
    return tip_distance_cm(pred, true)


def adapt(
    model: Any,
    actuation: Actuation,
    *,
    finetune_samples: int = 1000,
    eval_samples: int = 500,
    steps: tuple[int, ...] = (0, 50, 200, 1000),
    tc: TrainConfig | None = None,
    seed: int = 100,
) -> AdaptationResult:
    """Fine-tune copies of ``model`` for each of ``steps`` on the changed hand's samples."""
    cfg = model.config
    setting = "quasi-static" if cfg.kind == "qs_forward" else "sequential"
    healthy = collect(cfg.hand, setting, samples=eval_samples, seed=seed)
    changed_eval = collect(
        cfg.hand, setting, samples=eval_samples, seed=seed + 1, actuation=actuation
    )
    finetune = collect(
        cfg.hand, setting, samples=finetune_samples, seed=seed + 2, actuation=actuation
    )
    tc = tc or TrainConfig(lr=3e-4, batch=128)
    fit = train_qs_forward if setting == "quasi-static" else train_forward
    errors = {}
    for n in steps:
        tuned = copy.deepcopy(model)
        if n > 0:
            tuned, _ = fit(finetune, replace(tc, steps=n), model=tuned)
        errors[n] = forward_error_cm(tuned, changed_eval)
    return AdaptationResult(actuation.describe(), forward_error_cm(model, healthy), errors)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from controllers.modex.models import checkpoint_paths, load_model
    from training.modex import MODEX_HANDS, SETTINGS

    p = argparse.ArgumentParser(prog="python -m training.modex.adapt", description=__doc__)
    p.add_argument("--hand", choices=MODEX_HANDS, default="allegro")
    p.add_argument("--setting", choices=SETTINGS, default="quasi-static")
    p.add_argument("--failed", type=int, nargs="*", default=[], help="failed actuators")
    p.add_argument("--fatigue", type=float, default=1.0, help="command scale")
    p.add_argument("--checkpoints", help="model folder (default: the shipped models)")
    p.add_argument("--steps", default="0,50,200,1000", help="fine-tuning steps to report")
    args = p.parse_args(argv)
    try:
        steps = tuple(int(s) for s in args.steps.split(","))
    except ValueError:
        p.error(f"--steps: comma-separated integers, got {args.steps!r}")
    if min(steps) < 0 or not args.fatigue > 0:
        p.error("--steps must be >= 0 and --fatigue > 0")
    torch.set_num_threads(2)
    path = checkpoint_paths(args.hand, args.setting, args.checkpoints)["forward"]
    model = load_model(Path(path), hand=args.hand)
    act = Actuation(tuple(args.failed), args.fatigue)
    if any(not 0 <= i < model.config.action_dim for i in act.failed):
        p.error(f"--failed: actuators are 0..{model.config.action_dim - 1}")
    res = adapt(model, act, steps=steps)
    print(f"{args.hand} {args.setting}, {res.actuation}: healthy hand {res.healthy_cm:.2f} cm")
    print("| fine-tuning steps | error on the changed hand, cm |\n|---|---|")
    for n, e in res.errors_cm.items():
        print(f"| {n} | {e:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
