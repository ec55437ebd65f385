"""How much a generated dataset moves: keypoint motion and target change per transition.

    .venv/bin/python bench/data_motion.py out/data/A [out/data/B ...] [--held-only]
        [--samples 20000] [--seed 0] [--json PATH]

Per dataset folder, over ``--samples`` random transitions (the reader's, so with
``--held-only`` only the episodes that kept the object to the end): the keypoint motion over
0.1 s (the mean over the 8 keypoints of ``|kp(t + 2) - kp(t)|`` at 20 Hz, mm) and the
target change per control step (the mean over joints of ``|target(t) - target(t - 1)|``,
mrad), as median and 90th percentile. A prior learns the motions its data contain: a dataset
whose median keypoint motion is a fraction of a millimetre teaches holding still.

Records: ``{data, held_only, transitions, keypoint_mm_p50, keypoint_mm_p90, target_mrad_p50,
target_mrad_p90, samples}`` per folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def motion_stats(path: str | Path, *, held_only: bool, samples: int, seed: int) -> dict:
    from training.datagen.dataset import DatasetReader

    reader = DatasetReader(path, history=4, future=2, held_only=held_only)
    if len(reader) == 0:
        raise ValueError(f"{path}: no transitions" + (" held to the end" if held_only else ""))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(reader), size=min(samples, len(reader)), replace=False)
    b = reader.get(np.sort(idx))
    kp = np.linalg.norm(b.future_keypoints[:, 1] - b.keypoints[:, -1], axis=-1).mean(axis=1)
    dt = np.abs(b.action - b.prev_target[:, -1]).mean(axis=1)
    return {
        "data": str(path),
        "held_only": held_only,
        "transitions": len(reader),
        "keypoint_mm_p50": round(float(np.median(kp)) * 1e3, 3),
        "keypoint_mm_p90": round(float(np.percentile(kp, 90)) * 1e3, 3),
        "target_mrad_p50": round(float(np.median(dt)) * 1e3, 3),
        "target_mrad_p90": round(float(np.percentile(dt, 90)) * 1e3, 3),
        "samples": int(idx.size),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="+", help="dataset folders")
    p.add_argument("--held-only", action="store_true")
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error("--samples must be >= 1")
    recs = [
        motion_stats(d, held_only=args.held_only, samples=args.samples, seed=args.seed)
        for d in args.data
    ]
    print("| data | transitions | keypoints mm/0.1 s p50 / p90 | target mrad/step p50 / p90 |")
    print("|---|---|---|---|")
    for r in recs:
        print(
            f"| {r['data']}{' (held only)' if r['held_only'] else ''} | {r['transitions']:,} | "
            f"{r['keypoint_mm_p50']:.2f} / {r['keypoint_mm_p90']:.2f} | "
            f"{r['target_mrad_p50']:.1f} / {r['target_mrad_p90']:.1f} |"
        )
    if args.json:
        from bench import write_json

        write_json(args.json, recs)
    else:
        print(json.dumps(recs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
