"""Plot PPO runs' training curves and print them as tables.

    .venv/bin/python bench/rl_curve.py out/rl/anygrasp_leap_demo --out docs/anygrasp_ppo_curve.png
    .venv/bin/python bench/rl_curve.py out/rl/rotate_a out/rl/rotate_b --out docs/rotate.png

Reads each run's ``checkpoint.pt`` (its per-iteration curve) and plots the task's measures,
smoothed over ``--window`` iterations, against environment steps and (for several runs, or
``--wall``) against wall-clock minutes of training:

- ``anygrasp`` / ``free_finger``: reward, success rate (share of goals set that were reached),
  goals reached per simulated minute, mean length of the episodes that ended (s);
- ``rotate``: reward, the object's angular speed about the commanded axis (rad/s, mean over
  all worlds and steps), off the axis (rad/s), the share of ended episodes that ended without
  a drop, and the mean length of the episodes that ended (s; 20 s = kept to the end);
  with the adaptive tilt curriculum, the tilt reached (share of the tilted wrist's).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

#: The curve's columns plotted per task, with their titles.
KEYS = {
    "rotate": {
        "reward": "reward",
        "task_rot_rad_s": "rad/s about the axis",
        "task_off_axis_rad_s": "rad/s off the axis",
        "hold_rate": "episodes kept (share)",
        "episode_s": "episode length (s)",
    },
    "default": {
        "reward": "reward",
        "success_rate": "success rate",
        "goals_per_min": "goals per min",
        "episode_s": "episode length (s)",
    },
}


def smooth(x: np.ndarray, w: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    num = np.convolve(np.where(ok, x, 0.0), np.ones(w), mode="valid")
    den = np.convolve(ok.astype(float), np.ones(w), mode="valid")
    return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def _axes(curve: list, window: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The smoothing window (at most the curve's length) and the env steps and training
    minutes at which the smoothed values stand."""
    w = max(1, min(window, len(curve)))
    steps = np.array([r["env_steps"] for r in curve], dtype=float)[w - 1 :]
    minutes = np.array([r["seconds"] for r in curve], dtype=float)[w - 1 :] / 60
    return w, steps, minutes


def _table(name: str, ck: Any, keys: dict, args: argparse.Namespace) -> None:
    """The run's curve as a Markdown table (means over the window)."""
    curve = ck["curve"]
    w, steps, minutes = _axes(curve, args.window)
    print(f"\n{name}: {ck['env_steps'] / 1e6:.2f} M steps in {ck['seconds'] / 60:.0f} min")
    print("| iteration | env steps | minutes | " + " | ".join(keys.values()) + " |")
    print("|---" * (3 + len(keys)) + "|")
    series = {k: smooth([r.get(k, np.nan) for r in curve], w) for k in keys}
    idx = np.unique(np.linspace(0, len(steps) - 1, min(args.rows, len(steps))).astype(int))
    for i in idx:
        j = i + w - 1
        cells = " | ".join(f"{series[k][i]:.3f}" for k in keys)
        print(f"| {curve[j]['iteration']} | {steps[i] / 1e6:.2f} M | {minutes[i]:.0f} | {cells} |")
    print(f"(means over {w} iterations)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders with checkpoint.pt")
    p.add_argument("--out", help="write the plot here (PNG); without it, the tables only")
    p.add_argument("--window", type=int, default=25)
    p.add_argument("--rows", type=int, default=8, help="table rows per run")
    p.add_argument("--wall", action="store_true", help="also plot against wall-clock minutes")
    args = p.parse_args(argv)
    from training.rl.ppo import load_training_state

    runs = []
    for run in args.runs:
        ck = load_training_state(Path(run) / "checkpoint.pt")
        runs.append((Path(run).name, ck))
    task = runs[0][1].meta.get("task", "")
    keys = KEYS.get(task, KEYS["default"])
    if any("task_tilt_share" in r for _, ck in runs for r in ck["curve"]):
        keys = {**keys, "task_tilt_share": "tilt (share of the wrist's)"}  # adaptive tilt
    wall = args.wall or len(runs) > 1
    if args.out is None:
        for name, ck in runs:
            _table(name, ck, keys, args)
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nrow = 2 if wall else 1
    fig, axes = plt.subplots(nrow, len(keys), figsize=(3.2 * len(keys), 2.9 * nrow), squeeze=False)
    for name, ck in runs:
        curve = ck["curve"]
        w, steps, minutes = _axes(curve, args.window)
        for j, k in enumerate(keys):
            y = smooth([r.get(k, np.nan) for r in curve], w)
            axes[0, j].plot(steps / 1e6, y, label=name)
            if wall:
                axes[1, j].plot(minutes, y, label=name)
        _table(name, ck, keys, args)
    for j, title in enumerate(keys.values()):
        axes[0, j].set_title(title)
        axes[0, j].set_xlabel("env steps (M)")
        if wall:
            axes[1, j].set_xlabel("training minutes (wall)")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    if len(runs) > 1:
        axes[0, 0].legend(fontsize=7)
    meta = runs[0][1].meta
    fig.suptitle(
        f"PPO {task} on {meta.get('hand', '')} ({meta.get('scale', '')} scale)"
        + (f", {len(runs)} runs" if len(runs) > 1 else "")
    )
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"\nplot: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
