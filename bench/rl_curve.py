"""Plot a PPO run's training curve and print it as a table.

    .venv/bin/python bench/rl_curve.py out/rl/anygrasp_leap_demo --out docs/anygrasp_ppo_curve.png

Reads ``checkpoint.pt`` (its per-iteration curve: reward, success rate = share of goals set
that were reached, goals reached per simulated minute, mean length of the episodes that
ended, in simulated seconds) and plots them against environment steps, smoothed over
``--window`` iterations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def smooth(x: np.ndarray, w: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    num = np.convolve(np.where(ok, x, 0.0), np.ones(w), mode="valid")
    den = np.convolve(ok.astype(float), np.ones(w), mode="valid")
    return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="run folder with checkpoint.pt")
    p.add_argument("--out", default="docs/anygrasp_ppo_curve.png")
    p.add_argument("--window", type=int, default=25)
    p.add_argument("--rows", type=int, default=8, help="table rows")
    args = p.parse_args(argv)
    from training.rl.ppo import load_training_state

    ck = load_training_state(Path(args.run) / "checkpoint.pt")
    curve = ck["curve"]
    w = max(1, min(args.window, len(curve)))
    steps = np.array([r["env_steps"] for r in curve], dtype=float)
    keys = ("reward", "success_rate", "goals_per_min", "episode_s")
    series = {k: smooth([r.get(k, np.nan) for r in curve], w) for k in keys}
    xs = steps[w - 1 :]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(15, 3.2))
    for ax, k in zip(axes, keys, strict=True):
        ax.plot(xs / 1e6, series[k])
        ax.set_title(k.replace("_", " "))
        ax.set_xlabel("env steps (M)")
        ax.grid(alpha=0.3)
    meta = ck.meta
    fig.suptitle(
        f"PPO {meta.get('task', '')} on {meta.get('hand', '')} ({meta.get('scale', '')} scale), "
        f"{ck['env_steps'] / 1e6:.2f} M steps in {ck['seconds'] / 60:.0f} min"
    )
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print("| iteration | env steps | minutes | reward | success rate | goals/min | episode s |")
    print("|---|---|---|---|---|---|---|")
    idx = np.unique(np.linspace(0, len(xs) - 1, min(args.rows, len(xs))).astype(int))
    for i in idx:
        j = i + w - 1
        minutes = curve[j]["seconds"] / 60
        print(
            f"| {curve[j]['iteration']} | {steps[j] / 1e6:.2f} M | {minutes:.0f} | "
            f"{series['reward'][i]:.2f} | {series['success_rate'][i]:.2f} | "
            f"{series['goals_per_min'][i]:.1f} | {series['episode_s'][i]:.1f} |"
        )
    print(f"\n(means over {w} iterations; plot: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
