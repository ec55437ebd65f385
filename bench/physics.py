"""Today's physics and the actuator model side by side: speed and grasp holding, one run.

    .venv/bin/python bench/physics.py --hand leap [--per-object 40] [--env-seconds 4]
        [--variants all|named] [--json PATH]

Every record is one physics of the hand (``assets.physics``): the Menagerie model as
published at 2 ms (``baseline: true``), the same at longer timesteps, the hand's actuator
model at 2, 5 and 10 ms, solver variants of it, and ``servo`` (the actuator model with its
chosen solver settings). ``default: true`` marks the physics the app and the trainers use
(``assets.physics.DEFAULT_PHYSICS``). For each:

- ``hold_rate``: the grasp hold test (``training.grasps.generate.hold_test``'s protocol:
  start at the grasp with the squeeze targets, gravity from a random direction, held = the
  object's centre moves < 2 cm in 1 s) on ``--per-object`` grasps of every grasp cache
  shipped for the hand (``assets/grasps/<hand>``), the same grasps and gravity for every
  physics;
- ``control_steps_per_s``: single-world control steps (50 ms of simulated time) per second
  of wall time holding grasps (the first cache's), one thread, Python in the loop;
- ``env_steps_per_s``: batched ``HandEnv.step`` (the anygrasp task, 64 worlds, 2 threads,
  zero actions) control steps per second;

both timed in ``--rounds`` round-robin passes over all the physics (median), so that a
machine whose load changes during the run slows every physics alike;
- ``timestep_s``, ``substeps``, ``grasps`` (how many were tested).

The records are printed as a Markdown table and, with ``--json``, written as a list.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from assets.physics import (  # noqa: E402
    BASELINE_PHYSICS,
    DEFAULT_PHYSICS,
    SERVO_PHYSICS,
    Physics,
    substeps,
)

RATE_HZ = 20.0
HOLD_S = 1.0
TOLERANCE_M = 0.02


def variants(hand, which: str) -> list[tuple[Physics, bool, bool]]:
    """(physics, baseline, default) to measure."""
    base = hand.physics(BASELINE_PHYSICS)
    default = hand.physics(SERVO_PHYSICS)  # the actuator model and its solver settings
    out = [(base.replace(name="menagerie 2 ms", timestep_s=0.002), True,
            DEFAULT_PHYSICS == BASELINE_PHYSICS)]  # fmt: skip
    if which == "all":
        for ms in (5, 10):
            out.append(
                (base.replace(name=f"menagerie {ms} ms", timestep_s=ms / 1000), False, False)
            )
        # the actuator model alone: the Menagerie model's friction cone and impratio
        plain = default.replace(cone=None, impratio=None)
        for ms in (2, 5, 10):
            out.append(
                (plain.replace(name=f"actuators {ms} ms", timestep_s=ms / 1000), False, False)
            )
        dt = default.solver.timestep_s
        tag = f"actuators {dt * 1000:g} ms"
        for cone, impratio in (("pyramidal", None), ("elliptic", 10.0), ("elliptic", 100.0)):
            if (cone, impratio) != (default.solver.cone, default.solver.impratio):
                name = f"{tag}, {cone} cone" + (f", impratio {impratio:g}" if impratio else "")
                out.append((default.replace(name=name, cone=cone, impratio=impratio), False, False))
        out += [
            (
                default.replace(name=f"{tag}, iterations 5/8", iterations=5, ls_iterations=8),
                False,
                False,
            ),
            (default.replace(name=f"{tag}, Euler", integrator="euler"), False, False),
        ]
    out.append((default.replace(name=SERVO_PHYSICS), False, DEFAULT_PHYSICS == SERVO_PHYSICS))
    return out


def grasp_sets(hand_name: str, per_object: int, seed: int):
    """(object spec, grasps, gravity directions) for every shipped cache of the hand."""
    from assets.objects import make_instance
    from training.grasps.cache import SHIPPED
    from training.grasps.generate import GraspSet

    out = []
    folder = SHIPPED / hand_name
    rng = np.random.default_rng(seed)
    for path in sorted(folder.glob("*.npz")):
        gs = GraspSet.load(path)
        m = gs.meta
        family, scale = m["object"].rsplit("_s", 1)
        obj = make_instance(family, float(scale))
        if list(obj.size) != list(m["size"]):
            raise SystemExit(f"{path}: object {m['object']} does not match its size {m['size']}")
        idx = np.sort(rng.choice(len(gs), size=min(per_object, len(gs)), replace=False))
        out.append((obj, gs.subset(idx), rng.normal(size=(len(idx), 3))))
    if not out:
        raise SystemExit(f"no shipped grasp caches in {folder}")
    return out


def hold(hand, physics: Physics, sets) -> tuple[float, int, float]:
    """Hold rate, grasps tested, and hand-hand contacts per control step on ``physics``."""
    from training.grasps.generate import GraspGenerator

    held = tested = steps = self_contacts = 0
    for obj, gs, gravity in sets:
        gen = GraspGenerator(hand, obj, physics=physics)
        m, d = gen.model, gen.data
        n_sub = substeps(RATE_HZ, m.opt.timestep)
        hand_geom = (m.geom_bodyid != gen.obj_body) & (m.geom_bodyid != 0)
        for i in range(len(gs)):
            start = gen.start_hold(gs, i, gravity[i])
            ok = True
            for _ in range(round(HOLD_S * RATE_HZ)):
                mujoco.mj_step(m, d, nstep=n_sub)
                steps += 1
                c = d.contact[: d.ncon]
                self_contacts += int(np.sum(hand_geom[c.geom1] & hand_geom[c.geom2]))
                if not np.all(np.isfinite(d.qpos)):
                    ok = False
                    break
            ok = ok and np.linalg.norm(d.xpos[gen.obj_body] - start) < TOLERANCE_M
            held += ok
            tested += 1
    return held / tested, tested, self_contacts / steps


class SingleWorld:
    """One world holding grasps of the first cache, stepped a control step at a time."""

    def __init__(self, hand, physics: Physics, sets) -> None:
        from training.grasps.generate import GraspGenerator

        obj, self.gs, self.gravity = sets[0]
        self.gen = GraspGenerator(hand, obj, physics=physics)
        self.n_sub = substeps(RATE_HZ, self.gen.model.opt.timestep)
        self.i = 0

    def rate(self, seconds: float) -> float:
        m, d = self.gen.model, self.gen.data
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            if steps % round(HOLD_S * RATE_HZ) == 0:  # the next grasp, from rest
                k = self.i % len(self.gs)
                self.i += 1
                self.gen.start_hold(self.gs, k, self.gravity[k])
            mujoco.mj_step(m, d, nstep=self.n_sub)
            steps += 1
        return steps / (time.perf_counter() - t0)


class BatchedEnv:
    def __init__(self, hand_name: str, physics: Physics, worlds: int, threads: int) -> None:
        import torch

        from training.envs import make_env

        self.env = make_env(
            "anygrasp", hand=hand_name, num_envs=worlds, nthread=threads,
            physics_model=physics, seed=0,
        )  # fmt: skip
        self.actions = torch.zeros(worlds, self.env.num_actions)
        self.env.reset()
        self.env.step(self.actions)

    def rate(self, seconds: float) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            self.env.step(self.actions)
            n += 1
        return n * self.env.num_envs / (time.perf_counter() - t0)


def round_robin(runners: list, seconds: float, rounds: int) -> list[float]:
    """Each runner's median rate over ``rounds`` passes that visit every runner in turn."""
    rates: list[list[float]] = [[] for _ in runners]
    for _ in range(rounds):
        for i, r in enumerate(runners):
            rates[i].append(r.rate(seconds))
    return [float(np.median(x)) for x in rates]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hand", default="leap")
    p.add_argument("--per-object", type=int, default=40, help="grasps per shipped cache")
    p.add_argument("--seconds", type=float, default=1.5, help="per timing of one world")
    p.add_argument("--env-seconds", type=float, default=1.5, help="per env timing; 0: no env")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--env-worlds", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", choices=("all", "named"), default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from assets.hands import load_hand

    hand = load_hand(args.hand)
    sets = grasp_sets(args.hand, args.per_object, args.seed)
    t_start = time.perf_counter()
    chosen = variants(hand, args.variants)
    holds = []
    for physics, _, _ in chosen:
        holds.append(hold(hand, physics, sets))
        print(f"{physics.name}: hold {holds[-1][0]:.3f}", flush=True)
    single = round_robin(
        [SingleWorld(hand, ph, sets) for ph, _, _ in chosen], args.seconds, args.rounds
    )
    batched: list[float | None] = [None] * len(chosen)
    if args.env_seconds > 0:
        envs = [BatchedEnv(args.hand, ph, args.env_worlds, args.threads) for ph, _, _ in chosen]
        batched = round_robin(envs, args.env_seconds, args.rounds)
    records = []
    for (physics, baseline, default), (rate, tested, selfc), cps, eps in zip(
        chosen, holds, single, batched, strict=True
    ):
        dt = physics.solver.timestep_s or 0.002
        records.append(
            {
                "name": physics.name,
                "baseline": baseline,
                "default": default,
                "timestep_s": dt,
                "substeps": substeps(RATE_HZ, dt),
                "control_steps_per_s": round(cps, 1),
                "env_steps_per_s": None if eps is None else round(eps, 1),
                "hold_rate": round(rate, 4),
                "grasps": tested,
                "self_contacts_per_step": round(selfc, 3),
            }
        )
    base = next(r for r in records if r["baseline"])
    print(
        f"\n{args.hand}: {records[0]['grasps']} grasps from {len(sets)} caches, "
        f"{args.per_object} per cache; speed: median of {args.rounds} round-robin passes; env: "
        f"anygrasp, {args.env_worlds} worlds, {args.threads} threads; {platform.machine()}, "
        f"{os.cpu_count()} cores, "
        f"mujoco {mujoco.__version__}; {time.perf_counter() - t_start:.0f} s\n"
    )
    print("| physics | timestep | substeps | control steps/s | x baseline | env steps/s "
          "| x baseline | hold rate | vs baseline |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in records:
        env = r["env_steps_per_s"]
        env_x = (
            ""
            if env is None or not base["env_steps_per_s"]
            else f"{env / base['env_steps_per_s']:.2f}"
        )
        name = (
            r["name"]
            + (" (baseline)" if r["baseline"] else "")
            + (" (default)" if r["default"] else "")
        )
        print(
            f"| {name} | {r['timestep_s'] * 1000:g} ms | {r['substeps']} | "
            f"{r['control_steps_per_s']:,.0f} | "
            f"{r['control_steps_per_s'] / base['control_steps_per_s']:.2f} | "
            f"{'' if env is None else f'{env:,.0f}'} | {env_x} | {r['hold_rate']:.3f} | "
            f"{100 * (r['hold_rate'] - base['hold_rate']):+.1f} pts |"
        )
    if args.json:
        from assets.atomic import write_atomic

        write_atomic(Path(args.json), json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
