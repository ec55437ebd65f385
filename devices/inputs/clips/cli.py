"""``python -m devices.inputs.clips --out DIR``: write the shipped clips (``make clips``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from devices.inputs.clips.fileformat import ClipFormatError, save_clip
from devices.inputs.clips.generate import CLIP_KINDS, generate_clip


def main(argv: Sequence[str] | None = None) -> int:
    """Write the shipped clips (``demo.npz`` and one ``<kind>.npz`` per other kind).

    Returns:
        Process exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m devices.inputs.clips", description="Generate the shipped hand clips."
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--rate", type=float, default=30.0, help="sample rate, Hz (default 30)")
    parser.add_argument(
        "--duration", type=float, default=6.0, help="length of each non-demo clip, s (default 6)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in CLIP_KINDS:
        clip = generate_clip(kind, duration_s=args.duration, rate_hz=args.rate, seed=args.seed)
        path = args.out / f"{kind}.npz"
        try:
            save_clip(clip, path)
        except (ClipFormatError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{path}: {len(clip)} frames, {clip.duration_s:.1f} s, {path.stat().st_size} bytes")
    return 0
