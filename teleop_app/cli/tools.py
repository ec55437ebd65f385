"""Tools: ``glove-send`` (stream a clip as glove packets), ``clip generate``, ``modex cost``
(a gesture cost function written by a language model) and ``robot-check`` (a guided check
of a newly connected hand)."""

from __future__ import annotations

import argparse
import contextlib
import logging
from typing import Any

from teleop_app.cli.common import CliError, output_path, positive

log = logging.getLogger("dexteleop")


def cmd_glove_send(args: argparse.Namespace) -> int:
    from devices.inputs import glove

    argv = [args.file, "--host", args.host, "--port", str(args.port), "--speed", str(args.speed)]
    argv += ["--loop"] * args.loop + ["--json"] * args.json + ["--angles"] * args.angles
    return glove.main(argv)


def cmd_clip(args: argparse.Namespace) -> int:
    from devices.inputs.clips import CLIP_KINDS, generate_clip, save_clip

    if args.kind not in CLIP_KINDS:
        raise CliError(f"unknown clip kind {args.kind!r}; known: {', '.join(CLIP_KINDS)}")
    out = output_path(args.out)
    clip = generate_clip(args.kind, duration_s=args.duration, rate_hz=args.rate, seed=args.seed)
    save_clip(clip, out)
    log.info("wrote %s (%d frames, %.1f s)", args.out, len(clip), clip.duration_s)
    return 0


def cmd_modex(args: argparse.Namespace) -> int:
    from assets.hands import FINGERS
    from controllers.modex.gestures import CostFunctionError
    from training.modex.llm import LlmConfig, generate_cost

    out = output_path(args.out)
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


def cmd_robot_check(args: argparse.Namespace) -> int:
    import json

    import devices.robots  # noqa: F401  (registers the backends)
    from devices.robots.base import ROBOTS
    from devices.robots.check import check_hand, format_table
    from devices.spec import parse_spec

    try:
        name, options = parse_spec(ROBOTS, args.robot)
    except (KeyError, ValueError) as e:
        raise CliError(str(e)) from None
    if "hand" in options:
        raise CliError("give the hand with --hand, not in the robot spec")
    try:
        robot = ROBOTS.make(name, hand=args.hand, **options)
        robot.connect()
    except (ConnectionError, ValueError, OSError) as e:
        raise CliError(f"{name}: {e}") from None
    try:
        report = check_hand(
            robot,
            move=args.move,
            step_rad=args.step,
            joints=args.joints,
            announce=lambda line: print(line, flush=True),
        )
        report["hand"] = robot.hand_report()
    finally:
        robot.disconnect()
    print(format_table(report))
    if args.json:
        from assets.atomic import write_atomic

        write_atomic(output_path(args.json), (json.dumps(report, indent=2) + "\n").encode())
    return 0 if report["ok"] else 1


#: ``dexteleop emulate --fault KIND:ID@SECONDS``: what each bus can be made to do.
EMULATED_FAULTS = {
    "dynamixel": ("silence", "overload", "hot"),
    "allegro": ("silence", "hot"),
}
#: python-can's default IPv4 group for ``udp_multicast`` (buses across processes).
UDP_MULTICAST_GROUP = "239.74.163.2"


def parse_fault(bus: str, spec: str) -> tuple[str, int, float]:
    """``silence:5@4`` -> ("silence", 5, 4.0): servo (or finger) 5 goes silent 4 s in."""
    try:
        kind, _, rest = spec.partition(":")
        ident, _, at = rest.partition("@")
        out = kind, int(ident), float(at or 0.0)
    except ValueError:
        raise CliError(f"--fault {spec!r}: expected KIND:ID@SECONDS, e.g. silence:5@4") from None
    if out[0] not in EMULATED_FAULTS[bus]:
        raise CliError(f"--fault {spec!r}: {bus} faults are {', '.join(EMULATED_FAULTS[bus])}")
    return out


def cmd_emulate(args: argparse.Namespace) -> int:
    """Serve an emulated hand bus until Ctrl-C (or ``--seconds``), with faults on cue."""
    import signal
    import threading

    faults = [parse_fault(args.bus, f) for f in args.fault]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.bus == "dynamixel":
        from devices.robots.emulators.dynamixel import DynamixelBus

        bus: Any = DynamixelBus(seed=args.seed)
        where = f"port={bus.port}"
        hint = f"--hand leap --robot dynamixel:{where}"
        actions = {
            "silence": bus.silence,
            "overload": bus.overload,
            "hot": lambda i: bus.set_temperature(i, 80),
        }
    else:
        from devices.robots.emulators.allegro_can import AllegroCANHand

        channel = args.channel or (
            UDP_MULTICAST_GROUP if args.interface == "udp_multicast" else "allegro0"
        )
        bus = AllegroCANHand(channel=channel, interface=args.interface, seed=args.seed)
        where = f"channel={channel},interface={args.interface}"
        hint = f"--hand allegro --robot allegro_can:{where}"
        actions = {"silence": bus.silence_finger, "hot": lambda f: bus.set_temperature(f, 75)}
    timers = []
    for kind, ident, at in faults:

        def fire(kind: str = kind, ident: int = ident) -> None:
            print(f"fault: {kind} {ident}", flush=True)
            actions[kind](ident)

        timers.append(threading.Timer(at, fire))
    with bus:
        print(f"emulated {args.bus} bus: {where}", flush=True)
        print(f"drive it with: dexteleop run {hint} ...", flush=True)
        for t in timers:
            t.daemon = True
            t.start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(args.seconds)
        for t in timers:
            t.cancel()
    return 0


