"""How smooth is each hand's quasi-static map (action -> settled fingertips)?

    .venv/bin/python bench/modex_sensitivity.py --hands leap allegro --samples 512

MoDex's quasi-static models learn that map. Where fingers touch each other a tiny change of
the action can settle a fingertip on the other side of a neighbour: the map jumps, and no
model trained on a finite sample predicts it well. This settles the same random actions
twice, once nudged by Gaussian noise (``--noise`` rad per actuator), and reports how far
the fingertips moved: a smooth map moves them by about the lever arm times the noise
(~0.1 cm); jumps show up as a tail of centimetres.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import numpy as np  # noqa: E402


def sensitivity(hand_name: str, samples: int, noise: float, seed: int) -> dict:
    """Fingertip displacement (cm) between settling each random action and its nudged copy."""
    from controllers.modex.hand import exploration_hand
    from training.modex.data import settle

    hand = exploration_hand(hand_name)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(hand.ctrl_low, hand.ctrl_high, size=(samples, hand.action_dim))
    nudged = np.clip(actions + rng.normal(0, noise, actions.shape), hand.ctrl_low, hand.ctrl_high)
    tips = [settle(hand, a).reshape(samples, -1, 3) for a in (actions, nudged)]
    d = np.linalg.norm(tips[0] - tips[1], axis=2) * 100.0  # (samples, fingers), cm
    return {
        "hand": hand_name,
        "samples": samples,
        "noise_rad": noise,
        "median_cm": float(np.median(d)),
        "p90_cm": float(np.percentile(d, 90)),
        "p99_cm": float(np.percentile(d, 99)),
        "over_1cm": float((d > 1.0).mean()),
        "over_1cm_per_finger": dict(
            zip(hand.fingers, (d > 1.0).mean(0).round(4).tolist(), strict=True)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hands", nargs="+", default=["leap", "allegro"])
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--noise", type=float, default=0.01, help="action noise, rad (std)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--json", help="write the records here")
    args = p.parse_args(argv)
    rows = [sensitivity(h, args.samples, args.noise, args.seed) for h in args.hands]
    print(
        f"\n| hand | median cm | p90 cm | p99 cm | fingertips moved > 1 cm "
        f"(action noise {args.noise} rad, {args.samples} actions) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['hand']} | {r['median_cm']:.3f} | {r['p90_cm']:.3f} | {r['p99_cm']:.3f} | "
            f"{100 * r['over_1cm']:.1f} % |"
        )
    if args.json:
        from bench import write_json

        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
