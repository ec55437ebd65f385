"""Loop timings of the real-hand backends on their emulated buses, beside the simulated hand.

    .venv/bin/python bench/hand_bus.py [--seconds 20] [--json bench/results/hand_bus.json]

Runs the same session (replayed demo clip, ``retarget`` controller, 20 Hz, real time) on
the simulated LEAP hand (the baseline of this run), on LEAP over an emulated Dynamixel bus
(``dynamixel``: a pseudo-terminal, ROBOTIS's SDK, one sync write and one fast sync read per
tick, health at 2 Hz) and on Allegro over an emulated v4 hand on a python-can virtual bus
(``allegro_can``: the host PD loop at 333 Hz in its own thread). Prints, per backend, the
loop's rate and missed deadlines, the session's ``hand_read``, ``hand_write`` and ``tick``
latencies (p50 / p99, ms) and the backend's own bus timings. The emulators run in this
process, so their threads share its interpreter with the loop: the numbers are an upper
bound of what the protocol code costs, not of a USB adapter's or a CAN card's latency.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))


#: The session's latency stages reported.
STAGES = ("hand_read", "hand_write", "tick")


def run(hand: str, robot: str, seconds: float) -> dict[str, Any]:
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    cfg = session_config(
        hand=hand,
        robot=robot,
        device=f"replay:{ROOT / 'assets' / 'clips' / 'demo.npz'}",
        controller="retarget",
    )
    session = Session(cfg)
    with session:
        session.run(seconds)
    rep = session.report()
    lat = rep["latency_ms"]
    return {
        "backend": robot.split(":")[0],
        "hand": hand,
        "ticks": rep["ticks"],
        "rate_hz": rep["rate_hz"],
        "missed_deadlines": rep["missed_deadlines"],
        "limit_violations": rep["limit_violations"],
        "faults": rep["hand"]["faults"],
        **{f"{k}_ms": {"p50": lat[k]["p50"], "p99": lat[k]["p99"]} for k in STAGES},
        "bus_ms": rep["hand"].get("bus", {}).get("timing_ms", {}),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    from devices.robots.emulators.allegro_can import AllegroCANHand
    from devices.robots.emulators.dynamixel import DynamixelBus

    records = [run("leap", "sim", args.seconds)]
    with DynamixelBus() as bus:
        records.append(run("leap", f"dynamixel:port={bus.port}", args.seconds))
    with AllegroCANHand(channel="bench-allegro"):
        records.append(
            run("allegro", "allegro_can:channel=bench-allegro,interface=virtual", args.seconds)
        )
    print("| backend | hand | ticks | rate Hz | missed | read p50 / p99 ms | write p50 / p99 ms "
          "| tick p50 / p99 ms | bus (backend's own) p50 / p99 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in records:
        bus = ", ".join(f"{k} {v['p50']:.2f} / {v['p99']:.2f}" for k, v in r["bus_ms"].items())
        cells = [
            f"{r[k]['p50']:.2f} / {r[k]['p99']:.2f}"
            for k in ("hand_read_ms", "hand_write_ms", "tick_ms")
        ]
        print(f"| {r['backend']} | {r['hand']} | {r['ticks']} | {r['rate_hz']:.2f} | "
              f"{r['missed_deadlines']} | {' | '.join(cells)} | {bus or '-'} |")  # fmt: skip
    if args.json:
        from bench import write_json

        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
