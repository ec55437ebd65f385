"""``dexteleop data chaos-box`` and ``dexteleop train ndm|dexndm-residual`` (argparse
wiring, registered in :mod:`training.commands`; torch is imported only when they run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.commands import DATA, TRAIN

#: Where the rotation generalist's simulated rollouts are by default (`data generate`).
DEFAULT_SOURCE = Path("out/data/rotate_leap")


def add_chaos_box_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--robot",
        default="sim:dynamics=reality,chaos_box=20",
        help="the hand backend and its settings, as for `run` (default: the stand-in real "
        "hand in a simulated box of 20 soft balls; on hardware e.g. dynamixel:port=...)",
    )
    p.add_argument("--hand", default="leap")
    p.add_argument("--wrist", default=None, help="mount orientation (sim: palm_up, ...)")
    p.add_argument("--trajectories", type=int, default=100)
    p.add_argument("--steps", type=int, default=400, help="control steps per trajectory")
    p.add_argument(
        "--source",
        default=str(DEFAULT_SOURCE),
        help="rollouts of the rotation generalist to replay (`dexteleop data generate --task "
        "rotate --out DIR`)",
    )
    p.add_argument("--noise-prob", type=float, default=0.5)
    p.add_argument("--noise-std", type=float, default=0.01, help="rad per target step")
    p.add_argument("--settle", type=float, default=1.0, help="seconds held still first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="dataset folder (a rerun resumes it)")
    p.add_argument("--no-progress", action="store_true")


def run_chaos_box(args: argparse.Namespace) -> int:
    from assets.checkpoint import git_commit
    from devices.robots.base import robot_from_spec
    from training.dexndm.chaos_box import ChaosBoxConfig, collect, source_sequences

    cfg = ChaosBoxConfig(
        trajectories=args.trajectories,
        steps=args.steps,
        noise_prob=args.noise_prob,
        noise_std_rad=args.noise_std,
        settle_s=args.settle,
        seed=args.seed,
    )
    sequences = source_sequences(args.source)
    wrist = {} if args.wrist is None else {"wrist": args.wrist}
    robot = robot_from_spec(args.robot, args.hand, **wrist)
    robot.connect()
    try:
        meta = {
            "hand": args.hand,
            "rate_hz": robot.rate_hz,
            "robot": args.robot,
            "robot_report": robot.hand_report(),
            "physics": robot.physics(),
            "source": str(args.source),
            "source_trajectories": len(sequences),
            "config": cfg.__dict__,
            "commit": git_commit(),
        }
        counts = collect(robot, sequences, args.out, cfg, meta=meta, progress=not args.no_progress)
    finally:
        robot.disconnect()
    print(json.dumps(counts, indent=2))
    return 0


DATA.register(
    "chaos-box",
    help="DexNDM's chaos box: replay the rotation generalist's targets with noise on a hand "
    "among soft balls, for its dynamics model",
    add_arguments=add_chaos_box_arguments,
    run=run_chaos_box,
    user_errors=(FileNotFoundError,),
)


def add_ndm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hand", default="leap")
    p.add_argument("--data", nargs="+", required=True, help="dataset folder(s): trajectories")
    p.add_argument("--kind", choices=("joint_wise", "whole_hand"), default="joint_wise")
    p.add_argument("--init", default=None, help="a model to fine-tune (its shape is kept)")
    p.add_argument("--window", type=int, default=10)
    p.add_argument(
        "--effort",
        action="store_true",
        help="also predict the actuators' torques at t+1 (data with effort; a fine-tuned "
        "model keeps its --init's outputs)",
    )
    p.add_argument("--hidden", type=int, default=None, help="joint-wise 64, whole-hand 512")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--max-trajectories", type=int, default=None, help="the first N of each dataset only"
    )
    p.add_argument("--out", required=True, help="the model file (NAME.pt; NAME.pt.state resumes)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")


#: Default widths: the joint-wise model's per joint, the whole-hand model's (about the same
#: training throughput on 2 cores, BENCHMARKS.md "DexNDM").
DEFAULT_HIDDEN = {"joint_wise": 64, "whole_hand": 512}


def run_ndm(args: argparse.Namespace) -> int:
    from controllers.dexndm.ndm import NDMConfig
    from training.dexndm.ndm_train import NDMTrainConfig, train_ndm

    model = NDMConfig(
        kind=args.kind,
        window=args.window,
        hidden=args.hidden or DEFAULT_HIDDEN[args.kind],
        layers=args.layers,
        effort=args.effort,
    )
    cfg = NDMTrainConfig(
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        max_segments=args.max_trajectories,
        model=model,
    )
    rep = train_ndm(
        args.data,
        args.out,
        cfg,
        hand=args.hand,
        init=args.init,
        progress=not args.no_progress,
        resume=not args.no_resume,
    )
    summary = {k: rep[k] for k in ("kind", "val_before", "val", "seconds", "samples_per_s")}
    print(json.dumps(summary, indent=2))
    return 0


TRAIN.register(
    "ndm",
    help="DexNDM's neural dynamics model (joint-wise or whole-hand) from hand trajectories",
    add_arguments=add_ndm_arguments,
    run=run_ndm,
    user_errors=(FileNotFoundError,),
)


def add_residual_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hand", default="leap")
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        help="the base policy's simulated rollouts (`data generate --task rotate`)",
    )
    p.add_argument("--ndm", required=True, help="the target hand's dynamics model (train ndm)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--l2",
        type=float,
        default=0.03,
        help="penalty on the correction's size (its mean square over max-rad squared)",
    )
    p.add_argument("--max-rad", type=float, default=0.05, help="largest correction per joint")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument(
        "--history",
        type=int,
        default=None,
        help="steps of (q, target) the residual sees (default: its base policy's, from the "
        "rollouts' manifest)",
    )
    p.add_argument(
        "--horizon",
        type=int,
        default=1,
        help="steps the dynamics model is rolled on its own predictions per sample (1: the "
        "paper's one-step objective)",
    )
    p.add_argument(
        "--obs-noise",
        type=float,
        default=0.0,
        help="std (rad) of noise on the residual's observed joint angles and targets while "
        "training (0: none)",
    )
    p.add_argument(
        "--effort-weight",
        type=float,
        default=0.0,
        help="weight of the torque error at t+1 in the loss (a dynamics model trained with "
        "--effort, rollouts with effort; 0: angles only, the paper's objective)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="the residual policy file")
    p.add_argument("--no-progress", action="store_true")


def run_residual(args: argparse.Namespace) -> int:
    from controllers.dexndm.residual import ResidualConfig
    from training.dexndm.residual_train import ResidualTrainConfig, train_residual

    cfg = ResidualTrainConfig(
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        l2=args.l2,
        seed=args.seed,
        threads=args.threads,
        model=ResidualConfig(hidden=args.hidden, max_rad=args.max_rad),
        history=args.history,
        horizon=args.horizon,
        obs_noise_rad=args.obs_noise,
        effort_weight=args.effort_weight,
    )
    rep = train_residual(
        args.data, args.ndm, args.out, cfg, hand=args.hand, progress=not args.no_progress
    )
    print(json.dumps({k: rep[k] for k in ("ndm_kind", "val_before", "val", "seconds")}, indent=2))
    return 0


def add_ensemble_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "residuals",
        nargs="+",
        help="residual policies trained alike but for their seed (train dexndm-residual --seed)",
    )
    p.add_argument("--hand", default="leap")
    p.add_argument("--out", required=True, help="the ensemble residual file")


def run_ensemble(args: argparse.Namespace) -> int:
    from controllers.dexndm.residual import ensemble, load_residual, save_residual

    model, meta = ensemble([load_residual(r, hand=args.hand) for r in args.residuals])
    meta["member_files"] = [str(r) for r in args.residuals]
    save_residual(args.out, model, meta)
    print(json.dumps({"out": args.out, "members": meta["members"]}, indent=2))
    return 0


def add_blend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "residuals",
        nargs="+",
        help="residual policies of one base policy, trained for different objectives or "
        "through different dynamics models (e.g. angles only, and with --effort-weight)",
    )
    p.add_argument(
        "--weights",
        type=float,
        nargs="+",
        required=True,
        help="each residual's weight in the correction sent, in order",
    )
    p.add_argument("--hand", default="leap")
    p.add_argument("--out", required=True, help="the blended residual file")


def run_blend(args: argparse.Namespace) -> int:
    from controllers.dexndm.residual import blend, load_residual, save_residual

    model, meta = blend([load_residual(r, hand=args.hand) for r in args.residuals], args.weights)
    meta["member_files"] = [str(r) for r in args.residuals]
    save_residual(args.out, model, meta)
    # the weights as given (the file keeps them with each member's cap folded in)
    print(json.dumps({"out": args.out, "weights": args.weights, "cap_rad": model.cfg.max_rad}))
    return 0


def add_select_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("residuals", nargs="+", help="the candidate residual policies")
    p.add_argument("--hand", default="leap")
    p.add_argument("--wrist", default="palm_up")
    p.add_argument("--object", default="cube")
    p.add_argument(
        "--robot",
        default="sim:dynamics=reality",
        help="the hand backend they run on, as for `run` (default: the stand-in real hand; "
        "one that simulates the object: an episode reads its pose)",
    )
    p.add_argument(
        "--axes", nargs="+", default=["+z", "-z"], help="palm axes, written z+ z- (or --axes=+z)"
    )
    p.add_argument("--episodes", type=int, default=20, help="episodes per axis and candidate")
    p.add_argument("--episode-s", type=float, default=20.0)
    p.add_argument(
        "--seed",
        type=int,
        default=100,
        help="the episodes' draw (the same for every candidate; pick one no reported "
        "figure used, so that the choice can be confirmed on others)",
    )
    p.add_argument("--generalist", default="", help="the base policy (default: the shipped)")
    p.add_argument(
        "--no-direct",
        action="store_true",
        help="do not let the generalist alone compete (a residual is always chosen)",
    )
    p.add_argument(
        "--scales",
        nargs="+",
        type=float,
        default=[1.0],
        help="residual scales each candidate also runs at (e.g. 0.5 1); the chosen one is "
        "baked into the written file's cap",
    )
    p.add_argument("--out", required=True, help="the chosen residual, written here")
    p.add_argument("--json", help="the report (every candidate's records) as JSON")


def run_select(args: argparse.Namespace) -> int:
    from assets.atomic import write_atomic
    from controllers.dexndm.residual import load_residual, save_residual
    from devices.tick import palm_axis
    from training.dexndm.select import SelectConfig, select_residual

    axes = [palm_axis(a) for a in args.axes]
    cfg = SelectConfig(
        hand=args.hand,
        wrist=args.wrist,
        object=args.object,
        robot=args.robot,
        axes=tuple(axes),
        episodes=args.episodes,
        episode_s=args.episode_s,
        seed=args.seed,
        generalist=args.generalist,
        direct=not args.no_direct,
        scales=tuple(args.scales),
    )
    report = select_residual(args.residuals, cfg, progress=lambda line: print(line, flush=True))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.json, json.dumps(report, indent=2))
    if report["chosen"] is None:
        print(f"the generalist alone turned the object fastest: no residual written to {args.out}")
        return 0
    model, meta = load_residual(report["chosen"], hand=args.hand)
    meta["selection"] = report
    if report["scale"] != 1.0:  # the chosen scale in the file: the controller's 1 sends it
        meta["selection"]["cap_before_scale"] = model.cfg.max_rad
        model = model.scaled(report["scale"])
    save_residual(args.out, model, meta)
    print(json.dumps({"out": args.out, "chosen": report["chosen"], "scale": report["scale"]}))
    return 0


TRAIN.register(
    "dexndm-select",
    help="choose among DexNDM residuals by running each (and the generalist alone) for the "
    "same rotation episodes on a simulated hand with the object (the stand-in by default)",
    add_arguments=add_select_arguments,
    run=run_select,
    user_errors=(FileNotFoundError, ValueError),
)


TRAIN.register(
    "dexndm-ensemble",
    help="one DexNDM residual averaging several trained alike but for their seed",
    add_arguments=add_ensemble_arguments,
    run=run_ensemble,
    user_errors=(FileNotFoundError, ValueError),
)


TRAIN.register(
    "dexndm-blend",
    help="one DexNDM residual sending a weighted sum of residuals trained for different "
    "objectives (e.g. angles only, and angles and torques)",
    add_arguments=add_blend_arguments,
    run=run_blend,
    user_errors=(FileNotFoundError, ValueError),
)


TRAIN.register(
    "dexndm-residual",
    help="DexNDM's residual policy, trained through a hand's dynamics model on the base "
    "policy's simulated rollouts",
    add_arguments=add_residual_arguments,
    run=run_residual,
    user_errors=(FileNotFoundError,),
)
