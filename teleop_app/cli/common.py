"""What the commands share: the one-line error, argument types, output checks, the
``--set`` parser and the session options every session command takes."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class CliError(Exception):
    """An error to print as one line and exit with status 2."""


def positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def output_path(path: str | None) -> Path | None:
    """Check an output file can be written before spending a run on it."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{path} is a directory, not a file")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot create the folder for {path}: {e.strerror or e}") from None
    if not p.parent.is_dir() or not os.access(p.parent, os.W_OK):
        raise CliError(f"cannot write to {p.parent}")
    return p


def control_threads() -> None:
    """A control process runs torch on one intra-op thread (``DEXTELEOP_TORCH_THREADS`` to
    change): planning batches are small, and on a 2-core machine a second torch thread
    only fights the loop, the renderer and the UI for the cores."""
    import torch

    try:
        n = int(os.environ.get("DEXTELEOP_TORCH_THREADS", "1"))
    except ValueError:
        raise CliError("DEXTELEOP_TORCH_THREADS must be a whole number") from None
    torch.set_num_threads(max(1, n))


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf}


def settings(pairs: list[str] | None) -> dict[str, Any]:
    """``["guidance=0.5", "mode=free"]`` -> {"guidance": 0.5, "mode": "free"}: each value as
    JSON if it parses (numbers, true/false, null), else text; ``nan`` and ``inf`` are numbers
    (for the setting's check to refuse as such)."""
    out: dict[str, Any] = {}
    for item in pairs or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CliError(f"--set {item!r}: expected NAME=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = _NON_FINITE.get(value.strip().lower(), value)
    return out


def check_controller(name: str, hand: str, options: dict[str, Any]) -> None:
    """Refuse an unknown controller, an unknown setting or a bad value (the check every
    controller config runs when it is built) before anything starts or loads."""
    from controllers import CONTROLLERS

    CONTROLLERS.config(name, **{"hand": hand, **options})


def session_config_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    """The session the shared options describe (``extra``: a command's own); the controller
    settings are checked first."""
    from teleop_app.configs import session_config

    options = settings(args.set)
    check_controller(args.controller, args.hand, options)
    return session_config(
        hand=args.hand,
        robot=args.robot,
        device=args.device,
        controller=args.controller,
        controller_options=options,
        wrist=args.wrist,
        obj=args.object,
        retarget_mode=args.retarget_mode,
        rate_hz=args.rate,
        fast=args.fast,
        arm=getattr(args, "arm", None) or "none",
        **extra,
    )


def add_robot_argument(p: argparse.ArgumentParser, default: str | None = "sim") -> None:
    """``--robot NAME[:key=value,...]``: the hand backend."""
    where = "default sim" if default == "sim" else "default: as last time"
    p.add_argument(
        "--robot",
        default=default,
        metavar="NAME[:key=value,...]",
        help=f"hand backend, e.g. sim:wrist=follow ({where}; see 'dexteleop robots')",
    )


def add_arm_argument(p: argparse.ArgumentParser, default: str | None = "none") -> None:
    """``--arm NAME[:key=value,...]``: the arm carrying the hand."""
    where = "default none" if default == "none" else "default: as last time"
    p.add_argument(
        "--arm",
        default=default,
        metavar="NAME[:key=value,...]",
        help="arm carrying the hand: none (the wrist mount), sim (a simulated Franka Panda "
        f"with the simulated hand), franka:host=IP ({where}; see 'dexteleop robots')",
    )


def check_robot(spec: str | None) -> None:
    """An unknown backend or a bad setting in ``spec``, refused before anything starts."""
    if spec is None:
        return
    import devices.robots  # noqa: F401  (registers the hand backends)
    from devices.robots.base import ROBOTS
    from devices.spec import parse_spec

    parse_spec(ROBOTS, spec)


def check_duration(args: argparse.Namespace) -> None:
    """At least one tick: ``--duration`` against ``--rate``."""
    if round(args.duration * args.rate) < 1:
        raise CliError(f"--duration {args.duration} is shorter than one tick at {args.rate} Hz")
