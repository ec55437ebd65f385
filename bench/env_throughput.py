"""Throughput of the parallel RL environments: control steps per second vs worlds and threads.

    .venv/bin/python bench/env_throughput.py [--task anygrasp] [--hand leap] [--seconds 4]
        [--worlds 1,8,32,128] [--threads 1,2] [--json PATH]

One control step = 1/20 s of simulated time = 25 physics steps of 2 ms. Three ways of
stepping the same anygrasp scene are measured in one run, so that their ratio holds on a
noisy machine:

- ``python loop``: one ``MjData`` stepped by ``mujoco.mj_step`` from Python, one world
  (the baseline: what a plain Gym-style env does);
- ``batch physics``: ``mujoco.batch`` stepping N worlds on T threads, nothing else;
- ``env step``: the full ``HandEnv.step`` (actions in, rewards, resets, observations out as
  torch tensors) on N worlds, T threads, with zero actions (the policy holding its grasp).

``--warp-worlds 1024,4096`` adds the same two rows for MuJoCo Warp physics (``warp
physics``, ``warp env step``) on ``--warp-device`` (default: CUDA if there is one, else
Warp's CPU backend, which only shows that it runs). MuJoCo Warp keeps one geom type per
model, so those rows use the box objects only (cube and cuboids).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import mujoco  # noqa: E402
import torch  # noqa: E402


def _timed(fn, seconds: float) -> tuple[int, float]:
    fn()  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="anygrasp")
    p.add_argument("--hand", default="leap")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--worlds", default="1,8,32,128")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--warp-worlds", default="", help="MuJoCo Warp rows for these world counts")
    p.add_argument("--warp-device", help="Warp device (default: cuda if any, else cpu)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from training.envs import make_env

    worlds = [int(x) for x in args.worlds.split(",")]
    threads = [int(x) for x in args.threads.split(",")]
    over = {"hand": args.hand}
    if args.task == "anygrasp":  # the shipped grasp caches: no generation here
        over.update(per_family=2, grasps_base=30, grasps_rrt=300)
    records = []

    # baseline: one world, Python loop
    env = make_env(args.task, num_envs=1, nthread=1, **over)
    m, d = env.world(0)
    sub = env.substeps
    n, dt = _timed(lambda: mujoco.mj_step(m, d, nstep=sub), args.seconds)
    base = n / dt
    records.append({"method": "python loop", "worlds": 1, "threads": 1, "control_steps_s": base})

    for nw in worlds:
        for nt in threads:
            if nt > nw:
                continue
            env = make_env(args.task, num_envs=nw, nthread=nt, **over)
            zero = torch.zeros(nw, env.num_actions)
            n, dt = _timed(lambda env=env: env.backend.step(env.substeps), args.seconds)
            records.append(
                {
                    "method": "batch physics",
                    "worlds": nw,
                    "threads": nt,
                    "control_steps_s": n * nw / dt,
                }
            )
            n, dt = _timed(lambda env=env, zero=zero: env.step(zero), args.seconds)
            records.append(
                {"method": "env step", "worlds": nw, "threads": nt, "control_steps_s": n * nw / dt}
            )
            print(f"  {nw} worlds, {nt} threads done", file=sys.stderr, flush=True)

    for nw in [int(x) for x in args.warp_worlds.split(",") if x]:
        env = make_env(args.task, num_envs=nw, nthread=1, physics="warp",
                       physics_device=args.warp_device, **over,
                       **({"families": ("cube", "cuboid_ar2", "cuboid_ar3")}
                          if args.task == "anygrasp" else {}))  # fmt: skip
        zero = torch.zeros(nw, env.num_actions)
        dev = env.backend.device
        for method, fn in (
            ("warp physics", lambda env=env: env.backend.step(env.substeps)),
            ("warp env step", lambda env=env, zero=zero: env.step(zero)),
        ):
            n, dt = _timed(fn, args.seconds)
            records.append({"method": f"{method} ({dev})", "worlds": nw, "threads": 1,
                            "control_steps_s": n * nw / dt})  # fmt: skip
        print(f"  {nw} worlds on MuJoCo Warp ({dev}) done", file=sys.stderr, flush=True)

    print(f"\n### RL environment throughput ({args.task}, {args.hand}): control steps per second\n")
    print(
        f"One control step = 50 ms simulated = {sub} physics steps. Baseline: one world stepped "
        "from a Python loop in the same run.\n"
    )
    print("| method | worlds | threads | control steps/s | x baseline | x real time |")
    print("|---|---|---|---|---|---|")
    for r in records:
        r["x_baseline"] = r["control_steps_s"] / base
        print(
            f"| {r['method']} | {r['worlds']} | {r['threads']} | {r['control_steps_s']:,.0f} | "
            f"{r['x_baseline']:.2f} | {r['control_steps_s'] / 20:,.0f} |"
        )
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, mujoco {mujoco.__version__}")
    if args.json:
        from bench import write_json

        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
