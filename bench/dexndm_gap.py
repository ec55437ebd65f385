"""Which part of the stand-in real hand's gap costs the rotation speed, and how much a
per-joint correction could win back.

    .venv/bin/python bench/dexndm_gap.py --hand leap --axes z+ z- --episodes 20 --seed 100 \\
        [--residual none] [--revert gains mass friction backlash latency solver] \\
        [--feedforward 0.5] --json PATH

The ``dexndm`` controller (``--residual none``: the generalist alone, the direct transfer;
``joint_wise`` / ``whole_hand`` / a file: with that residual) runs the rotation episodes of
``bench/dexndm_eval.py`` (the same draws for every row) on:

- ``nominal``: the simulated hand every trainer uses;
- ``stand-in``: ``sim:dynamics=reality``, the whole gap;
- ``revert=C``: the stand-in with component C of its gap set back to the nominal physics
  (``sim:dynamics=reality,reality_revert=C``; ``devices.robots.reality.GAP_COMPONENTS``);
- ``feedforward=S`` (the stand-in): the target corrected per joint by what the stand-in's
  own gains and friction call for, ``S * ((kp_nom / kp - 1) (target - q) + sign(target - q)
  max(fl - fl_nom, 0) / kp)``, applied like a residual (through the hand's safety filter, the
  policy seeing its own targets). It reads the stand-in's true parameters, which no model may:
  an upper bound on what a correction of target minus angle alone could win, not a method.

``gap_closed`` is (rad/s - stand-in) / (nominal - stand-in), per axis.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import numpy as np  # noqa: E402


class Feedforward:
    """A controller whose targets get the stand-in's gain and friction correction (see the
    module docstring); the wrapped controller sees the targets it asked for."""

    def __init__(self, inner: Any, robot: Any, scale: float) -> None:
        gap = robot.reality
        if gap is None:
            raise ValueError("the feedforward correction is for the stand-in hand")
        nom = robot.hand.physics(robot.config.physics_model).actuators.arrays(len(gap.kp))
        self.inner, self.scale = inner, float(scale)
        self.gain = nom["kp"] / np.asarray(gap.kp) - 1.0
        self.stick = np.maximum(
            np.asarray(gap.frictionloss) - nom["frictionloss"], 0.0
        ) / np.asarray(gap.kp)
        self.last = np.zeros(len(gap.kp))

    def sim_start(self) -> np.ndarray | None:
        return self.inner.sim_start()

    def reset(self, state: Any) -> None:
        self.last = np.zeros_like(self.last)
        self.inner.reset(state)

    def step(self, state: Any, command: Any) -> tuple[np.ndarray, dict[str, Any]]:
        asked = dataclasses.replace(state, target=np.asarray(state.target) - self.last)
        target, info = self.inner.step(asked, command)
        err = target - np.asarray(state.q)
        self.last = self.scale * (self.gain * err + np.sign(err) * self.stick)
        return target + self.last, info


def _controller(hand: str, residual: str) -> Any:
    from controllers.dexndm import DexNDMController, DexNDMControllerConfig

    return DexNDMController(
        DexNDMControllerConfig(hand=hand, generalist="", residual=residual, ndm="none")
    )


def rows_for(args: argparse.Namespace) -> list[tuple[str, str, float | None]]:
    """(label, robot spec, feedforward scale) of every row, in order."""
    base = f"sim:dynamics=reality,reality_seed={args.reality_seed}"
    rows: list[tuple[str, str, float | None]] = [("nominal", "sim", None), ("stand-in", base, None)]
    rows += [(f"revert={c}", f"{base},reality_revert={c}", None) for c in args.revert]
    rows += [(f"feedforward={s:g}", base, s) for s in args.feedforward]
    return rows


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from training.dexndm.evaluate import evaluate_axes, rotation_robot

    records: list[dict[str, Any]] = []
    for label, spec, ff in rows_for(args):
        ctrl = _controller(args.hand, args.residual)
        robot = rotation_robot(ctrl, spec, args.hand, wrist=args.wrist, object=args.object)
        runner = ctrl if ff is None else Feedforward(ctrl, robot, ff)
        for axis, summary, _ in evaluate_axes(
            robot, runner, args.axes, args.episodes, args.seed, args.episode_s
        ):
            rec = {"row": label, "robot": spec, "residual": args.residual, "axis": axis}
            rec.update(object=args.object, wrist=args.wrist, **summary)
            records.append(rec)
            print(json.dumps(rec), flush=True)
    for axis in args.axes:
        ref = {r["row"]: r["rot_rad_per_s"] for r in records if r["axis"] == axis}
        span = ref["nominal"] - ref["stand-in"]
        for r in records:
            if r["axis"] == axis:
                r["gap_closed"] = (
                    round((r["rot_rad_per_s"] - ref["stand-in"]) / span, 3) if span else None
                )
    return records


def main(argv: list[str] | None = None) -> None:
    from bench.dexndm_eval import add_episode_arguments
    from devices.robots.reality import GAP_COMPONENTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_episode_arguments(p, seed=100)
    p.add_argument(
        "--residual",
        default="none",
        help="none, a shipped kind (joint_wise_blend, joint_wise, whole_hand_effort...) or a file",
    )
    p.add_argument("--reality-seed", type=int, default=0)
    p.add_argument(
        "--revert",
        nargs="*",
        default=["gains", "mass", "friction", "backlash", "latency", "solver"],
        help=f"components ({', '.join(GAP_COMPONENTS)}; join with + to revert several)",
    )
    p.add_argument("--feedforward", nargs="*", type=float, default=[0.5])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    records = run(args)
    out = {
        "command": " ".join(sys.argv),
        "seconds": round(time.perf_counter() - t0, 1),
        "records": records,
    }
    print(f"{'row':<22}" + "".join(f"{a:>22}" for a in args.axes))
    for label, _, _ in rows_for(args):
        cells = []
        for a in args.axes:
            r = next(r for r in records if r["row"] == label and r["axis"] == a)
            cells.append(f"{r['rot_rad_per_s']:.3f} ({r['gap_closed']:+.2f}, {r['drops']})")
        print(f"{label:<22}" + "".join(f"{c:>22}" for c in cells))
    if args.json:
        from assets.atomic import write_atomic

        write_atomic(args.json, json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
