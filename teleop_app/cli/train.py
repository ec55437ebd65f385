"""``dexteleop train ...`` and ``dexteleop data generate``: the training commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from teleop_app.cli.common import CliError


def cmd_train(args: argparse.Namespace) -> int:
    if args.train_command == "modex":
        from training.modex.pipeline import run_from_args

        if args.out is not None:
            out = Path(args.out)
            if out.exists() and not out.is_dir():
                raise CliError(f"--out {args.out} is a file, not a folder")
        if args.data is not None and not Path(args.data).with_suffix(".npz").is_file():
            raise CliError(f"--data {args.data}: no {Path(args.data).with_suffix('.npz')}")
        run_from_args(args)
        return 0
    if args.train_command == "rl":
        from training.rl.cli import run_rl

        return run_rl(args)
    if args.train_command == "dexgen":
        from training.dexgen.cli import run_from_args as run_dexgen

        try:
            return run_dexgen(args)
        except (FileNotFoundError, ValueError) as e:
            raise CliError(str(e)) from e
    raise CliError(f"unknown training command {args.train_command!r}")


def cmd_data(args: argparse.Namespace) -> int:
    from training.rl.cli import run_generate

    try:
        return run_generate(args)
    except FileNotFoundError as e:
        raise CliError(str(e)) from e


def add_train_parser(sub: Any) -> None:
    tr = sub.add_parser("train", help="train a learned controller's models in simulation")
    trsub = tr.add_subparsers(dest="train_command", required=True)
    from training.modex import add_train_arguments as modex_arguments

    tm = trsub.add_parser(
        "modex", help="MoDex: explore the simulated hand, train forward and inverse models"
    )
    modex_arguments(tm)
    from training.rl.cli import add_rl_arguments

    trl = trsub.add_parser(
        "rl", help="PPO in parallel simulated worlds (anygrasp, free finger motion)"
    )
    add_rl_arguments(trl)
    from training.dexgen.cli import add_train_arguments as dexgen_arguments

    tdg = trsub.add_parser(
        "dexgen", help="DexGen: the keypoint-motion diffusion prior and inverse dynamics"
    )
    dexgen_arguments(tdg)
    tr.set_defaults(func=cmd_train)


def add_data_parser(sub: Any) -> None:
    from training.rl.cli import add_generate_arguments

    da = sub.add_parser("data", help="simulation datasets for DexGen")
    dasub = da.add_subparsers(dest="data_command", required=True)
    dg = dasub.add_parser("generate", help="roll out trained policies into a dataset")
    add_generate_arguments(dg)
    da.set_defaults(func=cmd_data)
