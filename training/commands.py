"""The training commands (``dexteleop train NAME``, ``dexteleop data NAME``), registered by
the packages that run them.

Each training package with commands has a ``cli`` module (``training/<package>/cli.py``)
that registers them at import::

    TRAIN.register(
        "rl", help="PPO in parallel simulated worlds", add_arguments=add_rl_arguments, run=run_rl
    )

:func:`load` imports every such module (found on disk, no list of names here); the command
line builds one subcommand per registered command and calls its ``run``. Registering must
stay cheap: a ``cli`` module imports no torch, no MuJoCo; ``run`` imports what it needs.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


class UsageError(ValueError):
    """A bad option or input found before any work started; the CLI prints the message as
    one line (exit status 2), with or without --verbose."""


@dataclass(frozen=True)
class Command:
    """One training command.

    Attributes:
        name: the subcommand (``rl`` in ``dexteleop train rl``). help: one line.
        add_arguments: adds its options to an argparse parser (imports nothing heavy).
        run: runs it from the parsed options; returns the exit status.
        user_errors: exceptions ``run`` raises for a user's mistake (a missing file, a bad
            value), printed as one line rather than a traceback.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    user_errors: tuple[type[BaseException], ...] = ()


class CommandGroup:
    """The commands under one word of the command line (``train``, ``data``)."""

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help
        #: the argparse attribute holding the chosen command
        self.dest = f"{name}_command"
        self._commands: dict[str, Command] = {}

    def register(
        self,
        name: str,
        *,
        help: str,
        add_arguments: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], int],
        user_errors: tuple[type[BaseException], ...] = (),
    ) -> Command:
        command = Command(name, help, add_arguments, run, tuple(user_errors))
        old = self._commands.get(name)
        if old is not None and (old.add_arguments, old.run) != (add_arguments, run):
            raise ValueError(f"{self.name} command {name!r} is already registered")
        self._commands[name] = command
        return command

    def names(self) -> list[str]:
        return sorted(self._commands)

    def get(self, name: str) -> Command:
        try:
            return self._commands[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise KeyError(f"unknown {self.name} command {name!r}; known: {known}") from None

    def __iter__(self) -> Iterator[Command]:
        return iter([self._commands[n] for n in self.names()])


#: ``dexteleop train NAME``: training a controller's models.
TRAIN = CommandGroup("train", "train a learned controller's models in simulation")
#: ``dexteleop data NAME``: simulation datasets.
DATA = CommandGroup("data", "simulation datasets for DexGen")
#: Every group, in the order the command line lists them.
GROUPS = (TRAIN, DATA)

_loaded = False


def load() -> tuple[CommandGroup, ...]:
    """Import every ``training/<package>/cli.py`` (registering its commands); the groups."""
    global _loaded
    if not _loaded:
        root = Path(__file__).parent
        for pkg in pkgutil.iter_modules([str(root)]):
            if not pkg.ispkg:
                continue
            if any(m.name == "cli" for m in pkgutil.iter_modules([str(root / pkg.name)])):
                importlib.import_module(f"{__package__}.{pkg.name}.cli")
        _loaded = True
    return GROUPS
