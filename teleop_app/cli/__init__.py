"""The ``dexteleop`` command line.

    dexteleop run --hand leap --device replay[:PATH] --controller retarget --duration 20 \
        [--fast] [--report report.json] [--video out.mp4]
    dexteleop list
    dexteleop clip generate KIND --out FILE

Errors a user can cause (a malformed clip, an unknown hand, a missing model) end the run
with one line on stderr and exit status 2, never a traceback.

The commands live by concern: :mod:`~teleop_app.cli.sessions` (run, app, record, replay,
calibrate), :mod:`~teleop_app.cli.dataset`, :mod:`~teleop_app.cli.listing` (list,
devices), :mod:`~teleop_app.cli.tools` (glove-send, modex cost, clip) and
:mod:`~teleop_app.cli.train` (train, data: the commands :mod:`training.commands` holds);
:mod:`~teleop_app.cli.common` holds what they share. Each module adds its parsers; heavy
imports happen only when a command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from teleop_app.cli import dataset, listing, sessions, tools, train
from teleop_app.cli.common import EXIT_USAGE, CliError

__all__ = ["EXIT_USAGE", "CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dexteleop", description="Teleoperate dexterous robot hands, real or simulated."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    sessions.add_parsers(sub)
    dataset.add_parsers(sub)
    listing.add_parsers(sub)
    tools.add_glove_send_parser(sub)
    train.add_parsers(sub)
    tools.add_modex_parser(sub)
    tools.add_clip_parser(sub)
    tools.add_robot_check_parser(sub)
    tools.add_emulate_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's import chatter
    from assets.hands import HandModelError
    from assets.registry import UnknownPluginError
    from devices.inputs.clips import ClipFormatError
    from teleop_app.profiles import ProfileError
    from teleop_app.recording.dataset import DatasetError
    from teleop_app.recording.wal import WalError

    try:
        return int(args.func(args))
    except (
        CliError,
        ClipFormatError,
        HandModelError,
        UnknownPluginError,
        ProfileError,
        DatasetError,
        WalError,
        OSError,
        RuntimeError,
    ) as e:
        print(f"dexteleop: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, KeyError, OverflowError, TypeError) as e:
        if args.verbose:
            raise
        print(f"dexteleop: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dexteleop: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(msg.split()) or type(e).__name__
