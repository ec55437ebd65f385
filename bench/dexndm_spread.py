"""Where an ensemble residual's members disagree: on the simulated rollouts they were trained
on (held-out rows) against in closed loop, on the stand-in real hand and on the nominal
simulated hand (the states the hand actually visits).

    .venv/bin/python bench/dexndm_spread.py --residual R.pt --data out/s11/ship/sim_rollouts_leap \
        --json out/spread.json

R is an ensemble (`dexteleop train dexndm-ensemble`). Per source and axis: the members'
spread (mean over joints of their standard deviation, rad; mean and 90th percentile) and the
mean |correction| (rad). Episodes start as `bench/dexndm_eval.py`'s (the generalist's rest
pose, a random yaw, seeded) and run ``--steps`` ticks or to a drop.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _stats(spread: np.ndarray, mags: np.ndarray) -> dict[str, float]:
    return {
        "spread_rad": round(float(np.mean(spread)), 5),
        "spread_p90_rad": round(float(np.quantile(spread, 0.9)), 5),
        "correction_rad": round(float(np.mean(mags)), 5),
        "samples": len(spread),
    }


def main(argv: list[str] | None = None) -> int:
    from controllers.dexndm import DexNDMController, DexNDMControllerConfig
    from devices.robots.sim import SimHand, SimHandConfig
    from devices.tick import PALM_AXES, Command
    from training.dexndm.residual_train import Rollouts

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--residual", required=True, help="an ensemble residual")
    p.add_argument("--data", required=True, help="the rollouts it was trained on")
    p.add_argument("--hand", default="leap")
    p.add_argument("--axes", nargs="+", default=["+z", "-z"])
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--rows", type=int, default=3000, help="held-out rollout rows per axis")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ctrl = DexNDMController(
        DexNDMControllerConfig(hand=args.hand, residual=args.residual, ndm="none")
    )
    ens = ctrl.residual
    if ens.cfg.members < 2:
        raise SystemExit(f"{args.residual} is one network, not an ensemble")
    out: dict[str, dict] = {}
    data = Rollouts([args.data], ens.cfg.history, 1, 0.1)
    ax = data.axis[data.val]
    for axis in args.axes:
        k = torch.as_tensor(PALM_AXES[axis], dtype=torch.float32)
        rows = data.val[(ax * k).sum(-1) > 0.99][: args.rows]
        b = data.batch(rows)
        with torch.no_grad():
            obs, step = b["obs"][:, -1], b["step"][:, -1]
            s = ens.spread(obs, step).numpy()
            m = ens(obs, step).abs().mean(-1).numpy()
        out[f"rollouts {axis}"] = _stats(s, m)
        print(f"rollouts {axis}", out[f"rollouts {axis}"], flush=True)
    scale = ctrl.gen.meta.get("trained", {}).get("scale_range", [1.0])[0]
    for dyn in ("reality", "nominal"):
        robot = SimHand(
            SimHandConfig(hand=args.hand, object="cube", object_scale=float(scale), dynamics=dyn)
        )
        for axis in args.axes:
            rng = np.random.default_rng([args.seed, list(PALM_AXES).index(axis)])
            k = np.asarray(PALM_AXES[axis], dtype=float)
            spreads, mags = [], []
            for _ in range(args.episodes):
                robot.start_rotation(ctrl.sim_start(), float(rng.uniform(0, 2 * np.pi)))
                state = robot.read()
                ctrl.reset(state)
                for t in range(args.steps):
                    target, info = ctrl.step(state, Command(t=0.0, axis=k))
                    robot.send(target)
                    state = robot.read()
                    if t >= 10:  # past the first ticks' start-up
                        spreads.append(info["residual_spread_rad"])
                        mags.append(float(np.abs(ctrl._res_prev).mean()))
                    if state.object_dropped:
                        break
            out[f"{dyn} {axis}"] = _stats(np.array(spreads), np.array(mags))
            print(f"{dyn} {axis}", out[f"{dyn} {axis}"], flush=True)
    Path(args.json).write_text(json.dumps({"residual": args.residual, **out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
