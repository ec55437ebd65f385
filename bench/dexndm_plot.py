"""The DexNDM figure for BENCHMARKS.md: direct transfer vs whole-hand vs joint-wise NDM on
the stand-in real hand beside the paper's MuJoCo sim-to-sim figures, and the chaos-box
data-size ablation.

    .venv/bin/python bench/dexndm_plot.py --eval bench/results/dexndm_eval_leap.json \
        --ablation bench/results/dexndm_ablation_30.json bench/results/dexndm_ablation_100.json \
        bench/results/dexndm_ablation_300.json --out docs/dexndm_eval.png

Left: RotR relative to direct transfer (the paper's Table 6, Isaac Gym -> MuJoCo: UAN,
ASAP, DexNDM; ours per axis: whole-hand and joint-wise residuals). Middle: time to fall
as a share of the 20 s episode (the paper's TTF seconds / 20). Right: the joint-wise model's
next-angle error and the +z speed it buys against the number of chaos-box trajectories.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: DexNDM Table 6, MuJoCo columns (Isaac Gym -> MuJoCo): RotR and TTF (s, of 20).
PAPER_MUJOCO = {
    "direct": (82.03, 15.33),
    "UAN": (99.14, 18.67),
    "ASAP": (26.25, 15.60),
    "DexNDM": (124.69, 18.90),
}
LABELS = {"direct": "direct", "whole_hand": "whole\nhand", "joint_wise": "joint\nwise"}


def _by(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["method"], r["axis"]): r for r in records}


def ablation_rows(paths: list[str]) -> list[dict]:
    """(trajectories, NDM RMSE, +z rad/s, -z rad/s) from the ablation runs' JSON files (the
    number of trajectories is the file name's last ``_N``)."""
    rows = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        by = _by(d["records"])
        rows.append(
            {
                "trajectories": int(Path(p).stem.rsplit("_", 1)[-1]),
                "rmse": d["ndm_errors"]["joint_wise"]["in_distribution"]["rmse_rad"],
                "+z": by[("joint_wise", "+z")]["rot_rad_per_s"],
                "-z": by[("joint_wise", "-z")]["rot_rad_per_s"],
            }
        )
    return sorted(rows, key=lambda r: r["trajectories"])


def plot(eval_json: str, ablation: list[str], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = json.loads(Path(eval_json).read_text())
    by = _by(d["records"])
    axes_ = [a for a in ("+z", "-z", "+x", "-x", "+y", "-y") if ("direct", a) in by]
    fig, ax = plt.subplots(1, 3 if ablation else 2, figsize=(15 if ablation else 10, 4.2))

    # left: RotR / direct
    names, vals, colors = [], [], []
    base = PAPER_MUJOCO["direct"][0]
    for m in ("UAN", "ASAP", "DexNDM"):
        names.append(f"paper\n{m}")
        vals.append(PAPER_MUJOCO[m][0] / base)
        colors.append("#999999")
    for a in axes_:
        direct = by[("direct", a)]["rotr"]
        for m, c in (("whole_hand", "#4c72b0"), ("joint_wise", "#dd8452")):
            if (m, a) in by and direct:
                names.append(f"{a}\n{LABELS[m]}")
                vals.append(by[(m, a)]["rotr"] / direct)
                colors.append(c)
    ax[0].bar(range(len(vals)), vals, color=colors)
    ax[0].axhline(1.0, color="k", lw=0.8)
    ax[0].axhline(1.2, color="g", lw=0.8, ls="--", label="the issue's bar (1.2x)")
    ax[0].set_xticks(range(len(vals)), names, fontsize=7)
    ax[0].set_ylabel("RotR / direct transfer")
    ax[0].set_title("rotation vs direct transfer")
    ax[0].legend(fontsize=7)

    # middle: TTF
    names, vals, colors = [], [], []
    for m, (_, ttf_s) in PAPER_MUJOCO.items():
        names.append(f"paper\n{m}")
        vals.append(ttf_s / 20.0)
        colors.append("#999999")
    for a in axes_:
        for m, c in (("direct", "#55a868"), ("whole_hand", "#4c72b0"), ("joint_wise", "#dd8452")):
            if (m, a) in by:
                names.append(f"{a}\n{LABELS[m]}")
                vals.append(by[(m, a)]["ttf"])
                colors.append(c)
    ax[1].bar(range(len(vals)), vals, color=colors)
    ax[1].set_ylim(0, 1.05)
    ax[1].set_xticks(range(len(vals)), names, fontsize=7)
    ax[1].set_ylabel("time to fall / 20 s")
    ax[1].set_title("time to fall")

    if ablation:
        rows = ablation_rows(ablation)
        n = [r["trajectories"] for r in rows]
        ax[2].plot(n, [r["rmse"] for r in rows], "o-", color="#c44e52", label="NDM RMSE (rad)")
        ax[2].set_xticks(n)
        ax[2].set_xlabel("chaos-box trajectories")
        ax[2].set_ylabel("joint-wise NDM next-angle RMSE (rad)")
        tw = ax[2].twinx()
        tw.plot(n, [r["+z"] for r in rows], "s--", color="#dd8452", label="+z rad/s")
        tw.plot(n, [r["-z"] for r in rows], "^--", color="#8172b2", label="-z rad/s")
        if ("direct", "+z") in by:
            tw.axhline(by[("direct", "+z")]["rot_rad_per_s"], color="#55a868", lw=0.8,
                       label="+z direct")  # fmt: skip
        tw.set_ylabel("rotation speed with the residual (rad/s)")
        ax[2].set_title("chaos-box data size")
        h1, l1 = ax[2].get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax[2].legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    fig.suptitle("DexNDM on the stand-in real hand (LEAP, palm up, 7 cm cube) vs the paper's "
                 "MuJoCo sim-to-sim", fontsize=10)  # fmt: skip
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--eval", required=True, help="bench/dexndm_eval.py's JSON")
    p.add_argument("--ablation", nargs="*", default=[], help="the ablation's JSON files")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        plot(args.eval, args.ablation, args.out)
    except (OSError, KeyError, ValueError) as e:
        print(f"dexndm_plot: {e}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
