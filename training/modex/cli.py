"""``dexteleop train modex`` (argparse wiring, registered in :data:`training.commands.TRAIN`;
torch is imported only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.commands import TRAIN, UsageError
from training.modex import add_train_arguments


def run_modex(args: argparse.Namespace) -> int:
    """Check the paths first (one line each), then explore and train."""
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {args.out} is a file, not a folder")
    if args.data is not None and not Path(args.data).with_suffix(".npz").is_file():
        raise UsageError(f"--data {args.data}: no {Path(args.data).with_suffix('.npz')}")
    from training.modex.pipeline import run_from_args

    run_from_args(args)
    return 0


TRAIN.register(
    "modex",
    help="MoDex: explore the simulated hand, train forward and inverse models",
    add_arguments=add_train_arguments,
    run=run_modex,
)
