"""``dexteleop train rl`` (argparse wiring, registered in :data:`training.commands.TRAIN`;
heavy imports happen only when it runs), and the options and shipped policies that
``dexteleop data generate`` (:mod:`training.datagen.cli`) shares."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from training.commands import TRAIN
from training.envs import RANDOMIZATION, TASKS
from training.rl import SCALES

log = logging.getLogger(__name__)

#: Where ``train rl`` puts a run when --out is not given.
DEFAULT_RUNS = Path("out/rl")


def shipped_policy(task: str, hand: str) -> Path:
    """The shipped demo-scale policy of ``task`` and ``hand`` (``assets/checkpoints/rl``)."""
    from assets import CHECKPOINTS_DIR  # not at import: the CLI starts without MuJoCo

    return CHECKPOINTS_DIR / "rl" / f"{task}_{hand}.pt"


def add_physics_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--physics",
        choices=("batch", "warp"),
        help="batch: mujoco.batch on CPU threads (default); warp: MuJoCo Warp on a GPU "
        "(one object shape per run: pick --families of one shape)",
    )
    p.add_argument("--physics-device", help="MuJoCo Warp device (default: cuda if any, else cpu)")
    p.add_argument(
        "--physics-model",
        metavar="NAME",
        help="the hand's simulated physics (assets.physics): its actuator model by default "
        "('servo'), or 'menagerie' (the published model at 2 ms)",
    )
    p.add_argument(
        "--families",
        nargs="+",
        metavar="FAMILY",
        help="object families of the tasks with objects (anygrasp, rotate; default: the "
        "task's; see training.envs.objects)",
    )
    p.add_argument(
        "--axes",
        nargs="+",
        metavar="AXIS",
        help="rotate: the commanded axes, drawn per episode (x+ x- y+ y- z+ z-, any, or a tilt "
        "between two: A>B:DEG, e.g. 'x->y-:90' with --set tilt_keep=0.5 tilt_rate=0.15 to turn "
        "the axis as far as half the episodes keep turning the object that fast)",
    )
    p.add_argument(
        "--wrists",
        nargs="+",
        metavar="WRIST",
        help="rotate: the wrist orientations, drawn per episode (palm_up, palm_down, base_up, "
        "base_down, thumb_up, thumb_down, random, or a tilt between two: A>B:DEG, e.g. "
        "'palm_up>base_up:90' with --set tilt_keep=0.5 to tilt as far as half the episodes "
        "are kept)",
    )
    p.add_argument(
        "--axis-flip-s",
        type=float,
        default=None,
        metavar="S",
        help="rotate: an operator switching axes: each episode starts about the first of --axes "
        "and switches to the next every S seconds",
    )
    p.add_argument(
        "--gait",
        action="store_true",
        help="rotate: the shipped periodic finger gait of each wrist and axis as the reference "
        "the policy corrects (assets/gaits; `dexteleop train gait` finds one)",
    )


def add_randomization_argument(p: argparse.ArgumentParser, default: str | None = "on") -> None:
    """``--randomization``: the physics randomization of the rollouts
    (:meth:`training.envs.base.Randomization.named`), for every command that rolls
    policies out."""
    p.add_argument(
        "--randomization",
        choices=RANDOMIZATION,
        default=default,
        help="physics randomization of the rollouts: on (as the policies are trained), "
        "no-force (all but the random pushes on the object), off (nominal physics)"
        + ("" if default else "; default: the task's own (on)"),
    )


def physics_overrides(args: argparse.Namespace) -> dict:
    over: dict = {}
    if args.physics is not None:
        over["physics"] = args.physics
    if args.physics_device is not None:
        over["physics_device"] = args.physics_device
    if args.physics_model is not None:
        over["physics_model"] = args.physics_model
    from training.rl.ppo import uses_grasp_caches

    if args.families:
        if not uses_grasp_caches(args.task):
            raise ValueError(f"--families is for the tasks with objects, not {args.task}")
        over["families"] = tuple(args.families)
    for name in ("axes", "wrists"):
        values = getattr(args, name, None)
        if values:
            if args.task != "rotate":
                raise ValueError(f"--{name} is for the rotate task")
            over[name] = tuple(values)
    if getattr(args, "gait", False):
        if args.task != "rotate":
            raise ValueError("--gait is for the rotate task")
        over["gait"] = True
    if getattr(args, "axis_flip_s", None) is not None:
        if args.task != "rotate":
            raise ValueError("--axis-flip-s is for the rotate task")
        over["axis_flip_s"] = float(args.axis_flip_s)
    return over


def add_rl_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=tuple(TASKS), default="anygrasp")
    p.add_argument("--hand", default="leap")
    p.add_argument("--scale", choices=SCALES, default="demo")
    p.add_argument(
        "--out", help="run folder: checkpoint.pt, policy.pt, tb/ (default out/rl/TASK_HAND_SCALE)"
    )
    p.add_argument("--iterations", type=int, help="PPO iterations (default: the scale's)")
    add_randomization_argument(p, default=None)
    p.add_argument("--envs", type=int, help="parallel worlds (default: the scale's)")
    p.add_argument("--threads", type=int, help="CPU threads stepping the worlds")
    p.add_argument(
        "--action-mode",
        choices=("reference", "delta"),
        help="reference: residuals about the task's reference targets (default); delta: "
        "target changes (a = 0 holds)",
    )
    p.add_argument("--minutes", type=float, help="stop (and save) after this long")
    p.add_argument(
        "--learning-rate",
        type=float,
        help="PPO's starting learning rate (default: the scale's; adapted to --desired-kl)",
    )
    p.add_argument(
        "--desired-kl",
        type=float,
        help="the policy change per update the adaptive learning rate aims at (default: the "
        "scale's, 0.01; smaller for fine-tuning a trained policy)",
    )
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="other task settings, fields of the task's config (e.g. rotate: "
        "penalty_scale=0.1 residual_scale_rad=0.5)",
    )
    p.add_argument(
        "--init-std",
        type=float,
        help="the policy's initial action noise (default: the scale's for the task)",
    )
    p.add_argument(
        "--init",
        metavar="POLICY",
        help="a new run starts from this policy.pt's actor (its action noise and observation "
        "layout included; e.g. another axis's specialist) instead of a zero action head; "
        "the critic starts fresh. A rotation generalist (rotate): PPO goes on from it, its "
        "own network the actor on its own observation; the run also writes generalist.pt",
    )
    p.add_argument(
        "--critic-warmup",
        type=int,
        metavar="N",
        help="with --init: the first N iterations train the fresh critic only, the actor "
        "held (default 50)",
    )
    p.add_argument(
        "--anchor",
        type=float,
        metavar="FRACTION",
        help="with --init: after each policy update the actor's weights move this fraction "
        "back toward the ones it started from (e.g. 0.01), bounding the fine-tune's drift",
    )
    p.add_argument(
        "--snapshot-every",
        type=int,
        metavar="N",
        help="also export the actor every N iterations (snapshots/policy_itN.pt, and "
        "generalist_itN.pt), to evaluate and stop at",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="learner device: cpu, cuda (default: cuda when available)")
    p.add_argument("--grasp-cache", help="folder for generated grasp caches (default out/grasps)")
    p.add_argument(
        "--no-resume", action="store_true", help="start over even if a checkpoint exists"
    )
    p.add_argument(
        "--ship", action="store_true", help="copy the final policy into assets/checkpoints/rl"
    )
    add_physics_arguments(p)


def task_settings(task: str, items: list[str]) -> dict:
    """``["penalty_scale=0.1", ...]`` typed as the fields of ``task``'s config."""
    from devices.spec import typed_options
    from training.envs import task_classes

    raw = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        raw[key.strip()] = value.strip()
    return typed_options(f"task {task}", task_classes(task)[1], raw)


