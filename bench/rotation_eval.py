"""Evaluate in-hand rotation: how far a policy turns objects about a commanded axis.

    .venv/bin/python bench/rotation_eval.py --hand leap --axis z+ --object cube \
        --episodes 100 --seed 0 [--wrist palm_up] [--checkpoint C | --hold] --json PATH

One episode of ``--episode-s`` (20 s) per world, all in parallel, on the ``rotate`` task
(``training.envs.rotate``) with randomization on; a drop ends an episode. ``--axis``,
``--object`` (a family: cube, cylinder, cuboid_ar3, sphere, ...) and ``--wrist`` take
several values; every combination is one record
``{axis, object, wrist, episodes, rot_rad_per_s, rotr, ttf, rotp, drops}`` with DexNDM's
metrics (Sec. 4.1): ``rotr`` the radians turned about the axis per episode (mean), ``ttf``
the time to fall as a fraction of the episode (1 when kept), ``rotp`` the mean off-axis
angular speed (rad/s, over the steps in hand), ``rot_rad_per_s = rotr / episode time``.
``--hold`` keeps the start grasp's targets (no policy): the floor a policy must clear.
``--mpc [KEY=VALUE ...]`` evaluates the sampling-MPC expert (``training.rl.mpc``), the
oracle the specialists are distilled from (it steps ``samples x horizon`` worlds per world
and control step: minutes per episode).
``--randomization`` sets the physics randomization (``on``: as trained, the default;
``no-force``: all but the random forces pushing the object; ``off``: nominal physics).
``--scale`` sets the objects' scale of their family's base size (the cube's is 5 cm, so 1.4
is the 7 cm cube the shipped specialists trained with; several values: a record each, with
``scale`` and ``size_m``, the objects' MuJoCo sizes: half extents, a sphere's radius); by
default the policy's own.
``--start`` picks the episodes' start (``grasp``: cached grasps; ``palm``: the object lying
in the palm, see ``RotateConfig.start``); by default the policy's own.
``--checkpoint`` with several specialists evaluates them as a team, each acting while its
axis is commanded (the teacher a generalist is distilled from).
``--flip-s S`` plays an operator switching axes: each episode starts about the first
``--axis`` and switches to the next every S seconds (one record; ``rot_by_axis_rad``: the
turn about each axis while it was commanded, positive = the commanded way).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import numpy as np  # noqa: E402
import torch  # noqa: E402


class RotationMeter:
    """Per world: radians turned about the axis and the summed off-axis speed over the
    steps of its episode (``training.rl.evaluate.evaluate``'s ``on_step``)."""

    def __init__(self, n: int) -> None:
        self.rotr = np.zeros(n)
        self.off = np.zeros(n)
        self.steps = np.zeros(n, int)
        #: the same turn split by the axis commanded at each step (``--flip-s``)
        self.by_axis: dict[str, np.ndarray] = {}

    def __call__(self, env: Any, counted: np.ndarray) -> None:
        from devices.tick import axis_vector
        from training.envs.rotate import ANY_AXIS

        omega, axis = env.last_omega, env.last_axis  # this step's, before any reset
        about = np.sum(omega * axis, axis=1) * env.dt
        self.rotr[counted] += about[counted]
        self.off[counted] += np.linalg.norm(np.cross(omega, axis), axis=1)[counted]
        self.steps[counted] += 1
        for name in env.cfg.axes:
            if name != ANY_AXIS:
                m = counted & np.all(np.isclose(axis, axis_vector(name)), axis=1)
                acc = self.by_axis.setdefault(name, np.zeros(len(self.rotr)))
                acc[m] += about[m]


def randomization(name: str) -> Any:
    """The env's :class:`training.envs.base.Randomization` for a ``--randomization`` name."""
    from training.envs.base import Randomization

    return Randomization.named(name)


def evaluate(
    args: argparse.Namespace,
    axes: tuple[str, ...],
    family: str,
    wrist: str,
    scale: float | None = None,
) -> dict:
    from training.envs import make_env
    from training.rl.distill import (
        SpecialistTeam,
        rotation_policy,
        rotation_run_settings,
        team_run_settings,
    )
    from training.rl.evaluate import DEMO_OBJECTS
    from training.rl.evaluate import evaluate as run_episodes

    over: dict[str, Any] = {}
    start = "grasp"
    team = args.checkpoint is not None and len(args.checkpoint) > 1
    if team:  # specialists, each acting while its axis is commanded
        over, trained_start = team_run_settings(args.checkpoint, axes)
        start = trained_start or start
    elif args.checkpoint:
        over, trained_start = rotation_run_settings(args.checkpoint[0])
        start = trained_start or start
    if args.set:  # task settings on top of the policy's (e.g. the start pose, object scales)
        from training.rl.cli import task_settings

        extra = task_settings("rotate", args.set)
        own = {"axes", "wrists", "families", "num_envs", "episode_s"}
        taken = sorted(set(extra) & (own if scale is None else own | {"scale_range"}))
        if taken:
            raise ValueError(f"set {', '.join(taken)} with the bench's own options")
        start = extra.pop("start", start)
        over = {**over, **extra}
    start = args.start or start
    if scale is not None:
        over["scale_range"] = (scale, scale)
    over["dr"] = randomization(args.randomization)
    if args.flip_s:
        over["axis_flip_s"] = args.flip_s
    env = make_env(
        "rotate",
        hand=args.hand,
        num_envs=args.episodes,
        nthread=args.threads,
        seed=args.seed,
        episode_s=args.episode_s,
        axes=axes,
        wrists=(wrist,),
        families=(family,),
        start=start,
        **{**DEMO_OBJECTS, **over},
    )
    if team:
        policy = SpecialistTeam(args.checkpoint, env)
    else:
        policy = None if args.checkpoint is None else rotation_policy(args.checkpoint[0], env)
    targets_fn = None
    if args.mpc is not None:  # the expert plans every target; the policy's are unused
        from devices.spec import typed_options
        from training.rl.mpc import MPCSettings, RotationMPC

        raw = dict(item.partition("=")[::2] for item in args.mpc)
        mpc = RotationMPC(env, MPCSettings(**typed_options("MPC", MPCSettings, raw)))
        policy = lambda obs: torch.zeros(env.num_envs, env.num_actions)  # noqa: E731
        targets_fn = lambda env, target: mpc.plan()  # noqa: E731
    t0 = time.perf_counter()
    meter = RotationMeter(env.num_envs)
    r = run_episodes(
        env,
        policy,
        hold=policy is None,
        seed=args.seed,
        on_step=meter,
        targets_fn=targets_fn,
    )
    T = r["episode_s"]
    flips = {}
    if args.flip_s:  # the operator's sequence: how far it turned about each axis in turn
        flips = {
            "flip_s": args.flip_s,
            "rot_by_axis_rad": {k: float(v.mean()) for k, v in meter.by_axis.items()},
        }
    return {
        "axis": ",".join(axes),
        **flips,
        "object": family,
        "scale": [float(v) for v in env.cfg.scale_range],
        "size_m": sorted({tuple(o.size) for o in env.cfg.instances}),
        "wrist": wrist,
        "start": start,
        "episodes": int(env.num_envs),
        "episode_s": float(T),
        "rot_rad_per_s": float(meter.rotr.mean() / T),
        "rotr": float(meter.rotr.mean()),
        "ttf": r["time_to_drop_s_mean"] / T,
        "rotp": float(meter.off.sum() / max(meter.steps.sum(), 1)),
        "drops": r["drops"],
        "randomization": args.randomization,
        "policy": " + ".join(args.checkpoint or [])
        or ("sampling MPC " + " ".join(args.mpc) if args.mpc is not None else "hold (no policy)"),
        "physics": env.physics()["name"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from training.rl.cli import add_randomization_argument

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hand", default="leap")
    p.add_argument("--axis", nargs="+", default=["z+"])
    p.add_argument("--object", nargs="+", default=["cube"])
    p.add_argument(
        "--wrist",
        nargs="+",
        default=["palm_up"],
        help="wrist orientations: DexNDM's six (palm_up, ...) or tilts between two, A>B:DEG",
    )
    p.add_argument(
        "--scale",
        nargs="+",
        type=float,
        help="object scales of the family's base size (1.4: the 7 cm cube); default: the policy's",
    )
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episode-s", type=float, default=20.0)
    p.add_argument(
        "--start",
        choices=("grasp", "palm"),
        help="episode starts (default: the policy's; grasp for --hold)",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--checkpoint",
        nargs="+",
        help="a rotate policy.pt from `dexteleop train rl`, or a generalist from "
        "`dexteleop train rotation-generalist`; several specialists: each acts while its "
        "axis is commanded (a generalist's teacher; with --flip-s, its switches)",
    )
    who.add_argument("--hold", action="store_true", help="no policy: hold the start grasp")
    who.add_argument(
        "--mpc",
        nargs="*",
        metavar="KEY=VALUE",
        help="the sampling-MPC expert (training.rl.mpc; settings of MPCSettings, e.g. "
        "samples=64 noise_rad=0.15): an oracle that plans with the simulator, slow",
    )
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="rotate task settings (RotateConfig), over the policy's",
    )
    add_randomization_argument(p)
    p.add_argument(
        "--flip-s",
        type=float,
        default=0.0,
        help="an operator switching axes: every episode starts about the first --axis and "
        "switches to the next every FLIP_S seconds (one record, rot_by_axis_rad per axis)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from assets.checkpoint import CheckpointError

    records = []
    print(
        "| axis | object | scale | wrist | episodes | rad/s | RotR rad | TTF | RotP rad/s | drops |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        sequences = [tuple(args.axis)] if args.flip_s else [(a,) for a in args.axis]
        scales = args.scale or [None]
        for axes, family, wrist, scale in itertools.product(
            sequences, args.object, args.wrist, scales
        ):
            r = evaluate(args, axes, family, wrist, scale)
            records.append(r)
            lo, hi = r["scale"]
            shown = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
            print(
                f"| {r['axis']} | {family} | {shown} | {wrist} | {r['episodes']} "
                f"| {r['rot_rad_per_s']:.3f} "
                f"| {r['rotr']:.2f} | {r['ttf']:.2f} | {r['rotp']:.3f} | {r['drops']} |",
                flush=True,
            )
            if args.flip_s:
                turns = ", ".join(f"{k} {v:+.2f}" for k, v in r["rot_by_axis_rad"].items())
                print(f"  turned about each commanded axis (rad): {turns}", flush=True)
    except (CheckpointError, ValueError) as e:
        print(f"rotation_eval: {e}", file=sys.stderr)
        return 2
    if args.json:
        from bench import write_json

        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
