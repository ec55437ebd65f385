"""Generate grasp caches and report counts, times and the hold rate.

    python -m training.grasps --hand leap --per-family 2 --base 30 --rrt 300 --out assets/grasps

Writes ``OUT/<hand>/<instance>.npz`` and ``OUT/<hand>/summary.json`` (per instance: heuristic
and RRT grasps with their tries and seconds, and the share that holds the object for 1 s
under gravity from a random direction). A folder that already has a summary keeps its other
objects' rows, so that caches can be added to it:

    python -m training.grasps --hand leap --families cube --per-family 1 \
        --scale-range 1.4,1.4 --out assets/grasps
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from assets.atomic import write_atomic
from assets.hands import load_hand
from assets.objects import FAMILIES, sample_instances
from assets.physics import DEFAULT_PHYSICS, PHYSICS_NAMES
from training.grasps.generate import GraspGenerator, hold_test


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.grasps", description=__doc__.split("\n")[0]
    )
    p.add_argument("--hand", default="leap")
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--per-family", type=int, default=2)
    p.add_argument("--scale-range", default="0.85,1.15")
    p.add_argument("--base", type=int, default=30, help="heuristic grasps per instance")
    p.add_argument("--rrt", type=int, default=300, help="RRT expansions per instance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/grasps")
    p.add_argument(
        "--physics-model",
        default=DEFAULT_PHYSICS,
        choices=PHYSICS_NAMES,
        help="the physics the hold test runs (assets.physics)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fams = tuple(f for f in args.families.split(",") if f)
    lo, hi = (float(x) for x in args.scale_range.split(","))
    hand = load_hand(args.hand)
    out = Path(args.out) / args.hand
    # a folder's summary covers every cache in it: other objects' rows are kept; a summary
    # of another hand or physics is refused before any cache is written beside it
    summary_path = out / "summary.json"
    kept = []
    if summary_path.exists():
        prev = json.loads(summary_path.read_text())
        if prev.get("hand") != args.hand or prev.get("physics") != args.physics_model:
            raise SystemExit(
                f"{summary_path} is for {prev.get('hand')} / {prev.get('physics')}, not "
                f"{args.hand} / {args.physics_model}: write to another --out"
            )
        kept = prev.get("instances", [])
    rows = []
    for i, obj in enumerate(sample_instances(fams, args.per_family, (lo, hi), args.seed)):
        t0 = time.perf_counter()
        gen = GraspGenerator(hand, obj, seed=args.seed + i, physics=args.physics_model)
        gs = gen.generate(args.base, args.rrt)
        gs.save(out / f"{obj.name}.npz")
        gravity = np.random.default_rng(args.seed + 1000 + i).normal(size=(len(gs), 3))
        holds = hold_test(gen, gs, gravity)
        row = {
            **gs.meta,
            "grasps": len(gs),
            "hold_rate": round(float(holds.mean()), 3),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    new = {r["object"] for r in rows}
    rows = [r for r in kept if r["object"] not in new] + rows
    total = sum(r["grasps"] for r in rows)
    summary = {
        "hand": args.hand,
        "physics": args.physics_model,
        "instances": rows,
        "grasps": total,
        "hold_rate": round(sum(r["hold_rate"] * r["grasps"] for r in rows) / max(total, 1), 3),
        "seconds": round(sum(r["seconds"] for r in rows), 1),
    }
    write_atomic(summary_path, json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "instances"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
