"""The ``dexteleop`` command line.

    dexteleop run --hand leap --device replay[:PATH] --controller retarget --duration 20 \
        [--fast] [--report report.json] [--video out.mp4]
    dexteleop list
    dexteleop clip generate KIND --out FILE

Errors a user can cause (a malformed clip, an unknown hand, a missing model) end the run
with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("dexteleop")

EXIT_USAGE = 2


class CliError(Exception):
    """An error to print as one line and exit with status 2."""


def _positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _output_path(path: str | None) -> Path | None:
    """Check an output file can be written before spending a run on it."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{path} is a directory, not a file")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"cannot create the folder for {path}: {e.strerror or e}") from None
    if not p.parent.is_dir() or not os.access(p.parent, os.W_OK):
        raise CliError(f"cannot write to {p.parent}")
    return p


def _control_threads() -> None:
    """A control process runs torch on one intra-op thread (``DEXTELEOP_TORCH_THREADS`` to
    change): planning batches are small, and on a 2-core machine a second torch thread
    only fights the loop, the renderer and the UI for the cores."""
    import torch

    try:
        n = int(os.environ.get("DEXTELEOP_TORCH_THREADS", "1"))
    except ValueError:
        raise CliError("DEXTELEOP_TORCH_THREADS must be a whole number") from None
    torch.set_num_threads(max(1, n))


def _cmd_run(args: argparse.Namespace) -> int:
    _control_threads()
    from teleop_app.session import Session

    report_path, video_path = _output_path(args.report), _output_path(args.video)
    if round(args.duration * args.rate) < 1:
        raise CliError(f"--duration {args.duration} is shorter than one tick at {args.rate} Hz")
    config = _session_config_from_args(
        args,
        object_mass_kg=args.object_mass,
        object_friction=args.object_friction,
        operator=args.operator,
        scale=args.scale,
        keep_states=args.video is not None,
    )
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


def _cmd_list(args: argparse.Namespace) -> int:
    import controllers
    import devices.inputs
    import devices.robots
    from assets import HAND_SPECS, OBJECTS
    from devices.retargeting.retargeter import RETARGET_MODES

    rows = {
        "hands": sorted(HAND_SPECS),
        "hand backends": devices.robots.ROBOTS.names(),
        "devices": devices.inputs.DEVICES.names(),
        "controllers": controllers.CONTROLLERS.names(),
        "retargeting modes": list(RETARGET_MODES),
        "wrist modes": list(devices.robots.WRIST_MODES),
        "objects": sorted(OBJECTS),
    }
    for k, v in rows.items():
        print(f"{k:18s} {', '.join(v)}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
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


def _cmd_glove_send(args: argparse.Namespace) -> int:
    from devices.inputs import glove

    argv = [args.file, "--host", args.host, "--port", str(args.port), "--speed", str(args.speed)]
    argv += ["--loop"] * args.loop + ["--json"] * args.json + ["--angles"] * args.angles
    return glove.main(argv)


def _cmd_devices(args: argparse.Namespace) -> int:
    import devices.inputs

    for name in devices.inputs.DEVICES.names():
        cls = devices.inputs.DEVICES.get(name)
        try:
            reason = cls.availability()
        except Exception as e:  # noqa: BLE001 - a broken probe means unavailable
            reason = f"{type(e).__name__}: {e}"
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        state = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:8s} {state}")
        if doc:
            print(f"         {doc}")
    return 0


def _cmd_clip(args: argparse.Namespace) -> int:
    from devices.inputs.clips import CLIP_KINDS, generate_clip, save_clip

    if args.kind not in CLIP_KINDS:
        raise CliError(f"unknown clip kind {args.kind!r}; known: {', '.join(CLIP_KINDS)}")
    out = _output_path(args.out)
    clip = generate_clip(args.kind, duration_s=args.duration, rate_hz=args.rate, seed=args.seed)
    save_clip(clip, out)
    log.info("wrote %s (%d frames, %.1f s)", args.out, len(clip), clip.duration_s)
    return 0


def _session_config_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    """The simulated session the shared options describe (``extra``: a command's own)."""
    from teleop_app.configs import sim_session_config

    return sim_session_config(
        hand=args.hand,
        device=args.device,
        controller=args.controller,
        controller_options=_settings(args.set),
        wrist=args.wrist,
        obj=args.object,
        retarget_mode=args.retarget_mode,
        rate_hz=args.rate,
        fast=args.fast,
        **extra,
    )