def run_rl(args: argparse.Namespace) -> int:
    import dataclasses
    import shutil

    from training.rl.ppo import scale_preset, train, uses_grasp_caches

    out = Path(args.out or DEFAULT_RUNS / f"{args.task}_{args.hand}_{args.scale}")
    env_over: dict = {}
    if args.envs is not None:
        env_over["num_envs"] = args.envs
    if args.threads is not None:
        env_over["nthread"] = args.threads
    if args.action_mode is not None:
        env_over["action_mode"] = args.action_mode
    if args.grasp_cache is not None and uses_grasp_caches(args.task):
        env_over["grasp_cache"] = args.grasp_cache
    env_over.update(physics_overrides(args))
    env_over.update(task_settings(args.task, args.set))
    if args.randomization is not None:
        from training.envs.base import Randomization

        env_over["dr"] = Randomization.named(args.randomization)
    _, settings = scale_preset(args.scale, args.task)
    changes = {}
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    if args.minutes is not None:
        changes["max_minutes"] = args.minutes
    if args.init_std is not None:
        changes["init_std"] = args.init_std
    if args.learning_rate is not None:
        changes["learning_rate"] = args.learning_rate
    if args.desired_kl is not None:
        changes["desired_kl"] = args.desired_kl
    if args.anchor is not None:
        changes["anchor"] = args.anchor
    if args.snapshot_every is not None:
        changes["snapshot_every"] = args.snapshot_every
    settings = dataclasses.replace(settings, **changes)
    res = train(
        args.task,
        scale=args.scale,
        hand=args.hand,
        out=out,
        seed=args.seed,
        resume=not args.no_resume,
        env_overrides=env_over,
        settings=settings,
        device=args.device,
        init=args.init,
        critic_warmup=args.critic_warmup,
    )
    last = res.curve[-1] if res.curve else {}
    print(
        json.dumps(
            {
                "out": str(out),
                "iterations": res.iterations,
                "env_steps": res.env_steps,
                "seconds": round(res.seconds, 1),
                "last": last,
            },
            indent=2,
        )
    )
    if args.ship:
        dst = shipped_policy(args.task, args.hand)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "policy.pt", dst)
        print(f"shipped {dst}")
    return 0


