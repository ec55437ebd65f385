"""Tools: ``glove-send`` (stream a clip as glove packets), ``clip generate`` and
``modex cost`` (a gesture cost function written by a language model)."""

from __future__ import annotations

import argparse
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