def _settings(pairs: list[str] | None) -> dict[str, Any]:
    """``["guidance=0.5", "mode=free"]`` -> {"guidance": 0.5, "mode": "free"}."""
    out: dict[str, Any] = {}
    for item in pairs or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CliError(f"--set {item!r}: expected NAME=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _cmd_record(args: argparse.Namespace) -> int:
    _control_threads()
    import time

    from teleop_app.recording.recorder import Recorder
    from teleop_app.session import Session

    if round(args.duration * args.rate) < 1:
        raise CliError(f"--duration {args.duration} is shorter than one tick at {args.rate} Hz")
    config = _session_config_from_args(args)
    session = Session(config)

    def progress(episode: int, frames: int) -> None:
        if args.progress:
            print(f"synced episode {episode} frames {frames} t {time.time():.3f}", flush=True)

    recorder = Recorder.for_session(args.out, session, on_sync=progress)
    session.subscribe(recorder)
    report_path = _output_path(args.report)
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


def _cmd_replay(args: argparse.Namespace) -> int:
    _control_threads()
    from teleop_app.recording.replay import counterfactual

    report, _ = counterfactual(
        args.dataset,
        args.episode,
        controller=args.controller,
        settings=_settings(args.set),
        retarget=args.retarget,
    )
    text = json.dumps(report, indent=2)
    if args.report:
        out = _output_path(args.report)
        assert out is not None
        out.write_text(text + "\n")
        log.info("report: %s", out)
    else:
        print(text)
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from teleop_app.recording.reader import RecordedDataset, export_hdf5
    from teleop_app.recording.recorder import pending_logs, recover

    if args.dataset_command == "doctor":
        root = Path(args.dir)
        if not root.is_dir():
            raise CliError(f"{args.dir} is not a folder")
        logs = pending_logs(root)
        for line in recover(root, discard=args.discard, rebuild_stats=True):
            print(line)
        if (root / "meta" / "info.json").exists():
            problems = RecordedDataset(root).validate()
            for p in problems:
                print(f"problem: {p}")
            if problems:
                return 1
        if not logs:
            print("no unfinished episodes")
        print("ok")
        return 0
    ds = RecordedDataset(args.dir)
    if args.dataset_command == "info":
        summary = ds.summary()
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['path']}: {summary['format']} dataset, robot {summary['robot_type']}")
        print(
            f"  {summary['episodes']} episodes, {summary['frames']} frames at "
            f"{summary['fps']} fps ({summary['duration_s']:.1f} s), {summary['bytes'] / 1e6:.1f} MB"
        )
        print(f"  tasks: {', '.join(repr(t) for t in summary['tasks']) or '-'}")
        print(f"  features: {len(summary['features'])}")
        for name, (dtype, *shape) in summary["features"].items():
            print(f"    {name:28s} {dtype:8s} {shape}")
        if summary["unfinished_logs"]:
            print(f"  unfinished: {summary['unfinished_logs']} (run 'dexteleop dataset doctor')")
        return 0
    if args.dataset_command == "export":
        out = _output_path(args.out)
        assert out is not None
        export_hdf5(ds, out)
        print(f"wrote {out} ({ds.num_episodes} demos, {ds.num_frames} samples)")
        return 0
    raise CliError(f"unknown dataset command {args.dataset_command!r}")


def _cmd_app(args: argparse.Namespace) -> int:
    _control_threads()
    if (args.screenshot is not None or args.report is not None) and args.duration is None:
        raise CliError("--screenshot and --report need --duration SECONDS")
    screenshot, report = _output_path(args.screenshot), _output_path(args.report)
    if screenshot is not None and screenshot.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise CliError(f"--screenshot {args.screenshot}: use a .png or .jpg file name")
    from teleop_app.ui.app import display_problem

    problem = display_problem()
    if problem is not None:
        raise CliError(problem)
    from teleop_app.ui.app import run_app

    overrides = {
        "hand": args.hand,
        "device": args.device,
        "controller": args.controller,
        "object": args.object,
        "wrist": args.wrist,
        "operator": args.operator,
    }
    return run_app(overrides, duration_s=args.duration, screenshot=screenshot, report=report)


def _cmd_train(args: argparse.Namespace) -> int:
    if args.train_command == "modex":
        from training.modex.pipeline import run_from_args

        if args.out is not None:
            out = Path(args.out)
            if out.exists() and not out.is_dir():
                raise CliError(f"--out {args.out} is a file, not a folder")
        if args.data is not None and not Path(args.data).with_suffix(".npz").is_file():
            raise CliError(f"--data {args.data}: no {Path(args.data).with_suffix('.npz')}")
        run_from_args(args)
        return 0
    if args.train_command == "rl":
        from training.rl.cli import run_rl

        return run_rl(args)
    if args.train_command == "dexgen":
        from training.dexgen.cli import run_from_args as run_dexgen

        try:
            return run_dexgen(args)
        except (FileNotFoundError, ValueError) as e:
            raise CliError(str(e)) from e
    raise CliError(f"unknown training command {args.train_command!r}")


