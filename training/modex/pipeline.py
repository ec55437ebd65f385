"""One command from nothing to a hand's MoDex models: explore, split, train, evaluate, save.

``dexteleop train modex --hand allegro --setting quasi-static`` (or ``python -m
training.modex.pipeline``) collects random exploration in simulation (or reads a dataset
saved by ``training.modex.data``), holds out one sample in eleven for evaluation (the
paper's 10:1 split), trains the forward and inverse models of the setting and writes:

- ``<out>/<hand>_<setting>_forward.pt`` and ``..._inverse.pt``: the checkpoints (weights,
  normalisers, configuration), what the ``modex`` controller and ``bench/modex_reach.py``
  load;
- ``<out>/<hand>_<setting>.json``: the report (data manifest, training configuration, loss
  at the start and end, held-out errors in cm, seconds per stage).

Files are written atomically, so an interrupted run leaves the previous checkpoints whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assets.physics import DEFAULT_PHYSICS
from controllers.modex.models import (
    ForwardModel,
    QuasiStaticForward,
    checkpoint_paths,
)
from training.modex import DEFAULT_SAMPLES, MODEX_HANDS, SETTINGS, add_train_arguments
from training.modex.data import ExplorationData, collect
from training.modex.train import (
    TrainConfig,
    train_forward,
    train_inverse,
    train_qs_forward,
    train_qs_inverse,
)


def split(data: dict[str, Any], *, every: int = 11) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train, held-out): every ``every``-th sample (quasi-static) or trajectory (sequential)
    is held out, so held-out trajectories are never seen in part."""
    n = len(data["actions"])
    held = np.zeros(n, dtype=bool)
    held[every - 1 :: every] = True
    train = {k: v[~held] for k, v in data.items() if k != "manifest"}
    test = {k: v[held] for k, v in data.items() if k != "manifest"}
    train["manifest"] = test["manifest"] = data["manifest"]
    return train, test


