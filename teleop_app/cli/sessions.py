"""The session commands: ``run``, ``record``, ``replay``, ``app`` and ``calibrate``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from teleop_app.cli.common import (
    CliError,
    add_arm_argument,
    add_robot_argument,
    check_duration,
    check_robot,
    control_threads,
    output_path,
    positive,
    session_config_from_args,
    settings,
)

log = logging.getLogger("dexteleop")


def cmd_run(args: argparse.Namespace) -> int:
    report_path, video_path = output_path(args.report), output_path(args.video)
    check_duration(args)
    config = session_config_from_args(
        args,
        object_mass_kg=args.object_mass,
        object_friction=args.object_friction,
        operator=args.operator,
        scale=args.scale,
        keep_states=args.video is not None,
    )
    if video_path is not None:
        from devices.robots.base import ROBOTS, Simulated

        if not issubclass(ROBOTS.get(config.robot), Simulated):
            raise CliError(f"--video renders a simulated hand; robot {config.robot} is not one")
    control_threads()
    from teleop_app.session import Session

    session = Session(config)
    with session:
        ticks = session.run(args.duration)
    report = session.report()
    report["duration_s"] = args.duration
    log.info(
        "%d ticks at %.1f Hz, %d missed deadlines, tracking error %s mm, safety events %s",
        ticks,
        report["rate_hz"],
        report["missed_deadlines"],
        report["tracking_error_mm"]["mean"],
        report["safety_events"],
    )
    if report_path is not None:
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        log.info("report: %s", report_path)
    else:
        print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))
    if video_path is not None:
        from teleop_app.video import render_video

        n = render_video(session.robot, session.states, session.commands, video_path, fps=args.rate)
        log.info("video: %s (%d frames)", video_path, n)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    check_duration(args)
    config = session_config_from_args(args)
    control_threads()
    import time

    from teleop_app.recording.recorder import Recorder
    from teleop_app.session import Session

    session = Session(config)

    def progress(episode: int, frames: int) -> None:
        if args.progress:
            print(f"synced episode {episode} frames {frames} t {time.time():.3f}", flush=True)

    recorder = Recorder.for_session(args.out, session, on_sync=progress)
    session.subscribe(recorder)
    report_path = output_path(args.report)
    saved = []
    log_bytes = 0
    try:
        with session:
            for _ in range(args.episodes):
                episode = recorder.start(args.task).result(timeout=30)
                if args.progress:
                    print(f"recording episode {episode} t {time.time():.3f}", flush=True)
                session.run(args.duration)
                if recorder.state == "failed":
                    raise CliError(recorder.message)
                log_bytes += recorder.bytes_written
                saved.append(recorder.stop().result(timeout=120))
                log.info("saved episode %d (%d frames)", saved[-1], recorder.frames)
    finally:
        recorder.close()
    from teleop_app.recording.reader import RecordedDataset

    info = RecordedDataset(args.out).summary()
    if report_path is not None:
        report = session.report()
        report["recording"] = {
            "dataset": str(args.out),
            "episodes_saved": saved,
            "log_bytes": log_bytes,
            "dataset_bytes": info["bytes"],
        }
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    log.info(
        "%s: %d episodes, %d frames, %.1f MB", args.out, info["episodes"], info["frames"],
        info["bytes"] / 1e6,
    )  # fmt: skip
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    control_threads()
    from teleop_app.recording.replay import counterfactual

    report, _ = counterfactual(
        args.dataset,
        args.episode,
        controller=args.controller,
        settings=settings(args.set),
        retarget=args.retarget,
        robot=args.robot,
    )
    text = json.dumps(report, indent=2)
    if args.report:
        out = output_path(args.report)
        assert out is not None
        out.write_text(text + "\n")
        log.info("report: %s", out)
    else:
        print(text)
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    control_threads()
    if (args.screenshot is not None or args.report is not None) and args.duration is None:
        raise CliError("--screenshot and --report need --duration SECONDS")
    screenshot, report = output_path(args.screenshot), output_path(args.report)
    if screenshot is not None and screenshot.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise CliError(f"--screenshot {args.screenshot}: use a .png or .jpg file name")
    check_robot(args.robot)
    from teleop_app.ui.app import display_problem

    problem = display_problem()
    if problem is not None:
        raise CliError(problem)
    from teleop_app.ui.app import run_app

    overrides: dict[str, Any] = {
        "hand": args.hand,
        "device": args.device,
        "controller": args.controller,
        "object": args.object,
        "wrist": args.wrist,
        "operator": args.operator,
    }
    overrides["robot"] = args.robot
    overrides["arm"] = args.arm
    return run_app(overrides, duration_s=args.duration, screenshot=screenshot, report=report)


def cmd_calibrate(args: argparse.Namespace) -> int:
    import time

    from devices.clock import RealClock
    from devices.inputs.base import DEVICES
    from devices.inputs.spec import parse_device_spec
    from teleop_app.profiles import calibrate, save_profile

    name, options = parse_device_spec(args.device)
    device = DEVICES.make(name, **options)
    print(
        f"Hold your {args.hand} hand flat, palm down, fingers forward, for {args.seconds:.0f} s...",
        file=sys.stderr,
    )
    frames, seen = [], None
    device.connect(RealClock())
    try:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            f = device.latest()
            if f is not None and f.seq != seen:
                frames.append(f)
                seen = f.seq
            time.sleep(1 / 60)
    finally:
        device.disconnect()
    profile = calibrate(frames, args.operator)
    path = save_profile(profile)
    print(
        f"operator {profile.name}: middle finger {profile.middle_finger_m * 1e3:.0f} mm, "
        f"scale {profile.scale:.3f}; saved {path}"
    )
    return 0


def add_parsers(sub: Any) -> None:
    """``run``, ``app``, ``record``, ``replay`` and ``calibrate`` on the subparsers ``sub``."""
    r = sub.add_parser("run", help="run a headless teleoperation session and report on it")
    r.add_argument("--hand", default="leap", help="hand: leap | allegro (default leap)")
    r.add_argument(
        "--device", default="replay",
        help="input device NAME[:ARGS]: replay[:PATH] (default: the bundled demo clip), "
        "glove[:HOST:PORT], quest3[:logcat=FILE], vive[:tracker=SERIAL]; see 'dexteleop devices'",
    )  # fmt: skip
    r.add_argument("--controller", default="retarget", help="controller (see 'dexteleop list')")
    r.add_argument("--duration", type=positive, default=20.0, help="seconds of loop time")
    r.add_argument(
        "--fast", action="store_true", help="run on a virtual clock, as fast as possible"
    )
    r.add_argument("--report", help="write the JSON report here (default: print it)")
    r.add_argument("--video", help="render the run offscreen to this .mp4")
    r.add_argument("--rate", type=positive, default=20.0, help="control rate, Hz (default 20)")
    r.add_argument(
        "--retarget-mode",
        default="position",
        help="position | vector | dexpilot (default position)",
    )
    r.add_argument("--scale", type=positive, default=1.0, help="extra hand-size scale factor")
    r.add_argument("--operator", help="load this operator's calibration profile")
    r.add_argument(
        "--set", action="append",
        help="controller setting NAME=VALUE (repeat), e.g. goal=point, cost_file=my_cost.py",
    )  # fmt: skip
    r.add_argument(
        "--wrist", default="palm_up",
        help="palm_up | palm_down | base_up | base_down | thumb_up | thumb_down | follow",
    )  # fmt: skip
    r.add_argument("--object", default=None, help="cube | cylinder | sphere | long_cuboid | none")
    r.add_argument("--object-mass", type=positive, default=None, help="object mass, kg")
    r.add_argument("--object-friction", type=positive, default=None, help="object friction")
    add_robot_argument(r)
    add_arm_argument(r)
    r.set_defaults(func=cmd_run)

    a = sub.add_parser("app", help="open the desktop app (PyQt6)")
    a.add_argument("--hand", help="hand: leap | allegro (default: as last time)")
    a.add_argument("--device", help="input device NAME[:ARGS] (default: as last time)")
    a.add_argument("--controller", help="controller (default: as last time)")
    a.add_argument("--object", help="cube | cylinder | sphere | long_cuboid | none")
    a.add_argument("--wrist", help="wrist orientation of the simulated hand")
    a.add_argument("--operator", help="operator profile to use")
    add_robot_argument(a, default=None)
    add_arm_argument(a, default=None)
    a.add_argument(
        "--duration", type=positive, help="run this many seconds of loop time, then quit"
    )
    a.add_argument("--screenshot", help="with --duration: save the main window here (.png)")
    a.add_argument("--report", help="with --duration: write the session and UI report (JSON)")
    a.set_defaults(func=cmd_app)

    rec = sub.add_parser("record", help="record teleoperation episodes into a dataset (headless)")
    rec.add_argument("--out", required=True, help="dataset folder (created, or appended to)")
    rec.add_argument("--hand", default="leap", help="hand: leap | allegro (default leap)")
    rec.add_argument("--device", default="replay", help="input device NAME[:ARGS]")
    rec.add_argument("--controller", default="retarget", help="controller")
    rec.add_argument("--set", action="append", help="controller setting NAME=VALUE (repeat)")
    rec.add_argument("--duration", type=positive, default=10.0, help="seconds per episode")
    rec.add_argument("--episodes", type=int, default=1, help="episodes to record (default 1)")
    rec.add_argument("--task", default="", help="task label of the episodes")
    rec.add_argument("--object", default=None, help="cube | cylinder | sphere | long_cuboid")
    rec.add_argument("--wrist", default="palm_up", help="wrist orientation (default palm_up)")
    rec.add_argument("--retarget-mode", default="position", help="position | vector | dexpilot")
    rec.add_argument("--rate", type=positive, default=20.0, help="control rate = fps (Hz)")
    rec.add_argument("--fast", action="store_true", help="virtual clock, as fast as possible")
    rec.add_argument(
        "--progress", action="store_true", help="print a line each time the log is synced"
    )
    rec.add_argument("--report", help="write the session's JSON report here")
    add_robot_argument(rec)
    add_arm_argument(rec)
    rec.set_defaults(func=cmd_record)

    rp = sub.add_parser(
        "replay", help="feed a recorded operator stream through a controller; compare runs"
    )
    rp.add_argument("dataset", help="dataset folder")
    rp.add_argument("--episode", type=int, default=0)
    rp.add_argument("--controller", help="controller (default: the one that recorded it)")
    rp.add_argument("--set", action="append", help="controller setting NAME=VALUE (repeat)")
    rp.add_argument("--report", help="write the JSON report here (default: print it)")
    rp.add_argument(
        "--retarget", action="store_true",
        help="retarget the recorded human frames again instead of replaying the recorded commands",
    )  # fmt: skip
    rp.add_argument(
        "--robot", metavar="NAME[:key=value,...]",
        help="hand backend to replay on (default: the one that recorded it, else sim)",
    )  # fmt: skip
    rp.set_defaults(func=cmd_replay)

    # no --robot: calibration reads the operator's hand from the device, no hand backend
    cal = sub.add_parser("calibrate", help="measure an operator's hand and save a profile")
    cal.add_argument("--device", default="replay", help="input device NAME[:ARGS]")
    cal.add_argument("--operator", required=True, help="operator id")
    cal.add_argument("--seconds", type=positive, default=3.0, help="how long to hold still")
    cal.add_argument("--hand", default="right", help=argparse.SUPPRESS)
    cal.set_defaults(func=cmd_calibrate)