TRAIN.register(
    "rl",
    help=f"PPO in parallel simulated worlds (tasks: {', '.join(TASKS)})",
    add_arguments=add_rl_arguments,
    run=run_rl,
)


def add_gait_arguments(p: argparse.ArgumentParser) -> None:
    from training.rl.gait_search import add_gait_arguments as add

    add(p)


def run_gait(args: argparse.Namespace) -> int:
    from training.rl.gait_search import run_gait as run

    return run(args)


TRAIN.register(
    "gait",
    help="search a periodic finger gait that turns the object (the rotate task's reference)",
    add_arguments=add_gait_arguments,
    run=run_gait,
    user_errors=(ValueError,),
)


def add_generalist_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specialists", nargs="*", help="rotate policy.pt files (none with --refit)")
    p.add_argument("--hand", default="leap")
    p.add_argument("--out", help="generalist file (default out/rl/rotate_generalist_HAND.pt)")
    p.add_argument("--episodes", type=int, default=64, help="per specialist, in parallel")
    p.add_argument("--rounds", type=int, default=1, help="batches of --episodes per specialist")
    p.add_argument(
        "--flip-s",
        type=float,
        default=0.0,
        help="roll the specialists out together, half the episodes switching axis (and "
        "specialist) every FLIP_S seconds, so the generalist reverses when the operator "
        "switches axes (0: one specialist per episode)",
    )
    add_randomization_argument(p)
    p.add_argument(
        "--dagger-rounds",
        type=int,
        default=0,
        help="DAgger rounds after cloning: the generalist drives, the specialists label",
    )
    p.add_argument("--dagger-epochs", type=int, default=4, help="fine-tuning epochs per round")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument(
        "--history", type=int, default=10, help="T, steps of (q, target) the generalist sees"
    )
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument(
        "--axis-weight",
        nargs="+",
        default=[],
        metavar="AXIS=W",
        help="weigh the rows commanded about AXIS W times in the loss (e.g. z+=2)",
    )
    p.add_argument(
        "--save-data",
        action="store_true",
        help="keep the collected rows next to the generalist (OUT.data.npz) for --refit",
    )
    p.add_argument(
        "--refit",
        metavar="GENERALIST",
        help="no rollouts: fit a new net to the rows GENERALIST was distilled from (saved with "
        "--save-data), with this command's --hidden --blocks --epochs --axis-weight --seed",
    )
    p.add_argument(
        "--warm",
        action="store_true",
        help="with --refit: start from GENERALIST's own net (its size) and train --epochs more",
    )
    p.add_argument(
        "--dagger-from",
        metavar="GENERALIST",
        help="no cloning: --dagger-rounds more DAgger rounds starting from GENERALIST's net "
        "(its size and history), the specialists named labelling; a run cut off goes on "
        "from its last stage, OUT_snapshots/daggerN.pt",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ship", action="store_true", help="copy the result into assets/checkpoints/rl")


def _axis_weights(items: list[str]) -> dict[str, float]:
    from training.rl.distill import check_axis_weights

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            check_axis_weights({name: float(value)})
            out[name] = float(value)
        except ValueError as e:
            raise SystemExit(f"--axis-weight {item!r}: expected AXIS=W, e.g. z+=2 ({e})") from None
    return out


def run_generalist(args: argparse.Namespace) -> int:
    import shutil

    from training.rl.distill import DistillSettings, distill, refit, shipped_generalist

    if bool(args.refit) == bool(args.specialists):
        raise SystemExit("name the specialists to distil, or --refit GENERALIST (not both)")
    if args.warm and not args.refit:
        raise SystemExit("--warm continues a generalist named by --refit")
    if args.dagger_from and (args.refit or args.dagger_rounds < 1):
        raise SystemExit("--dagger-from goes on with --dagger-rounds >= 1 (not with --refit)")
    s = DistillSettings(
        episodes=args.episodes,
        rounds=args.rounds,
        flip_s=args.flip_s,
        randomization=args.randomization,
        dagger_rounds=args.dagger_rounds,
        dagger_epochs=args.dagger_epochs,
        epochs=args.epochs,
        history=args.history,
        hidden=args.hidden,
        blocks=args.blocks,
        axis_weight=_axis_weights(args.axis_weight),
        save_data=args.save_data,
        seed=args.seed,
        threads=args.threads,
    )
    out = Path(args.out or DEFAULT_RUNS / f"rotate_generalist_{args.hand}.pt")
    if args.refit:
        rep = refit(args.refit, out, s, warm=args.warm)
    else:
        rep = distill(args.specialists, args.hand, out, s, dagger_from=args.dagger_from)
    last = rep["curve"][-1] if rep["curve"] else {}
    print(
        json.dumps(
            {
                "out": str(out),
                "transitions": rep["transitions"],
                "specialists": [
                    {k: sp[k] for k in ("path", "kept", "dropped", "rad_s_mean")}
                    for sp in rep["specialists"]
                ],
                "last": last,
            },
            indent=2,
        )
    )
    if args.ship:
        dst = shipped_generalist(args.hand)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, dst)
        shutil.copyfile(out.with_suffix(".json"), dst.with_suffix(".json"))
        print(f"shipped {dst}")
    return 0


