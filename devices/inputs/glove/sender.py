"""A reference glove sender: streams a recorded clip as glove packets over UDP.

``python -m devices.inputs.glove FILE`` (or ``dexteleop glove-send``) runs :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import threading
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np

from devices.inputs.clips import Clip, ClipFormatError, load_clip
from devices.inputs.glove.codec import encode_packet
from devices.inputs.glove.protocol import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    FORMATS,
    HANDS,
    GlovePacketError,
)
from devices.inputs.human_hand import DEFAULT_HAND, NUM_JOINTS, HumanHandModel

log = logging.getLogger("devices.inputs.glove")  # same name when run with -m


def fit_clip_angles(clip: Clip, model: HumanHandModel | None = None) -> np.ndarray:
    """Joint angles of every frame of ``clip``, fitted to its keypoints.

    Each frame is fitted with :meth:`HumanHandModel.solve_angles`, starting from the previous
    frame's solution (about 20-40 ms a frame).

    Returns:
        (T, 20) joint angles, radians, within the joint limits.
    """
    model = model or DEFAULT_HAND
    out = np.empty((len(clip), NUM_JOINTS))
    prev: np.ndarray | None = None
    start = time.perf_counter()
    for i, kp in enumerate(clip.keypoints):
        prev = model.solve_angles(kp, prev)
        out[i] = prev
    log.info(
        "glove: fitted joint angles to %d frames in %.1f s", len(clip), time.perf_counter() - start
    )
    return out


def _wait_until(due: float, stop: threading.Event | None) -> bool:
    """Sleep until ``time.monotonic() >= due``; True if ``stop`` was set meanwhile."""
    delay = due - time.monotonic()
    if stop is not None:
        return stop.wait(delay) if delay > 0 else stop.is_set()
    if delay > 0:
        time.sleep(delay)
    return False


def stream_clip(
    clip: Clip,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    speed: float = 1.0,
    loop: bool = False,
    fmt: Literal["msgpack", "json"] | str = "msgpack",
    as_angles: bool = False,
    stop: threading.Event | None = None,
    hand: str = "right",
) -> int:
    """Send ``clip`` as glove packets over UDP, at its recorded timing.

    Packets carry ``seq`` 0, 1, ... (continuing across loops), ``t = time.monotonic()`` at
    sending, the frame's keypoints (or, with ``as_angles``, joint angles fitted once before
    streaming) and its wrist pose.

    Args:
        clip: the clip to send (right-hand keypoints in the wrist frame).
        host: receiver's IPv4 address or host name.
        port: receiver's UDP port.
        speed: playback speed factor (> 0).
        loop: start over after the last frame (one mean frame interval later) until ``stop``.
        fmt: ``"msgpack"`` or ``"json"``.
        as_angles: send joint angles instead of keypoints.
        stop: optional event; setting it ends streaming promptly.
        hand: the ``hand`` field of every packet.

    Returns:
        The number of packets sent.

    Raises:
        ValueError: on bad arguments (speed, fmt, hand, port), or a clip frame that is not
            a valid packet (e.g. a keypoint beyond 0.5 m); all checked before sending.
        OSError: if sending fails (other than the receiver not listening yet).
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be positive, got {speed}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if hand not in HANDS:
        raise ValueError(f"hand must be 'right' or 'left', got {hand!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise ValueError(f"port must be an integer in 1..65535, got {port!r}")
    n = len(clip)
    if n == 0:
        return 0
    angles = fit_clip_angles(clip) if as_angles else None

    def packet(i: int, seq: int, t: float) -> bytes:
        return encode_packet(
            seq,
            t,
            keypoints=None if angles is not None else clip.keypoints[i],
            angles=None if angles is None else angles[i],
            wrist=clip.wrist[i],
            hand=hand,
            fmt=fmt,
        )

    for i in range(n):  # fail before sending anything
        try:
            packet(i, 0, 0.0)
        except GlovePacketError as err:
            raise ValueError(f"clip frame {i} is not a valid glove packet: {err}") from err

    offsets = (np.asarray(clip.t, dtype=float) - float(clip.t[0])) / speed
    mean_dt = float(offsets[-1]) / (n - 1) if n > 1 else 0.0
    period = float(offsets[-1]) + mean_dt
    sent = 0
    refused_logged = False
    log.info(
        "glove: streaming %d frames (%.1f s) to udp://%s:%d as %s %s%s",
        n,
        float(offsets[-1]),
        host,
        port,
        fmt,
        "angles" if as_angles else "keypoints",
        ", looping" if loop else "",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        n_loop = 0
        while True:
            for i in range(n):
                if _wait_until(start + n_loop * period + float(offsets[i]), stop):
                    log.info("glove: stopped after %d packets", sent)
                    return sent
                try:
                    sock.sendto(packet(i, sent, time.monotonic()), (host, port))
                except ConnectionRefusedError:
                    if not refused_logged:
                        log.warning("glove: udp://%s:%d refused packets (no receiver?)", host, port)
                        refused_logged = True
                sent += 1
            if not loop or period <= 0:
                break
            n_loop += 1
    log.info("glove: sent %d packets", sent)
    return sent


def main(argv: Sequence[str] | None = None) -> int:
    """Stream a clip file to a glove receiver (``python -m devices.inputs.glove FILE``).

    Returns:
        Process exit status: 0 on success, 1 on an error, 130 when interrupted.
    """
    parser = argparse.ArgumentParser(
        prog="python -m devices.inputs.glove",
        description="Stream a recorded hand clip (.npz) as glove packets over UDP.",
    )
    parser.add_argument("file", help="clip file (.npz, devices.inputs.clips format)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"receiver (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"UDP port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (default 1)")
    parser.add_argument("--loop", action="store_true", help="loop until interrupted")
    parser.add_argument("--json", action="store_true", help="send JSON instead of MessagePack")
    parser.add_argument("--angles", action="store_true", help="send joint angles, not keypoints")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not 0 < args.port <= 65535:
        log.error("--port must be in 1..65535, got %d", args.port)
        return 1
    try:
        clip = load_clip(args.file)
        stream_clip(
            clip,
            args.host,
            args.port,
            speed=args.speed,
            loop=args.loop,
            fmt="json" if args.json else "msgpack",
            as_angles=args.angles,
        )
    except (ClipFormatError, ValueError, OSError) as err:
        log.error("%s", err)
        return 1
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130
    return 0
