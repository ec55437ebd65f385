"""The arm's added latency and its tracking at 20 Hz commands.

    .venv/bin/python bench/arm_latency.py --seconds 10 --json bench/results/arm_latency.json

For each arm backend here (``sim``: the simulated Panda carrying the simulated LEAP hand;
``franka``: the real-arm backend against franky-sim on a loopback address, when installed)
a wrist trajectory (a figure eight in the horizontal plane, 8 cm across, with a +-0.3 rad
turn about the vertical) is streamed at 20 Hz at three speeds. Per command it records:

- ``send_ms``: the wrist pose handed to :meth:`Arm.send` -> the command written (the
  wrist filter, the palm target, and for ``sim`` the inverse kinematics and joint limits;
  for ``franka`` the message to the worker),
- ``worker_ms`` (``franka``): the message sent -> franky's ``move`` issued in the worker,
- ``tracking_error_mm`` / ``_deg``: the palm, measured at the next tick, against the target
  (p50 / p95), and the filter's events.

Latency is wall time on this machine (noisy); compare backends within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import numpy as np  # noqa: E402


def wrist(t: float, speed: float) -> np.ndarray:
    """The operator's wrist at time ``t`` (figure eight; ``speed`` scales its frequency)."""
    w = 0.8 * speed
    out = np.eye(4)
    a = 0.3 * np.sin(0.5 * w * t)
    c, s = np.cos(a), np.sin(a)
    out[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    out[:3, 3] = [0.5 + 0.04 * np.sin(w * t), 0.04 * np.sin(2 * w * t), 1.0]
    return out


def stream(arm: Any, step: Any, seconds: float, speed: float, realtime: bool) -> dict:
    period = 1.0 / arm.rate_hz
    send_ms = []
    n = round(seconds * arm.rate_hz)
    t0 = time.perf_counter()
    for k in range(n):
        arm.read()
        pose = wrist(k * period, speed)
        a = time.perf_counter()
        arm.send(pose, dt_s=period)
        send_ms.append((time.perf_counter() - a) * 1e3)
        step()
        if realtime:
            time.sleep(max(0.0, t0 + (k + 1) * period - time.perf_counter()))
    arm.read()
    rep = arm.report()
    lat = np.asarray(send_ms)
    return {
        "speed": speed,
        "commands": n,
        "send_ms": {
            "p50": round(float(np.median(lat)), 3),
            "p99": round(float(np.percentile(lat, 99)), 3),
        },
        "worker_ms_p50": rep.get("worker_latency_ms_p50"),
        "tracking_error_mm": rep["tracking_error_mm"],
        "tracking_error_deg": rep["tracking_error_deg"],
        "events": rep["events"],
        "workspace_violations": rep["workspace_violations"],
        "speed_violations": rep["speed_violations"],
        "faults": len(rep["faults"]),
    }


def run_sim(seconds: float, speeds: list[float]) -> list[dict]:
    from devices.arms import ARMS
    from devices.robots.sim import SimHand, SimHandConfig

    out = []
    for speed in speeds:
        hand = SimHand(SimHandConfig(hand="leap", wrist="palm_down", arm="panda"))
        arm = ARMS.make("sim")
        arm.attach(hand)
        hand.connect()
        arm.connect()
        q = hand.read().q
        out.append(
            {"arm": "sim", **stream(arm, lambda h=hand, q=q: h.send(q), seconds, speed, False)}
        )
    return out


def run_franka(seconds: float, speeds: list[float]) -> list[dict]:
    try:
        from franky_sim import SimulationServer
        from franky_sim.mujoco_simulator import MujocoSimulator
    except ImportError:
        print("franky-sim is not installed: the franka backend is not measured", file=sys.stderr)
        return []
    from devices.arms import ARMS

    out = []
    with MujocoSimulator(enable_visualization=False) as sim:
        robot = sim.add_robot()
        with SimulationServer(sim) as server:
            server.run_async()
            for speed in speeds:
                arm = ARMS.make("franka", host=robot.hostname, realtime=False)
                arm.connect()
                try:
                    out.append(
                        {
                            "arm": "franka (franky-sim)",
                            **stream(arm, lambda: None, seconds, speed, True),
                        }
                    )
                finally:
                    arm.disconnect()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="per speed")
    p.add_argument("--speeds", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--json")
    args = p.parse_args(argv)
    rows = run_sim(args.seconds, args.speeds) + run_franka(args.seconds, args.speeds)
    print(
        "| arm | speed | send ms p50 / p99 | worker ms p50 | tracking mm p50 / p95 "
        "| deg p50 / p95 | events |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['arm']} | {r['speed']} | {r['send_ms']['p50']} / {r['send_ms']['p99']} | "
            f"{r['worker_ms_p50']} | {r['tracking_error_mm']['p50']} / "
            f"{r['tracking_error_mm']['p95']} | {r['tracking_error_deg']['p50']} / "
            f"{r['tracking_error_deg']['p95']} | {r['events']} |"
        )
    if args.json:
        from bench import write_json

        write_json(
            args.json,
            {"rows": rows, "command": " ".join(["bench/arm_latency.py", *(argv or sys.argv[1:])])},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
