"""Evaluate the shipped Anygrasp policy: mean time to drop and goals reached per minute.

    .venv/bin/python bench/anygrasp_eval.py --hand leap --episodes 100 --seed 0 \
        [--noise a] [--slow a] [--episode-s 20] [--policy PATH] [--json PATH] [--video PATH]

Writes ``{episodes, time_to_drop_s_mean, goals_per_min, episode_s}`` (plus drops, goals,
noise). ``--noise a`` is the noisy operator pi(s) + U(-a, a) that DexGen's evaluation uses;
``--slow a`` the slow one, U(0, a) pi(s). ``--zero`` evaluates the do-nothing baseline
(targets held at the starting grasp), the floor any trained policy must clear;
``--reference`` the scripted expert (zero residual: targets jump to each new goal grasp's,
what ``dexteleop data generate --expert reference`` rolls out). Noise is in
the policy's action units: with its reference actions, a = 1 is a 0.3 rad target residual.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hand", default="leap")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--slow", type=float, default=None)
    p.add_argument("--episode-s", type=float, default=20.0)
    p.add_argument("--policy", help="policy.pt (default: the shipped assets/checkpoints/rl one)")
    p.add_argument("--zero", action="store_true", help="the do-nothing baseline instead")
    p.add_argument(
        "--reference",
        action="store_true",
        help="the scripted expert instead: targets go straight to each goal grasp's",
    )
    p.add_argument(
        "--goal-timeout",
        type=float,
        metavar="S",
        help="replace a goal not reached in S s by one near it (as data generation can)",
    )
    p.add_argument(
        "--physics-model",
        metavar="NAME",
        help="the hand's physics (assets.physics; default: the policy's, else the default)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    p.add_argument("--video")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from training.rl.cli import shipped_policy
    from training.rl.evaluate import evaluate, make_eval_env
    from training.rl.ppo import Policy

    if args.zero and args.reference:
        p.error("--zero and --reference are two different baselines: pick one")
    path = Path(args.policy) if args.policy else shipped_policy("anygrasp", args.hand)
    scripted = args.zero or args.reference
    over = {"action_mode": "reference"} if scripted else Policy.env_overrides(path)
    if args.goal_timeout is not None:
        over["goal_timeout_s"] = args.goal_timeout
    if args.physics_model is not None:
        over["physics_model"] = args.physics_model
    env = make_eval_env(
        args.hand, args.episodes, args.seed, args.episode_s, nthread=args.threads, **over
    )
    if args.reference:
        n = env.num_actions
        policy = lambda obs: torch.zeros(env.num_envs, n)  # noqa: E731
        name = "reference (scripted, no policy)"
    else:
        policy = None if args.zero else Policy(path, env)
        name = "hold (no policy)" if args.zero else str(path)
    res = evaluate(
        env,
        policy,
        noise=args.noise,
        slow=args.slow,
        hold=args.zero,
        seed=args.seed,
        video=args.video,
    )
    res["policy"] = name
    res["physics"] = env.sim_physics.name
    res["seed"] = args.seed
    res["goal_timeout_s"] = args.goal_timeout
    print(json.dumps(res, indent=2))
    if args.json:
        from bench import write_json

        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