def tip_distance_cm(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean fingertip distance in cm between fingertip vectors (..., H)."""
    d = (a.reshape(*a.shape[:-1], -1, 3) - b.reshape(*b.shape[:-1], -1, 3)).norm(dim=-1)
    return float(d.mean()) * 100.0


@torch.no_grad()
def evaluate(forward: Any, inverse: Any, data: dict[str, Any]) -> dict[str, float]:
    """Held-out errors: the forward model's fingertip error (cm; sequential: one step and
    the whole trajectory fed back), and the inverse model's mean absolute action error
    (rad) next to the spread of the actions themselves."""
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    a = t(data["actions"])
    if isinstance(forward, QuasiStaticForward):
        s = t(data["next_tips"])
        return {
            "forward_error_cm": tip_distance_cm(forward(a), s),
            "inverse_error_rad": float((inverse(s) - a).abs().mean()),
            "action_spread_rad": float((a - a.mean(0)).abs().mean()),
        }
    assert isinstance(forward, ForwardModel)
    tips = t(data["tips"])
    s_prev, a_prev = forward.contexts(tips, a)
    one = forward(tips[:, :-1], a, s_prev, a_prev)
    traj = forward.rollout(tips[:, 0], a)  # from rest: the trajectories start there
    flat_s, flat_n = (
        tips[:, :-1].reshape(-1, tips.shape[-1]),
        tips[:, 1:].reshape(-1, tips.shape[-1]),
    )
    flat_a = a.reshape(-1, a.shape[-1])
    return {
        "forward_error_cm": tip_distance_cm(one, tips[:, 1:]),
        "forward_rollout_error_cm": tip_distance_cm(traj, tips[:, 1:]),
        "inverse_error_rad": float((inverse(flat_s, flat_n) - flat_a).abs().mean()),
        "action_spread_rad": float((flat_a - flat_a.mean(0)).abs().mean()),
    }


def train_hand(
    hand: str,
    setting: str,
    *,
    out: str | Path | None = None,
    samples: int | None = None,
    data_path: str | Path | None = None,
    tc: TrainConfig | None = None,
    threads: int = 2,
    log: Any = None,
    physics_model: str = DEFAULT_PHYSICS,
) -> dict[str, Any]:
    """Explore (or load ``data_path``), train both models of ``setting``, save them under
    ``out`` (default: the shipped checkpoints' folder); returns the report. Exploration runs
    ``physics_model`` (``assets.physics``); the models record the physics of their data."""
    if hand not in MODEX_HANDS:
        raise ValueError(f"unknown hand {hand!r}; MoDex hands: {', '.join(MODEX_HANDS)}")
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; one of {', '.join(SETTINGS)}")
    tc = tc or TrainConfig()
    log = log or (lambda msg: print(msg, flush=True))
    torch.set_num_threads(max(1, threads))
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if data_path is not None:
        data = ExplorationData(Path(data_path)).load()
        m = data["manifest"]
        if m.get("hand") != hand or m.get("setting") != setting:
            raise ValueError(
                f"{data_path}: {m.get('setting')} data of {m.get('hand')}, not {setting} of {hand}"
            )
    else:
        n = samples or DEFAULT_SAMPLES[setting]
        log(f"exploring {hand} ({setting}): {n} samples ...")
        data = collect(
            hand, setting, samples=n, seed=tc.seed, nthread=threads, physics_model=physics_model
        )
    times["explore_s"] = time.perf_counter() - t0
    train, test = split(data)
    quasi = setting == "quasi-static"
    fit_f = train_qs_forward if quasi else train_forward
    fit_i = train_qs_inverse if quasi else train_inverse
    t1 = time.perf_counter()
    log(f"training the forward model ({tc.steps} steps) ...")
    forward, f_hist = fit_f(train, tc)
    times["forward_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    log(f"training the inverse model ({tc.steps} steps) ...")
    inverse, i_hist = fit_i(train, replace(tc, seed=tc.seed + 1))
    times["inverse_s"] = time.perf_counter() - t2
    held = evaluate(forward, inverse, test)
    paths = checkpoint_paths(hand, setting, out)
    paths["forward"].parent.mkdir(parents=True, exist_ok=True)
    report = {
        "hand": hand,
        "setting": setting,
        "data": data["manifest"],
        "train_samples": int(np.prod(train["actions"].shape[:-1])),  # pairs or transitions
        "held_out_samples": int(np.prod(test["actions"].shape[:-1])),
        "train_config": {**asdict(tc), "hidden": list(tc.hidden)},
        "forward_loss": {"first": f_hist[0], "last": float(np.mean(f_hist[-50:]))},
        "inverse_loss": {"first": i_hist[0], "last": float(np.mean(i_hist[-50:]))},
        "held_out": held,
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "torch": str(torch.__version__),
    }
    from assets.checkpoint import fingerprint

    provenance = {
        "physics": data["manifest"].get("physics"),  # absent in older exploration data
        "data_fingerprint": fingerprint({k: v for k, v in data.items() if k != "manifest"}),
    }
    forward.save(paths["forward"], report=report, **provenance)
    inverse.save(paths["inverse"], report=report, **provenance)
    from assets.atomic import write_atomic

    write_atomic(paths["report"], json.dumps(report, indent=2) + "\n")
    log(
        f"{hand} {setting}: held-out forward error {held['forward_error_cm']:.2f} cm, inverse "
        f"{held['inverse_error_rad']:.3f} rad (actions spread {held['action_spread_rad']:.3f}); "
        f"wrote {paths['forward'].parent}"
    )
    return report


def run_from_args(args: Any) -> dict[str, Any]:
    """Train from parsed :func:`training.modex.add_train_arguments` options."""
    d = TrainConfig()
    hidden_text = args.hidden or ",".join(str(h) for h in d.hidden)
    try:
        hidden = tuple(int(x) for x in hidden_text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--hidden: comma-separated integers, got {args.hidden!r}") from None
    if not hidden or min(hidden) < 1:
        raise ValueError("--hidden: at least one layer, widths >= 1")
    steps = d.steps if args.steps is None else args.steps
    batch = d.batch if args.batch is None else args.batch
    lr = d.lr if args.lr is None else args.lr
    least = 22 if args.setting == "quasi-static" else 11 * 20  # 11 trajectories: one held out
    for name, value, ok in (
        ("--steps", steps, steps >= 1),
        ("--batch", batch, batch >= 1),
        ("--lr", lr, lr > 0),
        ("--samples", args.samples, args.samples is None or args.samples >= least),
    ):
        if not ok:
            low = f">= {least}" if name == "--samples" else ("> 0" if name == "--lr" else ">= 1")
            raise ValueError(f"{name} must be {low} ({args.setting}), got {value}")
    tc = TrainConfig(steps=steps, batch=batch, lr=lr, seed=args.seed, hidden=hidden)
    return train_hand(
        args.hand,
        args.setting,
        out=args.out,
        samples=args.samples,
        data_path=args.data,
        tc=tc,
        threads=args.threads,
        physics_model=args.physics_model or DEFAULT_PHYSICS,
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m training.modex.pipeline", description="Train a hand's MoDex models."
    )
    add_train_arguments(p)
    run_from_args(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
