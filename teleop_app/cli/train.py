"""``dexteleop train NAME`` and ``dexteleop data NAME``: the commands the training packages
register in :mod:`training.commands` (one subcommand each; nothing listed here)."""

from __future__ import annotations

import argparse
from typing import Any

from teleop_app.cli.common import CliError


def _runner(group: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from training.commands import UsageError

        command = group.get(getattr(args, group.dest))
        try:
            return int(command.run(args))
        except UsageError as e:
            raise CliError(str(e)) from e
        except command.user_errors as e:
            raise CliError(str(e)) from e

    return run


def add_parsers(sub: Any) -> None:
    """One parser per group (``train``, ``data``), one subparser per registered command."""
    from training import commands

    for group in commands.load():
        gp = sub.add_parser(group.name, help=group.help)
        gsub = gp.add_subparsers(dest=group.dest, required=True)
        for command in group:
            command.add_arguments(gsub.add_parser(command.name, help=command.help))
        gp.set_defaults(func=_runner(group))
