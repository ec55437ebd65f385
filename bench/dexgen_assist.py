"""DexGen assisting suboptimal operators (DexterityGen Fig. 8), in simulation.

    .venv/bin/python bench/dexgen_assist.py --hand leap --episodes 100 --seed 0 \
        --noise 0.25 0.5 1.0 --guidance 0.1 0.3 0.6 1.0 [--slow 0.1] --json PATH

Operators built from the shipped Anygrasp expert pi (``training.rl.evaluate``): the noisy
operator pi(s) + U(-a, a) (``--noise``, in the policy's action units: a = 1 is a 0.3 rad
target residual) and the slow one, each step moving its targets only U(0, a) of the way to
pi's (``--slow``). Each operator drives the hand alone (``guidance`` null) and through DexGen
at every ``--guidance`` alpha, its joint targets turned into a keypoint command by forward
kinematics. Every configuration runs ``--episodes`` episodes of ``--episode-s`` simulated
seconds from the same seed (same objects, grasps, wrist orientations and disturbances).

Writes a list of records ``{operator, noise, slow, guidance, assisted, hold_s_mean,
goals_per_min, episodes, drops, ...}``; ``hold_s_mean`` is the mean time to drop (censored
at the episode length); ``goals_per_min`` counts goals over the fixed simulated time
(episodes x episode length), ``goals_per_alive_min`` over the time the object was held.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def run(args: argparse.Namespace) -> list[dict]:
    from controllers.dexgen.models import load_model, shipped_checkpoint
    from training.dexgen.assist import Assistant
    from training.rl.cli import shipped_policy
    from training.rl.evaluate import evaluate, make_eval_env
    from training.rl.ppo import Policy

    policy_path = Path(args.policy) if args.policy else shipped_policy("anygrasp", args.hand)
    model_path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(args.hand)
    over = Policy.env_overrides(policy_path)  # the expert's own env settings and physics
    env = make_eval_env(
        args.hand, args.episodes, args.seed, args.episode_s, nthread=args.threads, **over
    )
    # a model trained on other physics than the expert's is refused (CheckpointError)
    model, _ = load_model(model_path, hand=args.hand, physics=env.physics())
    policy = Policy(policy_path, env)
    operators = [("noisy", a, None) for a in args.noise] + [("slow", 0.0, b) for b in args.slow]
    records = []
    for kind, noise, slow in operators:
        for guidance in [None, *args.guidance]:
            env.rng = np.random.default_rng(args.seed)  # the same episodes for every run
            assistant = None
            if guidance is not None:
                assistant = Assistant(
                    model,
                    args.hand,
                    env.num_envs,
                    guidance=guidance,
                    steps=args.ddim_steps,
                    sample_every=args.sample_every,
                    seed=args.seed,
                )
            t0 = time.perf_counter()
            res = evaluate(
                env, policy, noise=noise, slow=slow, seed=args.seed, targets_fn=assistant
            )
            rec = {
                "operator": kind,
                "noise": noise,
                "slow": slow,
                "guidance": guidance,
                "assisted": guidance is not None,
                "hold_s_mean": res["time_to_drop_s_mean"],
                # goals over the fixed simulated time (episodes x episode_s), the paper's
                # measure: a policy that drops early has that time to reach none
                "goals_per_min": res["goals"] / (res["episodes"] * res["episode_s"] / 60.0),
                "goals_per_alive_min": res["goals_per_min"],
                "episodes": res["episodes"],
                "episode_s": res["episode_s"],
                "drops": res["drops"],
                "goals": res["goals"],
                "by_wrist": res["by_wrist"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            if assistant is not None:
                rec.update(assistant.summary())
            records.append(rec)
            print(
                f"{kind:5s} noise {noise:4.2f} slow {slow if slow is not None else '-':>4} "
                f"guidance {'-' if guidance is None else f'{guidance:.2f}':>4}: "
                f"hold {rec['hold_s_mean']:5.1f} s, goals/min {rec['goals_per_min']:.2f}, "
                f"drops {rec['drops']}/{rec['episodes']} ({rec['seconds']:.0f} s)",
                flush=True,
            )
    return records


def plot(records: list[dict], path: str | Path) -> None:
    """Hold time and goals per minute against guidance, one line per operator; the
    unassisted operator is the dashed line of the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ops = sorted({(r["operator"], r["noise"], r["slow"]) for r in records}, key=str)
    for i, (kind, noise, slow) in enumerate(ops):
        sel = [r for r in records if (r["operator"], r["noise"], r["slow"]) == (kind, noise, slow)]
        base = [r for r in sel if not r["assisted"]]
        ass = sorted((r for r in sel if r["assisted"]), key=lambda r: r["guidance"])
        label = f"noisy a={noise}" if kind == "noisy" else f"slow a={slow}"
        color = f"C{i}"
        for ax, key in zip(axes, ("hold_s_mean", "goals_per_min"), strict=True):
            ax.plot([r["guidance"] for r in ass], [r[key] for r in ass], "o-", color=color,
                    label=f"{label} + DexGen")  # fmt: skip
            if base:
                ax.axhline(base[0][key], color=color, ls="--", lw=1, label=f"{label} alone")
    axes[0].set_ylabel("mean time to drop, s")
    axes[1].set_ylabel("goals per minute (fixed time)")
    for ax in axes:
        ax.set_xlabel("guidance strength alpha")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("DexGen assisting suboptimal operators (LEAP, Anygrasp, simulation)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hand", default="leap")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, nargs="*", default=[0.5])
    p.add_argument("--slow", type=float, nargs="*", default=[])
    p.add_argument("--guidance", type=float, nargs="*", default=[0.1, 0.3, 0.6, 1.0])
    p.add_argument("--episode-s", type=float, default=20.0)
    p.add_argument("--ddim-steps", type=int, default=10)
    p.add_argument("--sample-every", type=int, default=2)
    p.add_argument("--checkpoint", help="DexGen model (default: the shipped one)")
    p.add_argument("--policy", help="expert policy.pt (default: the shipped anygrasp one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    p.add_argument("--plot", help="write a PNG of the records")
    p.add_argument("--replot", help="plot the records of this JSON file instead of running")
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), args.plot or "assist.png")
        return 0
    torch.set_num_threads(1)
    from assets.checkpoint import CheckpointError

    try:
        records = run(args)
    except CheckpointError as e:  # missing, damaged, another hand or other physics
        print(f"dexgen_assist: {e}", file=sys.stderr)
        return 2
    if args.plot:
        plot(records, args.plot)
    if args.json:
        from bench import write_json

        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