def _cmd_data(args: argparse.Namespace) -> int:
    from training.rl.cli import run_generate

    try:
        return run_generate(args)
    except FileNotFoundError as e:
        raise CliError(str(e)) from e


def _cmd_modex(args: argparse.Namespace) -> int:
    from assets.hands import FINGERS
    from controllers.modex.gestures import CostFunctionError
    from training.modex.llm import LlmConfig, generate_cost

    out = _output_path(args.out)
    try:
        cfg = LlmConfig.from_env(args.endpoint, args.model)
        code, _cost = generate_cost(args.request, tuple(FINGERS), cfg)
    except CostFunctionError as e:
        raise CliError(str(e)) from None
    if out is not None:
        from assets.atomic import write_atomic

        write_atomic(out, code.encode())
        print(f"wrote {out} (checked: callable, one finite cost per sample)")
    else:
        print(code, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dexteleop", description="Teleoperate dexterous robot hands, real or simulated."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a headless teleoperation session and report on it")
    r.add_argument("--hand", default="leap", help="hand: leap | allegro (default leap)")
    r.add_argument(
        "--device", default="replay",
        help="input device NAME[:ARGS]: replay[:PATH] (default: the bundled demo clip), "
        "glove[:HOST:PORT], quest3[:logcat=FILE], vive[:tracker=SERIAL]; see 'dexteleop devices'",
    )  # fmt: skip
    r.add_argument("--controller", default="retarget", help="controller (see 'dexteleop list')")
    r.add_argument("--duration", type=_positive, default=20.0, help="seconds of loop time")
    r.add_argument(
        "--fast", action="store_true", help="run on a virtual clock, as fast as possible"
    )
    r.add_argument("--report", help="write the JSON report here (default: print it)")
    r.add_argument("--video", help="render the run offscreen to this .mp4")
    r.add_argument("--rate", type=_positive, default=20.0, help="control rate, Hz (default 20)")
    r.add_argument(
        "--retarget-mode",
        default="position",
        help="position | vector | dexpilot (default position)",
    )
    r.add_argument("--scale", type=_positive, default=1.0, help="extra hand-size scale factor")
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
    r.add_argument("--object-mass", type=_positive, default=None, help="object mass, kg")
    r.add_argument("--object-friction", type=_positive, default=None, help="object friction")
    r.set_defaults(func=_cmd_run)

    a = sub.add_parser("app", help="open the desktop app (PyQt6)")
    a.add_argument("--hand", help="hand: leap | allegro (default: as last time)")
    a.add_argument("--device", help="input device NAME[:ARGS] (default: as last time)")
    a.add_argument("--controller", help="controller (default: as last time)")
    a.add_argument("--object", help="cube | cylinder | sphere | long_cuboid | none")
    a.add_argument("--wrist", help="wrist orientation of the simulated hand")
    a.add_argument("--operator", help="operator profile to use")
    a.add_argument(
        "--duration", type=_positive, help="run this many seconds of loop time, then quit"
    )
    a.add_argument("--screenshot", help="with --duration: save the main window here (.png)")
    a.add_argument("--report", help="with --duration: write the session and UI report (JSON)")
    a.set_defaults(func=_cmd_app)

    rec = sub.add_parser("record", help="record teleoperation episodes into a dataset (headless)")
    rec.add_argument("--out", required=True, help="dataset folder (created, or appended to)")
    rec.add_argument("--hand", default="leap", help="hand: leap | allegro (default leap)")
    rec.add_argument("--device", default="replay", help="input device NAME[:ARGS]")
    rec.add_argument("--controller", default="retarget", help="controller")
    rec.add_argument("--set", action="append", help="controller setting NAME=VALUE (repeat)")
    rec.add_argument("--duration", type=_positive, default=10.0, help="seconds per episode")
    rec.add_argument("--episodes", type=int, default=1, help="episodes to record (default 1)")
    rec.add_argument("--task", default="", help="task label of the episodes")
    rec.add_argument("--object", default=None, help="cube | cylinder | sphere | long_cuboid")
    rec.add_argument("--wrist", default="palm_up", help="wrist orientation (default palm_up)")
    rec.add_argument("--retarget-mode", default="position", help="position | vector | dexpilot")
    rec.add_argument("--rate", type=_positive, default=20.0, help="control rate = fps (Hz)")
    rec.add_argument("--fast", action="store_true", help="virtual clock, as fast as possible")
    rec.add_argument(
        "--progress", action="store_true", help="print a line each time the log is synced"
    )
    rec.add_argument("--report", help="write the session's JSON report here")
    rec.set_defaults(func=_cmd_record)

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
    rp.set_defaults(func=_cmd_replay)

    ds = sub.add_parser("dataset", help="inspect, repair and export recorded datasets")
    dsub = ds.add_subparsers(dest="dataset_command", required=True)
    di = dsub.add_parser("info", help="what a dataset holds")
    di.add_argument("dir")
    di.add_argument("--json", action="store_true")
    dd = dsub.add_parser("doctor", help="recover (or --discard) unfinished episodes; validate")
    dd.add_argument("dir")
    dd.add_argument("--discard", action="store_true", help="drop unfinished episodes")
    de = dsub.add_parser("export", help="export to another format")
    de.add_argument("dir")
    de.add_argument("--to", choices=["hdf5"], required=True, help="hdf5: robomimic layout")
    de.add_argument("out", help="output file")
    ds.set_defaults(func=_cmd_dataset)

    ls = sub.add_parser("list", help="list hands, devices, controllers and options")
    ls.set_defaults(func=_cmd_list)

    dv = sub.add_parser("devices", help="list input devices and whether they work here")
    dv.set_defaults(func=_cmd_devices)

    gs = sub.add_parser("glove-send", help="stream a clip as glove packets (UDP protocol v1)")
    gs.add_argument("file", help="clip (.npz) to send")
    gs.add_argument("--host", default="127.0.0.1")
    gs.add_argument("--port", type=int, default=9870)
    gs.add_argument("--speed", type=_positive, default=1.0)
    gs.add_argument("--loop", action="store_true", help="send the clip over and over")
    gs.add_argument("--json", action="store_true", help="JSON packets instead of MessagePack")
    gs.add_argument("--angles", action="store_true", help="send joint angles, not keypoints")
    gs.set_defaults(func=_cmd_glove_send)

    cal = sub.add_parser("calibrate", help="measure an operator's hand and save a profile")
    cal.add_argument("--device", default="replay", help="input device NAME[:ARGS]")
    cal.add_argument("--operator", required=True, help="operator id")
    cal.add_argument("--seconds", type=_positive, default=3.0, help="how long to hold still")
    cal.add_argument("--hand", default="right", help=argparse.SUPPRESS)
    cal.set_defaults(func=_cmd_calibrate)

    tr = sub.add_parser("train", help="train a learned controller's models in simulation")
    trsub = tr.add_subparsers(dest="train_command", required=True)
    from training.modex import add_train_arguments as modex_arguments

    tm = trsub.add_parser(
        "modex", help="MoDex: explore the simulated hand, train forward and inverse models"
    )
    modex_arguments(tm)
    from training.rl.cli import add_generate_arguments, add_rl_arguments

    trl = trsub.add_parser(
        "rl", help="PPO in parallel simulated worlds (anygrasp, free finger motion)"
    )
    add_rl_arguments(trl)
    from training.dexgen.cli import add_train_arguments as dexgen_arguments

    tdg = trsub.add_parser(
        "dexgen", help="DexGen: the keypoint-motion diffusion prior and inverse dynamics"
    )
    dexgen_arguments(tdg)
    tr.set_defaults(func=_cmd_train)

    da = sub.add_parser("data", help="simulation datasets for DexGen")
    dasub = da.add_subparsers(dest="data_command", required=True)
    dg = dasub.add_parser("generate", help="roll out trained policies into a dataset")
    add_generate_arguments(dg)
    da.set_defaults(func=_cmd_data)

    mx = sub.add_parser("modex", help="MoDex tools")
    mxsub = mx.add_subparsers(dest="modex_command", required=True)
    mc = mxsub.add_parser(
        "cost", help="write a gesture cost function with a language model you configure"
    )
    mc.add_argument("request", help="the gesture, in words")
    mc.add_argument("--endpoint", help="OpenAI-compatible API base URL (DEXTELEOP_LLM_ENDPOINT)")
    mc.add_argument("--model", help="model name (DEXTELEOP_LLM_MODEL)")
    mc.add_argument("--out", help="save the checked code here (a cost file for the app)")
    mx.set_defaults(func=_cmd_modex)

    c = sub.add_parser("clip", help="generated human-hand motion clips")
    csub = c.add_subparsers(dest="clip_command", required=True)
    g = csub.add_parser("generate", help="write a generated clip")
    g.add_argument("kind", help="open_close, pinch_index, ..., demo")
    g.add_argument("--out", required=True, help="output .npz")
    g.add_argument("--duration", type=_positive, default=6.0)
    g.add_argument("--rate", type=_positive, default=30.0)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=_cmd_clip)
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


if __name__ == "__main__":
    raise SystemExit(main())
