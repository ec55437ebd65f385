"""Write a Quest 3 logcat capture in which the operator holds X, then Y (the rotation
axis buttons: X = +z, Y = -z by default, ``devices.retargeting.axis.AxisConfig``).

    .venv/bin/python bench/quest_axis_capture.py --seconds 20 --out out/quest_xy.txt
    .venv/bin/dexteleop run --hand leap --robot sim:dynamics=reality,object_scale=1.4 \\
        --object cube --controller dexndm --device quest3:logcat=out/quest_xy.txt \\
        --duration 20 --report out/quest_xy_report.json

Lines are in logcat's ``threadtime`` format under the teleop app's tag, at 72 Hz, as the
app prints them (``r:<16>|l:<16>&<buttons>``, ``devices.inputs.quest.protocol``): the right
controller where a right hand rests in front of the headset, swaying a little, the left
one at the operator's side; X is held for the first half, Y for the second (with a 0.5 s
gap in which neither is held: the hand holds still).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.inputs.quest.protocol import TAG  # noqa: E402

RATE_HZ = 72.0


def _pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    p = np.eye(4)
    p[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    p[:3, 3] = (x, y, z)
    return p


def _fmt(p: np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in p.ravel())


def _stamp(t: float) -> str:
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"12-04 {int(h):02d}:{int(m):02d}:{s:06.3f}"


def capture(seconds: float, gap_s: float = 0.5, start_s: float = 10 * 3600.0) -> str:
    lines = ["--------- beginning of main"]
    n = round(seconds * RATE_HZ)
    half = seconds / 2
    for i in range(n):
        t = i / RATE_HZ
        right = _pose(0.15 + 0.01 * math.sin(t), -0.35, -0.45, 0.05 * math.sin(0.5 * t))
        left = _pose(-0.25, -0.5, -0.2, 0.0)
        buttons = ["R", "rightJS 0.000000 0.000000", "rightTrig 0.000000", "rightGrip 0.000000"]
        left_tokens = ["L"]
        if t < half - gap_s / 2:
            left_tokens.append("X")
        elif t >= half + gap_s / 2:
            left_tokens.append("Y")
        left_tokens += ["leftJS 0.000000 0.000000", "leftTrig 0.000000", "leftGrip 0.000000"]
        msg = f"r:{_fmt(right)}|l:{_fmt(left)}&{','.join(buttons + left_tokens)}"
        lines.append(f"{_stamp(start_s + t)}  4321  4350 I {TAG}: {msg}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(capture(args.seconds))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
