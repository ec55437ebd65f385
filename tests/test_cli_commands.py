"""The training commands: registered by their packages, listed by the command line from the
registry, task names from the environment registry; no torch at start-up."""

import argparse
import subprocess
import sys

import pytest
from conftest import REPO

from teleop_app.cli import build_parser
from training import commands
from training.envs import TASKS


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _choices(parser: argparse.ArgumentParser, option: str) -> tuple:
    action = next(a for a in parser._actions if option in a.option_strings)
    return tuple(action.choices)


def test_every_registered_command_is_a_subcommand():
    top = _subparsers(build_parser())
    groups = commands.load()
    assert {g.name for g in groups} <= set(top)
    for group in groups:
        assert group.names(), group.name
        assert sorted(_subparsers(top[group.name])) == group.names()
    assert {"dexgen", "modex", "rl"} <= set(commands.TRAIN.names())
    assert "generate" in commands.DATA.names()


def test_task_names_come_from_the_env_registry():
    top = _subparsers(build_parser())
    rl = _subparsers(top["train"])["rl"]
    generate = _subparsers(top["data"])["generate"]
    assert _choices(rl, "--task") == tuple(TASKS)
    assert _choices(generate, "--task") == tuple(TASKS)


def test_scale_and_mode_names_agree_with_the_trainers():
    """The names the options offer are the tables the trainers run (these import torch)."""
    from controllers.dexgen import MODES
    from controllers.dexgen.models import SIZES
    from training.datagen.cli import DATA_SCALES
    from training.dexgen.cli import SCALE_NAMES, SIZE_NAMES
    from training.dexgen.train import SCALES as DEXGEN_SCALES
    from training.rl import SCALES
    from training.rl.ppo import scale_preset

    top = _subparsers(build_parser())
    assert _choices(_subparsers(top["train"])["rl"], "--scale") == SCALES
    for s in SCALES:
        scale_preset(s, "anygrasp")
    assert tuple(DATA_SCALES) == SCALES
    assert set(SCALE_NAMES) == set(DEXGEN_SCALES) and set(SIZE_NAMES) == set(SIZES)
    # DexGen's modes are tasks its data come from (rotate has no DexGen mode yet)
    assert set(MODES) <= set(TASKS)


def test_a_duplicate_registration_is_refused():
    group = commands.CommandGroup("test", "a test group")
    group.register("x", help="x", add_arguments=lambda p: None, run=lambda a: 0)
    with pytest.raises(ValueError, match="already registered"):
        group.register("x", help="x", add_arguments=lambda p: None, run=lambda a: 1)
    with pytest.raises(KeyError, match="known: x"):
        group.get("y")


def test_start_up_imports_no_torch():
    code = (
        "import sys; from teleop_app.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_train_usage_errors_are_one_line_even_verbose(tmp_path, capsys):
    from teleop_app.cli import main

    afile = tmp_path / "a_file"
    afile.write_text("")
    rc = main(["-v", "train", "modex", "--hand", "allegro", "--out", str(afile)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "is a file, not a folder" in err and "\n" not in err
