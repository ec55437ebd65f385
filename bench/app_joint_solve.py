"""The app driving ``modex``: retargeting's joint solve forced on vs skipped (the default).

    .venv/bin/python bench/app_joint_solve.py --hands leap allegro --seconds 30 --repeats 2

MoDex reads only the commanded fingertips, so the session skips the joint solve while it
drives (``Controller.command_fields`` has no ``joints``). This measures what that buys in the
desktop app (offscreen Qt, 3D view and plots live, real time): each run is ``dexteleop app --hand H
--device replay --controller modex --duration S --report ...`` in a fresh process; the
"forced" runs add ``joints`` to ``ModexController.command_fields`` first, which is how the
session behaved before. Runs alternate (forced, skipped) per hand and repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import sys
from controllers.modex import ModexController
from teleop_app.cli import main
if sys.argv[1] == "forced":
    ModexController.command_fields = ModexController.command_fields | {"joints"}
sys.exit(main(sys.argv[2:]))
"""


def run(hand: str, solve: str, seconds: float, report: Path, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-c", _CHILD, solve, "app", "--hand", hand, "--device", "replay"]
    cmd += ["--controller", "modex", "--duration", str(seconds), "--report", str(report)]
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=seconds + 120)
    r = json.loads(report.read_text())
    ui, lat = r.get("ui", {}), r["latency_ms"]
    return {
        "hand": hand,
        "joint_solve": solve,
        "ticks": ui.get("ticks", r["ticks"]),
        "missed_deadlines": ui.get("missed_deadlines", r["missed_deadlines"]),
        "retarget_p50_ms": lat["retarget"]["p50"],
        "controller_p50_ms": lat["controller"]["p50"],
        "tick_p50_ms": lat["tick"]["p50"],
        "tick_p99_ms": lat["tick"]["p99"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hands", nargs="+", default=["leap", "allegro"])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", help="write the records here")
    args = p.parse_args(argv)
    rows = []
    print(
        "\n| hand | joint solve | ticks | missed deadlines | retargeting p50 ms "
        "| controller p50 ms | tick p50 ms | tick p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DEXTELEOP_HOME": tmp}
        env.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        for _ in range(args.repeats):
            for hand in args.hands:
                for solve in ("forced", "skipped"):
                    r = run(hand, solve, args.seconds, Path(tmp) / "report.json", env)
                    rows.append(r)
                    print(
                        f"| {hand} | {solve} | {r['ticks']} | {r['missed_deadlines']} | "
                        f"{r['retarget_p50_ms']:.1f} | {r['controller_p50_ms']:.1f} | "
                        f"{r['tick_p50_ms']:.1f} | {r['tick_p99_ms']:.1f} |",
                        flush=True,
                    )
    if args.json:
        sys.path.insert(0, str(ROOT))
        from bench import write_json

        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