TRAIN.register(
    "rotation-generalist",
    help="distil rotate specialists into one generalist by behaviour cloning (DexNDM 3.2)",
    add_arguments=add_generalist_arguments,
    run=run_generalist,
    user_errors=(ValueError,),
)


def add_rotate_mpc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hand", default="leap")
    p.add_argument("--out", help="run folder (default out/rl/rotate_HAND_mpc)")
    p.add_argument("--axes", nargs="+", default=["z+", "z-"], help="commanded axes (rotate's)")
    p.add_argument("--wrists", nargs="+", default=["palm_up"])
    p.add_argument("--families", nargs="+", default=["cube"])
    p.add_argument("--worlds", type=int, default=8, help="episodes run in parallel")
    p.add_argument("--rounds", type=int, default=12, help="DAgger rounds")
    p.add_argument("--steps", type=int, default=100, help="control steps per round")
    p.add_argument("--epochs", type=int, default=30, help="behaviour-cloning epochs per round")
    p.add_argument(
        "--mpc",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="planner settings (training.rl.mpc.MPCSettings: samples=64 horizon=8 "
        "noise_rad=0.15 ...)",
    )
    p.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="other rotate settings"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grasp-cache", help="folder for generated grasp caches (default out/grasps)")
    p.add_argument(
        "--ship", action="store_true", help="copy the student into assets/checkpoints/rl"
    )


def run_rotate_mpc(args: argparse.Namespace) -> int:
    import shutil

    from assets.objects import FAMILIES
    from devices.spec import typed_options
    from training.rl.evaluate import DEMO_OBJECTS
    from training.rl.mpc import MPCSettings
    from training.rl.mpc_distill import DaggerSettings, train_dagger

    raw = dict(item.partition("=")[::2] for item in args.mpc)
    mpc = MPCSettings(**typed_options("MPC", MPCSettings, raw))
    over = {**DEMO_OBJECTS, **task_settings("rotate", args.set)}
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown object families {unknown}; known: {', '.join(FAMILIES)}")
    over.update(axes=tuple(args.axes), wrists=tuple(args.wrists), families=tuple(args.families))
    if args.grasp_cache is not None:
        over["grasp_cache"] = args.grasp_cache
    s = DaggerSettings(
        worlds=args.worlds,
        rounds=args.rounds,
        steps=args.steps,
        epochs=args.epochs,
        seed=args.seed,
        mpc=mpc,
    )
    out = Path(args.out or DEFAULT_RUNS / f"rotate_{args.hand}_mpc")
    rep = train_dagger(hand=args.hand, out=out, env_overrides=over, settings=s)
    print(json.dumps({"out": str(out), "last": rep["rounds"][-1] if rep["rounds"] else {}}))
    if args.ship:
        dst = shipped_policy("rotate", args.hand)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "policy.pt", dst)
        print(f"shipped {dst}")
    return 0


TRAIN.register(
    "rotate-mpc",
    help="rotate specialists distilled (DAgger) from a sampling-MPC expert that plans "
    "with the simulator",
    add_arguments=add_rotate_mpc_arguments,
    run=run_rotate_mpc,
    user_errors=(ValueError,),
)
