"""``dexteleop data generate``: roll trained policies (or the tasks' reference targets) out
into a DexGen dataset (argparse wiring, registered in :data:`training.commands.DATA`; torch
and the simulation are imported only when it runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.commands import DATA
from training.envs import TASKS
from training.rl.cli import (
    add_physics_arguments,
    add_randomization_argument,
    physics_overrides,
    shipped_policy,
)


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=tuple(TASKS), default="anygrasp")
    p.add_argument("--hand", default="leap")
    p.add_argument("--scale", choices=tuple(DATA_SCALES), default="demo")
    p.add_argument("--policy", help="policy.pt from `train rl` (default: the shipped one)")
    p.add_argument(
        "--expert",
        choices=("ppo", "reference"),
        default="ppo",
        help="ppo: the policy; reference: the task's reference targets with no correction "
        "(free_finger: straight to each goal's joints, a scripted expert with no object)",
    )
    p.add_argument(
        "--explore",
        type=float,
        default=0.0,
        metavar="RAD",
        help="smooth random joint-target offsets, spread up to RAD per episode (0: none)",
    )
    p.add_argument("--explore-tau", type=float, default=0.5, metavar="S")
    p.add_argument(
        "--goal-timeout",
        type=float,
        metavar="S",
        help="replace a goal not reached within S seconds by one near it (anygrasp: off by "
        "default; free_finger: 1.5 s by default)",
    )
    p.add_argument("--out", required=True, help="dataset folder (appended to if it exists)")
    p.add_argument("--transitions", type=int, help="stop once the dataset holds this many")
    p.add_argument("--envs", type=int, help="parallel worlds")
    p.add_argument("--threads", type=int)
    p.add_argument("--future", type=int, default=2, help="future keypoint steps T per transition")
    p.add_argument("--minutes", type=float, help="stop after this long")
    p.add_argument("--seed", type=int, default=0)
    add_randomization_argument(p)
    p.add_argument("--grasp-cache", help="folder for generated grasp caches")
    add_physics_arguments(p)


DATA_SCALES = {
    "smoke": {"num_envs": 8, "nthread": 1, "transitions": 500},
    "demo": {"num_envs": 96, "nthread": 2, "transitions": 1_200_000},
    "full": {"num_envs": 4096, "nthread": 0, "transitions": 100_000_000},
}


def run_generate(args: argparse.Namespace) -> int:
    import os

    import torch

    from training.datagen.generate import generate
    from training.envs import make_env
    from training.envs.base import Randomization
    from training.rl.distill import (
        rotation_env_overrides,
        rotation_policy,
        rotation_trained_settings,
        shipped_generalist,
    )
    from training.rl.ppo import Policy, uses_grasp_caches

    rotate = args.task == "rotate"
    if args.policy:
        policy_path = Path(args.policy)
    elif rotate:  # the generalist turns about every axis and wrist
        policy_path = shipped_generalist(args.hand)
    else:
        policy_path = shipped_policy(args.task, args.hand)
    if args.expert == "ppo" and not policy_path.is_file():
        how = (
            f"distil rotate specialists with `dexteleop train rotation-generalist --hand "
            f"{args.hand} --ship SPECIALIST.pt ...`"
            if rotate
            else f"train one with `dexteleop train rl --task {args.task} --hand {args.hand}`"
        )
        raise FileNotFoundError(f"no policy at {policy_path}: {how}, or pass --policy")
    sc = dict(DATA_SCALES[args.scale])
    n_tr = args.transitions or sc.pop("transitions")
    sc.pop("transitions", None)
    if args.envs:
        sc["num_envs"] = args.envs
    if args.threads:
        sc["nthread"] = args.threads
    if not sc["nthread"]:
        sc["nthread"] = os.cpu_count() or 1
    over = {"hand": args.hand, "seed": args.seed, **sc}
    if args.goal_timeout is not None:
        if not args.goal_timeout > 0:
            raise ValueError(f"--goal-timeout must be > 0 s, got {args.goal_timeout}")
        over["goal_timeout_s"] = args.goal_timeout
    if args.expert == "ppo":
        over.update((rotation_env_overrides if rotate else Policy.env_overrides)(policy_path))
        if rotate:  # the policy's axes, wrists and objects unless the command line says
            over.update(rotation_trained_settings(policy_path))
    if uses_grasp_caches(args.task):
        from training.rl.ppo import scale_preset

        env_kw, _ = scale_preset(args.scale, args.task)
        over.update(
            {
                k: v
                for k, v in env_kw.items()
                if k.startswith("grasps") or k in ("families", "per_family")
            }
        )
        if args.grasp_cache:
            over["grasp_cache"] = args.grasp_cache
    over.update(physics_overrides(args))
    over["dr"] = Randomization.named(args.randomization)  # the env records it (meta.env.dr)
    env = make_env(args.task, **over)
    if args.expert == "ppo":
        policy = (rotation_policy if rotate else Policy)(policy_path, env)
        policy_meta = {"policy": str(policy_path), "policy_meta": policy.meta}
    else:
        if env.cfg.action_mode != "reference":
            raise ValueError("--expert reference needs the env's reference action mode")
        zeros = torch.zeros(env.num_envs, env.num_actions)
        policy, policy_meta = (lambda obs: zeros), {}
    from dataclasses import asdict

    from assets.checkpoint import git_commit
    from training.rl.ppo import _jsonable

    counts = generate(
        env,
        policy,
        args.out,
        transitions=n_tr,
        future=args.future,
        expert=args.expert,
        explore_rad=args.explore,
        explore_tau_s=args.explore_tau,
        meta={
            **policy_meta,
            "scale": args.scale,
            "seed": args.seed,
            "commit": git_commit(),
            "env": _jsonable(asdict(env.cfg)),
        },
        max_seconds=None if args.minutes is None else 60 * args.minutes,
    )
    print(json.dumps(counts, indent=2))
    return 0


DATA.register(
    "generate",
    help="roll out trained policies into a dataset",
    add_arguments=add_generate_arguments,
    run=run_generate,
    user_errors=(FileNotFoundError,),
)
