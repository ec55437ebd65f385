"""Run every benchmark and print markdown tables.

python -m bench            # all
python -m bench sim retarget loop
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault(
    "MENAGERIE_ROOT", str(Path(__file__).resolve().parents[2] / "shared" / "menagerie")
)

import numpy as np

HANDS = ("leap", "allegro")


def _pct(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def bench_sim(seconds: float = 3.0) -> None:
    """Control steps per second of the simulated hand (20 Hz ticks = 25 physics steps)."""
    from devices.robots import ROBOTS

    print("\n### Simulated hand: control steps per second (one core, Python in the loop)\n")
    print("| hand | object | substeps | control steps/s | physics steps/s | x real time |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for hand in HANDS:
        for obj in (None, "cube"):
            robot = ROBOTS.make("sim", hand=hand, object=obj)
            with robot:
                h = robot.hand
                targets = rng.uniform(h.lower, h.upper, size=(64, h.n_joints))
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    robot.send(targets[n % 64])
                    n += 1
                dt = time.perf_counter() - t0
            rate = n / dt
            print(
                f"| {hand} | {obj or '-'} | {robot.substeps} | {rate:,.0f} | "
                f"{rate * robot.substeps:,.0f} | {rate / robot.rate_hz:,.0f} |"
            )


def bench_retarget(frames: int = 400) -> None:
    """Retargeting latency per mode on the bundled demo clip sampled at 20 Hz."""
    from assets import DEMO_CLIP
    from devices.inputs.clips import load_clip
    from devices.retargeting import RETARGET_MODES, RetargetConfig, Retargeter

    clip = load_clip(DEMO_CLIP)
    idx = np.searchsorted(clip.t, np.arange(frames) / 20.0 % clip.t[-1])
    print("\n### Retargeting latency (demo clip at 20 Hz, warm-started)\n")
    print("| hand | mode | p50 ms | p99 ms | keypoint error vs command, mean mm |")
    print("|---|---|---|---|---|")
    for hand in HANDS:
        for mode in RETARGET_MODES:
            rt = Retargeter(hand, RetargetConfig(mode=mode))
            times, errs = [], []
            for i in idx:
                f = clip.frame(int(i))
                t0 = time.perf_counter()
                cmd = rt(f)
                times.append(time.perf_counter() - t0)
                errs.append(
                    np.linalg.norm(rt.kin.keypoints(cmd.joints) - cmd.keypoints, axis=1).mean()
                )
            p50, p99 = _pct(times)
            print(f"| {hand} | {mode} | {p50:.2f} | {p99:.2f} | {np.mean(errs) * 1e3:.1f} |")


def bench_pinch() -> None:
    """How close the robot's thumb and fingertip come where the operator's tips touch."""
    from devices.inputs.clips import generate_clip
    from devices.retargeting import RETARGET_MODES, RetargetConfig, Retargeter

    print("\n### Pinches: robot thumb-tip to fingertip keypoint distance at the human's pinch\n")
    print("Keypoints sit inside the fingertips, so touching pads are ~1-2 cm apart.\n")
    print("| hand | mode | index mm | middle mm | ring mm |")
    print("|---|---|---|---|---|")
    for hand in HANDS:
        for mode in RETARGET_MODES:
            rt = Retargeter(hand, RetargetConfig(mode=mode))
            gaps = []
            for f, finger in enumerate(("index", "middle", "ring")):
                clip = generate_clip(f"pinch_{finger}", duration_s=3.0, rate_hz=20.0, seed=0)
                human = np.linalg.norm(clip.keypoints[:, 4] - clip.keypoints[:, 8 + 4 * f], axis=1)
                peak = int(np.argmin(human))
                rt.reset()
                for i in range(peak + 1):
                    cmd = rt(clip.frame(i))
                kp = rt.kin.keypoints(cmd.joints)
                gaps.append(np.linalg.norm(kp[7] - kp[2 * f + 1]) * 1e3)
            print(f"| {hand} | {mode} | " + " | ".join(f"{g:.0f}" for g in gaps) + " |")


def bench_loop(seconds: float = 20.0) -> None:
    """Per-tick cost of the loop itself: whole tick minus its timed stages, in --fast mode."""
    from teleop_app.session import Session, SessionConfig

    print(f"\n### Control loop, {seconds:.0f} s of --fast replay (retarget controller)\n")
    print(
        "| hand | ticks/s (wall) | tick p50 ms | tick p99 ms | stages p50 ms "
        "| loop overhead p50 ms | overhead / tick |"
    )
    print("|---|---|---|---|---|---|---|")
    for hand in HANDS:
        overhead, ticks, stages = [], [], []

        def on_tick(r, overhead=overhead, ticks=ticks, stages=stages) -> None:
            parts = sum(
                r.timings_ms.get(k, 0.0)
                for k in ("retarget", "controller", "hand_read", "hand_write")
            )
            ticks.append(r.timings_ms["tick"])
            stages.append(parts)
            overhead.append(r.timings_ms["tick"] - parts)

        session = Session(SessionConfig(hand=hand, fast=True))
        session.subscribe(on_tick)
        with session:
            t0 = time.perf_counter()
            n = session.run(seconds)
            wall = time.perf_counter() - t0
        o50 = float(np.percentile(overhead, 50))
        t50 = float(np.percentile(ticks, 50))
        print(
            f"| {hand} | {n / wall:,.0f} | {t50:.2f} | {np.percentile(ticks, 99):.2f} | "
            f"{np.percentile(stages, 50):.2f} | {o50:.3f} | {o50 / t50:.1%} |"
        )


def bench_app(seconds: float = 60.0) -> None:
    """The app (offscreen Qt, 3D view and plots updating) vs the same session headless.

    Both run the LEAP hand with the cube on the replay device in real time for ``seconds``;
    the headless run (``dexteleop run``) is the baseline measured in the same sitting. The
    last row is the app driving the hand with ``modex``, the costliest controller per tick
    (planning through its learned models on one torch thread), with no cube and the wrist
    left as it starts (MoDex reaches with the fingers; it does not hold objects).
    """
    import json
    import subprocess
    import sys
    import tempfile

    print(f"\n### The app: {seconds:.0f} s of replay on the simulated LEAP hand (real time)\n")
    print(
        "| run | ticks | loop Hz | missed deadlines | missed % | tick p50 ms | tick p99 ms "
        "| 3D view fps | plot redraws/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DEXTELEOP_HOME": tmp}
        base = [sys.executable, "-m", "teleop_app"]
        common = ["--hand", "leap", "--device", "replay", "--object", "cube"]
        runs = {
            "headless (baseline)": [*base, "run", *common, "--controller", "retarget"],
            "app": [*base, "app", *common, "--controller", "retarget", "--wrist", "palm_up"],
            "app, modex": [*base, "app", *common[:4], "--controller", "modex"],
        }
        for i, (name, cmd) in enumerate(runs.items()):
            report = Path(tmp) / f"run{i}.json"
            cmd = [*cmd, "--duration", str(seconds), "--report", str(report)]
            subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=seconds + 120)
            r = json.loads(report.read_text())
            ui = r.get("ui", {})
            ticks = ui.get("ticks", r["ticks"])
            missed = ui.get("missed_deadlines", r["missed_deadlines"])
            hz = ui.get("loop_hz", r["rate_hz"])
            tick = r["latency_ms"]["tick"]
            print(
                f"| {name} | {ticks} | {hz:.2f} | {missed} | {missed / max(ticks, 1):.2%} | "
                f"{tick['p50']:.1f} | {tick['p99']:.1f} | {ui.get('view_fps', '-')} | "
                f"{ui.get('plot_redraws_per_s', '-')} |"
            )


def bench_record(seconds: float = 60.0) -> None:
    """Recording on vs off: the same real-time session, recorded (one episode) or not."""
    import json
    import subprocess
    import sys
    import tempfile

    print(f"\n### Recording: {seconds:.0f} s at 20 Hz on the simulated LEAP hand (real time)\n")
    print("| run | ticks | loop Hz | missed deadlines | missed % | tick p99 ms | bytes/s on disk |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, "-m", "teleop_app"]
        common = ["--hand", "leap", "--device", "replay", "--object", "cube"]
        for name in ("not recording (baseline)", "recording"):
            report = Path(tmp) / "report.json"
            if name == "recording":
                out = Path(tmp) / "demos"
                cmd = [*base, "record", *common, "--out", str(out), "--duration", str(seconds)]
                cmd += ["--report", str(report)]
            else:
                cmd = [*base, "run", *common, "--duration", str(seconds), "--report", str(report)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 120)
            r = json.loads(report.read_text())
            size = "-"
            if name == "recording":
                total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
                wal = r.get("recording", {}).get("log_bytes", 0)
                size = f"{total / seconds:,.0f} (log while recording: {wal / seconds:,.0f})"
            ticks, missed = r["ticks"], r["missed_deadlines"]
            print(
                f"| {name} | {ticks} | {r['rate_hz']:.2f} | {missed} | "
                f"{missed / max(ticks, 1):.2%} | {r['latency_ms']['tick']['p99']:.1f} | {size} |"
            )


def bench_modex(seconds: float = 20.0) -> None:
    """MoDex: one planning step vs FM+CEM at the same budget; the live loop at 20 Hz."""
    import torch

    from bench.modex_reach import main as modex_reach
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    for threads in (1, 2):
        for hand in HANDS:
            modex_reach(["--hand", hand, "--setting", "sequential", "--latency",
                         "--episodes", "100", "--threads", str(threads)])  # fmt: skip
    torch.set_num_threads(1)
    print(f"\n### MoDex in the real-time loop: {seconds:.0f} s of replay, 20 Hz, 1 torch thread\n")
    print(
        "| hand | ticks | rate Hz | missed deadlines | controller p50 ms | p99 ms | samples/step |"
    )
    print("|---|---|---|---|---|---|---|")
    for hand in HANDS:
        samples = []
        cfg = session_config(hand=hand, device="replay", controller="modex")
        session = Session(cfg)
        session.subscribe(
            lambda r, out=samples: (
                out.append(r.info["planner_samples"]) if "planner_samples" in r.info else None
            )
        )
        with session:
            session.run(seconds)
        rep = session.report()
        lat = rep["latency_ms"]["controller"]
        print(
            f"| {hand} | {rep['ticks']} | {rep['rate_hz']:.2f} | {rep['missed_deadlines']} | "
            f"{lat['p50']:.1f} | {lat['p99']:.1f} | {np.mean(samples):,.0f} |"
        )


BENCHES = {
    "sim": bench_sim,
    "retarget": bench_retarget,
    "pinch": bench_pinch,
    "loop": bench_loop,
    "app": bench_app,
    "record": bench_record,
    "modex": bench_modex,
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("which", nargs="*", help=f"some of {', '.join(BENCHES)} (default: all)")
    args = p.parse_args()
    unknown = set(args.which) - set(BENCHES)
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHES)}")
    import mujoco
    import torch

    torch.set_num_threads(2)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, mujoco {mujoco.__version__}, "
        f"torch {torch.__version__}"
    )
    for name in args.which or list(BENCHES):
        BENCHES[name]()


if __name__ == "__main__":
    main()