def add_emulate_parser(sub: Any) -> None:
    em = sub.add_parser(
        "emulate",
        help="serve an emulated hand bus (Dynamixel Protocol 2.0 on a pseudo-terminal, or an "
        "Allegro v4 on a CAN bus) to try or test the real backends without a hand",
    )
    em.add_argument("bus", choices=("dynamixel", "allegro"))
    em.add_argument(
        "--channel",
        help=f"allegro: the CAN channel (default: {UDP_MULTICAST_GROUP} for udp_multicast, "
        "allegro0 for virtual)",
    )
    em.add_argument(
        "--interface",
        default="udp_multicast",
        help="allegro: python-can interface (udp_multicast reaches other processes on this "
        "machine; virtual only this one; socketcan with a vcan device)",
    )
    em.add_argument(
        "--fault",
        nargs="+",
        default=[],
        metavar="KIND:ID@SECONDS",
        help="make a servo (dynamixel: silence, overload, hot) or a finger (allegro: silence, "
        "hot) fail that many seconds in, e.g. silence:5@4",
    )
    em.add_argument("--seconds", type=positive, help="stop after this long (default: Ctrl-C)")
    em.add_argument("--seed", type=int, default=0)
    em.set_defaults(func=cmd_emulate)


def add_robot_check_parser(sub: Any) -> None:
    rc = sub.add_parser(
        "robot-check",
        help="check a newly connected hand: servos, firmware, voltages, temperatures; "
        "with --move, step each joint and verify its direction and offset",
    )
    rc.add_argument("--robot", required=True, help="backend spec, e.g. dynamixel:port=/dev/ttyUSB0")
    rc.add_argument("--hand", default="leap")
    rc.add_argument("--move", action="store_true", help="move each joint a little, one at a time")
    rc.add_argument("--step", type=positive, default=0.15, help="step per joint, rad")
    rc.add_argument("--joints", nargs="+", help="only these joints (default: all)")
    rc.add_argument("--json", help="also write the check as JSON")
    rc.set_defaults(func=cmd_robot_check)


def add_glove_send_parser(sub: Any) -> None:
    gs = sub.add_parser("glove-send", help="stream a clip as glove packets (UDP protocol v1)")
    gs.add_argument("file", help="clip (.npz) to send")
    gs.add_argument("--host", default="127.0.0.1")
    gs.add_argument("--port", type=int, default=9870)
    gs.add_argument("--speed", type=positive, default=1.0)
    gs.add_argument("--loop", action="store_true", help="send the clip over and over")
    gs.add_argument("--json", action="store_true", help="JSON packets instead of MessagePack")
    gs.add_argument("--angles", action="store_true", help="send joint angles, not keypoints")
    gs.set_defaults(func=cmd_glove_send)


def add_modex_parser(sub: Any) -> None:
    mx = sub.add_parser("modex", help="MoDex tools")
    mxsub = mx.add_subparsers(dest="modex_command", required=True)
    mc = mxsub.add_parser(
        "cost", help="write a gesture cost function with a language model you configure"
    )
    mc.add_argument("request", help="the gesture, in words")
    mc.add_argument("--endpoint", help="OpenAI-compatible API base URL (DEXTELEOP_LLM_ENDPOINT)")
    mc.add_argument("--model", help="model name (DEXTELEOP_LLM_MODEL)")
    mc.add_argument("--out", help="save the checked code here (a cost file for the app)")
    mx.set_defaults(func=cmd_modex)


def add_clip_parser(sub: Any) -> None:
    c = sub.add_parser("clip", help="generated human-hand motion clips")
    csub = c.add_subparsers(dest="clip_command", required=True)
    g = csub.add_parser("generate", help="write a generated clip")
    g.add_argument("kind", help="open_close, pinch_index, ..., demo")
    g.add_argument("--out", required=True, help="output .npz")
    g.add_argument("--duration", type=positive, default=6.0)
    g.add_argument("--rate", type=positive, default=30.0)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_clip)
