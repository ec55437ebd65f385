"""Replayed human hand streams driving the simulated LEAP hand holding an object, with and
without DexGen: drops, time to drop, how closely the hand follows, and DexGen's intervention.

    .venv/bin/python bench/dexgen_replay.py [--clips all] [--object cube|none] \
        [--mode anygrasp|free_finger] [--guidance 0.3 1.0] [--seconds 12] [--json PATH]

Each bundled clip (``assets/clips``, or other ``--clip-files``) plays through the
app's own session (replay device -> retargeting -> controller -> safety filter -> simulated
hand, palm up, the object resting in the palm at the start) once with the retargeting
baseline (``retarget``: what the operator's hand says is what the robot gets) and once per
DexGen guidance strength. Records per run: ``{clip, controller, guidance, dropped, drop_s,
follow_mm, intervention_mm, guidance_dist_mm, ticks}`` where ``follow_mm`` is the mean
distance between the hand's keypoints and the commanded ones.

``--mode free_finger --object none``: the same clips with an empty hand, DexGen in its
free-finger mode (how closely a prior of safe finger motion lets the fingers follow).

``--recorded DATASET`` also replays every episode of recorded datasets (``dexteleop
record``): the recorded operator commands through each controller, from the episode's
recorded starting state, as ``dexteleop replay`` does (``--clips none`` for those only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def run_one(clip: Path, controller: str, options: dict, args: argparse.Namespace) -> dict:
    from teleop_app.configs import session_config
    from teleop_app.session import Session

    cfg = session_config(
        hand=args.hand,
        device=f"replay:{clip}",
        controller=controller,
        controller_options=options,
        obj=args.object,
        wrist=args.wrist,
        fast=True,
    )
    session = Session(cfg)
    records: list = []
    session.subscribe(records.append)
    ticks = round(args.seconds * cfg.rate_hz)
    t0 = time.perf_counter()
    with session:
        session.run(ticks=ticks)
    drop_s = None
    follow, interv, dist = [], [], []
    for r in records:
        if r.state.object_dropped and drop_s is None:
            drop_s = r.t - records[0].t
        if r.command is not None and r.command.keypoints is not None:
            follow.append(np.linalg.norm(r.state.keypoints - r.command.keypoints, axis=1).mean())
        if "intervention_mm" in r.info:
            interv.append(r.info["intervention_mm"])
            dist.append(r.info["guidance_dist_mm"])
    mean = lambda x: float(np.mean(x)) if x else None  # noqa: E731
    return {
        "clip": clip.stem,
        "controller": controller,
        "guidance": options.get("guidance"),
        "mode": options.get("mode"),
        "object": args.object,
        "dropped": drop_s is not None,
        "drop_s": drop_s,
        "follow_mm": None if not follow else 1e3 * float(np.mean(follow)),
        "intervention_mm": mean(interv),
        "guidance_dist_mm": mean(dist),
        "ticks": len(records),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def run_recorded(dataset: str, episode: int, controller: str, options: dict) -> dict:
    """A recorded episode's operator stream (its recorded commands) through ``controller``
    on the simulated hand, from the episode's recorded start (``dexteleop replay``)."""
    from teleop_app.recording.replay import counterfactual

    t0 = time.perf_counter()
    report, _ = counterfactual(dataset, episode, controller=controller, settings=options)
    rep = report["replayed"]
    return {
        "clip": f"{Path(dataset).name}#{episode}",
        "controller": controller,
        "guidance": options.get("guidance"),
        "dropped": bool(rep.get("object_dropped")),
        "drop_s": None if rep.get("drop_tick") is None else rep["drop_tick"] / 20.0,
        "follow_mm": rep["tracking_error_mm"],
        "intervention_mm": rep["intervention_mm"] if controller == "dexgen" else None,
        "guidance_dist_mm": None,
        "ticks": rep["ticks"],
        "seconds": round(time.perf_counter() - t0, 1),
        "recorded_with": report["recorded"]["controller"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hand", default="leap")
    p.add_argument("--clips", default="all", help="comma-separated bundled clip names, or all")
    p.add_argument("--clip-files", nargs="*", default=[], help="other clips (.npz) to replay")
    p.add_argument(
        "--recorded", nargs="*", default=[], help="recorded datasets: replay every episode"
    )
    p.add_argument("--object", default="cube", help="an object name, or none")
    p.add_argument("--mode", default="anygrasp", help="DexGen's mode (anygrasp, free_finger)")
    p.add_argument("--wrist", default="palm_up")
    p.add_argument("--guidance", type=float, nargs="*", default=[0.3, 1.0])
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--checkpoint", help="DexGen model (default: the shipped one)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from assets import CLIPS_DIR

    names = (
        sorted(p.stem for p in CLIPS_DIR.glob("*.npz"))
        if args.clips == "all"
        else [c for c in args.clips.split(",") if c and c != "none"]
    )
    clips = [CLIPS_DIR / f"{n}.npz" for n in names] + [Path(c) for c in args.clip_files]
    runs = [("retarget", {})]
    for g in args.guidance:
        opts = {"guidance": g, "mode": args.mode}
        if args.checkpoint:
            opts["checkpoint"] = args.checkpoint
        runs.append(("dexgen", opts))
    from teleop_app.recording.reader import RecordedDataset

    jobs = [(clip, None) for clip in clips]
    for ds in args.recorded:
        jobs += [(ds, e) for e in range(RecordedDataset(ds).num_episodes)]
    records = []
    for src, episode in jobs:
        for controller, opts in runs:
            if episode is None:
                rec = run_one(src, controller, opts, args)
            else:
                rec = run_recorded(src, episode, controller, opts)
            records.append(rec)
            g = "-" if rec["guidance"] is None else f"{rec['guidance']:.2f}"
            drop = f"dropped at {rec['drop_s']:.1f} s" if rec["dropped"] else "held"
            iv = rec["intervention_mm"]
            print(
                f"{rec['clip']:14s} {controller:8s} α {g:>4}: {drop:16s} follow "
                f"{rec['follow_mm']:5.1f} mm"
                + (f", intervention {iv:5.1f} mm" if iv is not None else ""),
                flush=True,
            )
    summary = {}
    for controller, opts in runs:
        sel = [
            r for r in records
            if r["controller"] == controller and r["guidance"] == opts.get("guidance")
        ]  # fmt: skip
        key = controller if not opts else f"{controller} α={opts['guidance']}"
        summary[key] = {
            "runs": len(sel),
            "drops": sum(r["dropped"] for r in sel),
            "follow_mm_mean": float(np.mean([r["follow_mm"] for r in sel])),
        }
        if controller == "dexgen":
            summary[key]["intervention_mm_mean"] = float(
                np.mean([r["intervention_mm"] for r in sel])
            )
    print(json.dumps(summary, indent=2))
    if args.json:
        from bench import write_json

        write_json(args.json, {"runs": records, "summary": summary})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
