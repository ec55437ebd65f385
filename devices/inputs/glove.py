"""Data gloves (Manus, ...) over UDP: the glove protocol, its receiver device and a sender.

Gloves have no Python SDK; a lab bridges its glove from the vendor's SDK (usually C++) by
sending one small UDP datagram per hand sample to this receiver. This docstring is the
specification of that protocol; :func:`stream_clip` is a reference sender that streams a
recorded clip (``python -m devices.inputs.glove FILE``), so the whole path can be tested
without a glove.

Glove protocol, version 1
=========================

Transport
---------
- UDP over IPv4, one datagram per hand sample, sent to the receiver's address (default
  ``127.0.0.1:9870``; :class:`GloveConfig`).
- A datagram is at most :data:`MAX_PACKET_BYTES` (4096) bytes; larger ones are rejected.
- The receiver identifies a *sender* by the datagram's source address (IP and port).

Encoding
--------
Each datagram holds exactly one object, either

- a MessagePack map (https://msgpack.org; one object, no trailing bytes), or
- a UTF-8 JSON object (RFC 8259).

The receiver auto-detects the encoding: a datagram whose first byte, after optional JSON
whitespace (space, tab, CR, LF), is ``{`` (0x7B) is JSON; anything else is MessagePack (a
MessagePack map never starts with those bytes). Numbers may be integers or floats (32- or
64-bit in MessagePack) wherever a float is expected; booleans are not numbers. JSON's
non-standard ``NaN`` / ``Infinity`` tokens are rejected as ``non_finite``.

Fields
------
Keys are strings. Keys not listed here are ignored (forward compatibility: a minor addition
to the protocol adds optional fields and keeps ``v = 1``). ``null`` / ``nil`` is the same as
an absent key.

``v`` (int, required)
    Protocol version, ``1``. Any other value is rejected (``bad_version``): an incompatible
    change of the protocol increments ``v``, and older receivers refuse it.
``seq`` (int, required)
    ``0 <= seq < 2**63``. Sequence number: a sender starts anywhere (normally 0) and adds 1
    per datagram it sends to a receiver; a sender streaming both hands to one receiver
    numbers them in one sequence. Wrapping around is never needed.
``t`` (float, required)
    Sender's monotonic clock at capture, seconds (any finite value; informative only, the
    receiver stamps frames with its own clock on arrival).
``hand`` (string, required)
    ``"right"`` or ``"left"``. A receiver listens for one hand and rejects the other.
``keypoints`` (array, exactly one of ``keypoints`` / ``angles``)
    The 21 hand keypoints, metres, MediaPipe / MANO order (0 wrist, 1-4 thumb CMC..tip,
    5-8 index MCP..tip, 9-12 middle, 13-16 ring, 17-20 pinky), in the wrist frame of
    :mod:`devices.inputs.frame`: origin at the wrist keypoint, +x from the wrist toward the
    middle-finger MCP, +y toward the thumb side (the part of index MCP - pinky MCP
    orthogonal to +x), +z dorsal (out of the back of the hand). Either a flat array of 63
    numbers ``[x0, y0, z0, x1, ...]`` or 21 arrays of 3 numbers. Keypoint 0 must lie within
    :data:`WRIST_ORIGIN_TOL_M` (1 cm) of the origin and every keypoint within
    :data:`MAX_KEYPOINT_M` (0.5 m) of it.
``angles`` (array of 20 numbers, exactly one of ``keypoints`` / ``angles``)
    Joint angles, radians, in the order and with the sign conventions of
    :data:`devices.inputs.human_hand.JOINT_NAMES` (thumb CMC abduction / flexion, MCP,
    IP; then abduction, MCP, PIP and DIP flexion of index, middle, ring and pinky). Each must
    lie within :data:`ANGLE_MARGIN_RAD` (0.5 rad) of the joint limits
    (``JOINT_LOWER`` / ``JOINT_UPPER``); the receiver clips them into the limits and computes
    keypoints with the nominal hand model ``DEFAULT_HAND``.
``wrist`` (array, optional)
    Pose of the wrist frame in the sender's world frame: a homogeneous 4x4 matrix, metres,
    as 16 numbers row-major or 4 arrays of 4. The rotation block must be orthonormal with
    determinant +1 (within 1e-3), the last row ``0 0 0 1`` (within 1e-6), the translation
    within :data:`MAX_WRIST_M` (100 m) per axis. Absent: the identity.
``confidence`` (float, optional)
    Tracking confidence in [0, 1]; default 1.

Left hands: keypoints use the same axis rules (+x toward the middle MCP, +y toward the
thumb, +z dorsal), which makes them the coordinates of the mirror-image right hand, as the
right-handed pipeline expects; angles keep their anatomical meaning. The wrist rotation must
still be proper, so for a left hand it is the pose of the frame whose +y points toward the
little finger (+x and +z as above).

Example (JSON, shortened)::

    {"v": 1, "seq": 42, "t": 1234.567, "hand": "right",
     "keypoints": [0, 0, 0, 0.03, 0.024, -0.012, ...], "confidence": 0.98}

Receiver behaviour
------------------
Every datagram is decoded and validated; an invalid one is dropped and counted by reason
(``DeviceStatus.rejected``): ``too_large``, ``not_decodable`` (neither valid JSON nor
MessagePack), ``not_a_map``, ``bad_version``, ``missing_field``, ``bad_type`` (including
both ``keypoints`` and ``angles``), ``wrong_shape``, ``non_finite``, ``out_of_range``,
``bad_pose`` (see :class:`GlovePacketError`). A valid packet is then checked against its
sender's sequence, the last ``seq`` in sequence from that sender (either hand):

- equal: dropped as ``duplicate``;
- lower by at most :data:`SEQ_RESTART_GAP` (1000): dropped as ``out_of_order``;
- lower by more, or any ``seq`` after :data:`SENDER_IDLE_RESET_S` (2 s) without a packet in
  sequence from that sender: the sender restarted, its sequence starts afresh there;
- higher: in sequence; the numbers skipped count as lost packets (not as rejections).

A packet in sequence for the other hand than the receiver's is then dropped as
``wrong_hand``; the others are published as frames stamped with the receiver's clock on
arrival.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgpack
import numpy as np

from devices.inputs.base import DEVICES, Device
from devices.inputs.clips import Clip, ClipFormatError, load_clip
from devices.inputs.human_hand import (
    DEFAULT_HAND,
    JOINT_LOWER,
    JOINT_UPPER,
    NUM_JOINTS,
    HumanHandModel,
)
from devices.tick import NUM_HUMAN_KEYPOINTS, HumanFrame

log = logging.getLogger("devices.inputs.glove")  # same name when run with -m

#: Version of the glove protocol this module speaks (the ``v`` field).
PROTOCOL_VERSION: Final[int] = 1
DEFAULT_HOST: Final[str] = "127.0.0.1"
DEFAULT_PORT: Final[int] = 9870
#: Largest datagram accepted, bytes.
MAX_PACKET_BYTES: Final[int] = 4096
#: Farthest a keypoint may be from the wrist, metres (as :mod:`devices.inputs.validate`).
MAX_KEYPOINT_M: Final[float] = 0.5
#: Farthest keypoint 0 (the wrist) may be from the wrist-frame origin, metres.
WRIST_ORIGIN_TOL_M: Final[float] = 0.01
#: Largest wrist translation per axis, metres (as :mod:`devices.inputs.validate`).
MAX_WRIST_M: Final[float] = 100.0
#: How far outside the human joint limits an angle may be, radians.
ANGLE_MARGIN_RAD: Final[float] = 0.5
#: Tolerance on the wrist rotation: ``max |R^T R - I|`` and ``|det R - 1|``.
ROTATION_TOL: Final[float] = 1e-3
#: Tolerance on the wrist pose's last row ``0 0 0 1``.
LAST_ROW_TOL: Final[float] = 1e-6
#: A seq this far below the last accepted one is a restarted sender, not a late packet.
SEQ_RESTART_GAP: Final[int] = 1000
#: After this long without an accepted packet from a sender, its sequence starts afresh, s.
SENDER_IDLE_RESET_S: float = 2.0
#: At most this many senders are tracked; the one heard from least recently is forgotten.
MAX_SENDERS: Final[int] = 64
#: Receive timeout of the receiver thread, s: how long :meth:`GloveDevice.disconnect` waits.
RECV_TIMEOUT_S: Final[float] = 0.05
MAX_SEQ: Final[int] = 2**63 - 1

HANDS: Final[tuple[str, ...]] = ("right", "left")
FORMATS: Final[tuple[str, ...]] = ("msgpack", "json")
#: Reasons of :class:`GlovePacketError`.
PACKET_REASONS: Final[tuple[str, ...]] = (
    "too_large",
    "not_decodable",
    "not_a_map",
    "bad_version",
    "missing_field",
    "bad_type",
    "wrong_shape",
    "non_finite",
    "out_of_range",
    "bad_pose",
)
#: Reasons the receiver adds to :data:`PACKET_REASONS` (``internal_error``: a bug, logged).
DEVICE_REASONS: Final[tuple[str, ...]] = (
    "wrong_hand",
    "duplicate",
    "out_of_order",
    "internal_error",
)

_JSON_WHITESPACE = b" \t\r\n"
_IDENTITY = np.eye(4)
_IDENTITY.setflags(write=False)
_ANGLE_LOW = JOINT_LOWER - ANGLE_MARGIN_RAD
_ANGLE_HIGH = JOINT_UPPER + ANGLE_MARGIN_RAD


class GlovePacketError(ValueError):
    """A datagram that is not a valid glove packet.

    Attributes:
        reason: short snake_case code, one of :data:`PACKET_REASONS`.
    """

    def __init__(self, reason: str, message: str) -> None:
        """Store ``reason`` and the one-line ``message``."""
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class GlovePacket:
    """One validated glove packet (arrays are read-only float64).

    Attributes:
        version: protocol version (``v``), always :data:`PROTOCOL_VERSION`.
        seq: sequence number, ``0 <= seq < 2**63``.
        t: sender's monotonic clock, seconds.
        hand: ``"right"`` or ``"left"``.
        keypoints: (21, 3) keypoints, metres, wrist frame; None if the packet sent angles.
        angles: (20,) joint angles, radians, as sent (within :data:`ANGLE_MARGIN_RAD` of the
            limits); None if the packet sent keypoints.
        wrist: (4, 4) wrist pose in the sender's world, metres; None if absent.
        confidence: tracking confidence in [0, 1].
    """

    version: int
    seq: int
    t: float
    hand: str
    keypoints: np.ndarray | None
    angles: np.ndarray | None
    wrist: np.ndarray | None
    confidence: float

    def hand_keypoints(self, model: HumanHandModel | None = None) -> np.ndarray:
        """(21, 3) keypoints, metres, wrist frame: as sent, or from the angles.

        Angles are clipped into the joint limits, then mapped with ``model`` (default
        :data:`devices.inputs.human_hand.DEFAULT_HAND`).
        """
        if self.keypoints is not None:
            return self.keypoints
        assert self.angles is not None
        angles = np.clip(self.angles, JOINT_LOWER, JOINT_UPPER)
        return (model or DEFAULT_HAND).keypoints(angles)

    def to_frame(self, t: float, model: HumanHandModel | None = None) -> HumanFrame:
        """The packet as a :class:`HumanFrame` stamped ``t`` (receiver clock, seconds)."""
        return HumanFrame(
            keypoints=self.hand_keypoints(model),
            wrist=_IDENTITY if self.wrist is None else self.wrist,
            t=float(t),
            seq=self.seq,
            confidence=self.confidence,
        )


# ---------------------------------------------------------------------------- validation
def _is_number(x: object) -> bool:
    """True for int and float values, not bool."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def _scalar(obj: dict[Any, Any], key: str, default: float | None = None) -> float:
    """Field ``key`` as a finite float; ``default`` if absent (None: required)."""
    value = obj.get(key)
    if value is None:
        if default is None:
            raise GlovePacketError("missing_field", f"required field {key!r} is missing")
        return default
    if not _is_number(value):
        raise GlovePacketError("bad_type", f"{key!r} must be a number, got {type(value).__name__}")
    try:
        out = float(value)
    except OverflowError:
        raise GlovePacketError("out_of_range", f"{key!r} is too large") from None
    if not math.isfinite(out):
        raise GlovePacketError("non_finite", f"{key!r} is not finite ({out})")
    return out


def _array(value: object, key: str, shape: tuple[int, int] | tuple[int]) -> np.ndarray:
    """``value`` (flat list, or for a 2-D ``shape`` a list of rows) as a finite float64 array.

    Raises:
        GlovePacketError: ``bad_type``, ``wrong_shape``, ``out_of_range`` (a number beyond
            float64) or ``non_finite``.
    """
    if not isinstance(value, list):
        raise GlovePacketError(
            "bad_type", f"{key!r} must be an array of numbers, got {type(value).__name__}"
        )
    size = math.prod(shape)
    flat: list[Any] = value
    if len(shape) == 2 and len(value) == shape[0] and any(isinstance(r, list) for r in value):
        if not all(isinstance(r, list) and len(r) == shape[1] for r in value):
            raise GlovePacketError(
                "wrong_shape", f"{key!r} must be {shape[0]} arrays of {shape[1]} numbers"
            )
        flat = [x for row in value for x in row]
    if len(flat) != size:
        nested = f" or {shape[0]} arrays of {shape[1]}" if len(shape) == 2 else ""
        raise GlovePacketError(
            "wrong_shape", f"{key!r} must have {size} numbers{nested}, got {len(value)} items"
        )
    if not all(_is_number(x) for x in flat):
        bad = next(x for x in flat if not _is_number(x))
        raise GlovePacketError(
            "bad_type", f"{key!r} must contain only numbers, found {type(bad).__name__}"
        )
    try:
        arr = np.array([float(x) for x in flat], dtype=np.float64)
    except OverflowError:
        raise GlovePacketError("out_of_range", f"{key!r} holds a number beyond float64") from None
    if not np.all(np.isfinite(arr)):
        raise GlovePacketError("non_finite", f"{key!r} contains NaN or infinity")
    arr = arr.reshape(shape)
    arr.setflags(write=False)
    return arr


def _check_keypoints(kp: np.ndarray) -> None:
    """Range checks of (21, 3) keypoints (metres, wrist frame)."""
    with np.errstate(all="ignore"):
        if float(np.abs(kp).max()) > MAX_KEYPOINT_M:
            raise GlovePacketError(
                "out_of_range", f"a keypoint is farther than {MAX_KEYPOINT_M} m from the wrist"
            )
        dist = np.linalg.norm(kp, axis=1)
    if float(dist[0]) > WRIST_ORIGIN_TOL_M:
        raise GlovePacketError(
            "out_of_range",
            f"keypoint 0 (wrist) is {dist[0]:.3f} m from the wrist-frame origin "
            f"(at most {WRIST_ORIGIN_TOL_M} m): keypoints must be in the wrist frame",
        )
    if float(dist.max()) > MAX_KEYPOINT_M:
        i = int(np.argmax(dist))
        raise GlovePacketError(
            "out_of_range", f"keypoint {i} is {dist[i]:.3f} m from the wrist (max {MAX_KEYPOINT_M})"
        )


def _check_angles(angles: np.ndarray) -> None:
    """Range check of (20,) joint angles, radians."""
    bad = (angles < _ANGLE_LOW) | (angles > _ANGLE_HIGH)
    if bad.any():
        i = int(np.argmax(bad))
        raise GlovePacketError(
            "out_of_range",
            f"angle {i} = {angles[i]:.3g} rad is more than {ANGLE_MARGIN_RAD} rad outside "
            f"the joint limits [{JOINT_LOWER[i]:.2f}, {JOINT_UPPER[i]:.2f}]",
        )


def _check_wrist(w: np.ndarray) -> None:
    """Pose checks of a (4, 4) homogeneous wrist matrix."""
    if float(np.abs(w[3] - (0.0, 0.0, 0.0, 1.0)).max()) > LAST_ROW_TOL:
        raise GlovePacketError("bad_pose", "'wrist' last row must be 0 0 0 1")
    rot = w[:3, :3]
    if float(np.abs(rot).max()) > 1.0 + ROTATION_TOL:
        raise GlovePacketError("bad_pose", "'wrist' rotation is not orthonormal")
    ortho = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if ortho > ROTATION_TOL:
        raise GlovePacketError(
            "bad_pose", f"'wrist' rotation is not orthonormal (max |R^T R - I| = {ortho:.3g})"
        )
    det = float(np.linalg.det(rot))
    if abs(det - 1.0) > ROTATION_TOL:
        raise GlovePacketError(
            "bad_pose", f"'wrist' rotation has determinant {det:.3g}, expected +1"
        )
    if float(np.abs(w[:3, 3]).max()) > MAX_WRIST_M:
        raise GlovePacketError(
            "out_of_range", f"'wrist' translation is beyond {MAX_WRIST_M} m on some axis"
        )


def validate_map(obj: object) -> GlovePacket:
    """Validate a decoded packet (a map) against the protocol.

    Args:
        obj: the decoded JSON / MessagePack object.

    Returns:
        The validated packet.

    Raises:
        GlovePacketError: for anything that is not a valid version-1 packet.
    """
    if not isinstance(obj, dict):
        raise GlovePacketError("not_a_map", f"packet must be a map, got {type(obj).__name__}")
    version = obj.get("v")
    if version is None:
        raise GlovePacketError("missing_field", "required field 'v' is missing")
    if not isinstance(version, int) or isinstance(version, bool):
        raise GlovePacketError("bad_type", f"'v' must be an integer, got {type(version).__name__}")
    if version != PROTOCOL_VERSION:
        raise GlovePacketError(
            "bad_version",
            f"protocol version {version} is not supported (this is {PROTOCOL_VERSION})",
        )
    seq = obj.get("seq")
    if seq is None:
        raise GlovePacketError("missing_field", "required field 'seq' is missing")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise GlovePacketError("bad_type", f"'seq' must be an integer, got {type(seq).__name__}")
    if not 0 <= seq <= MAX_SEQ:
        raise GlovePacketError("out_of_range", f"'seq' must be in [0, 2**63), got {seq}")
    t = _scalar(obj, "t")
    hand = obj.get("hand")
    if hand is None:
        raise GlovePacketError("missing_field", "required field 'hand' is missing")
    if not isinstance(hand, str):
        raise GlovePacketError("bad_type", f"'hand' must be a string, got {type(hand).__name__}")
    if hand not in HANDS:
        raise GlovePacketError("out_of_range", f"'hand' must be 'right' or 'left', got {hand!r}")

    raw_kp, raw_angles = obj.get("keypoints"), obj.get("angles")
    if raw_kp is None and raw_angles is None:
        raise GlovePacketError("missing_field", "one of 'keypoints' or 'angles' is required")
    if raw_kp is not None and raw_angles is not None:
        raise GlovePacketError("bad_type", "send either 'keypoints' or 'angles', not both")
    keypoints = angles = None
    if raw_kp is not None:
        keypoints = _array(raw_kp, "keypoints", (NUM_HUMAN_KEYPOINTS, 3))
        _check_keypoints(keypoints)
    else:
        angles = _array(raw_angles, "angles", (NUM_JOINTS,))
        _check_angles(angles)

    wrist = None
    if obj.get("wrist") is not None:
        wrist = _array(obj["wrist"], "wrist", (4, 4))
        _check_wrist(wrist)
    confidence = _scalar(obj, "confidence", 1.0)
    if not 0.0 <= confidence <= 1.0:
        raise GlovePacketError(
            "out_of_range", f"'confidence' must be in [0, 1], got {confidence:.3g}"
        )
    return GlovePacket(
        version=version,
        seq=seq,
        t=t,
        hand=hand,
        keypoints=keypoints,
        angles=angles,
        wrist=wrist,
        confidence=confidence,
    )


# ---------------------------------------------------------------------------- encoding
def decode_packet(data: bytes | bytearray | memoryview) -> GlovePacket:
    """Decode and validate one datagram (JSON or MessagePack, auto-detected).

    Args:
        data: the datagram's bytes.

    Returns:
        The validated packet.

    Raises:
        GlovePacketError: for any invalid datagram (never another exception for bytes input).
        TypeError: if ``data`` is not bytes-like.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode_packet expects bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_PACKET_BYTES:
        raise GlovePacketError(
            "too_large", f"datagram of {len(data)} bytes exceeds {MAX_PACKET_BYTES}"
        )
    obj: object
    if data.lstrip(_JSON_WHITESPACE)[:1] == b"{":
        try:
            obj = json.loads(data.decode("utf-8"))
        except Exception as err:  # JSON errors, bad UTF-8, recursion / int-size limits
            raise GlovePacketError("not_decodable", f"invalid JSON ({type(err).__name__})") from err
    else:
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as err:  # whatever msgpack raises, the datagram is not MessagePack
            raise GlovePacketError(
                "not_decodable", f"neither JSON nor valid MessagePack ({type(err).__name__})"
            ) from err
    return validate_map(obj)


def _as_list(value: object, key: str, shapes: tuple[tuple[int, ...], ...]) -> list[float]:
    """``value`` as a flat list of Python floats, if its shape is one of ``shapes``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape not in shapes:
        raise ValueError(f"{key} must have shape {' or '.join(map(str, shapes))}, got {arr.shape}")
    return [float(x) for x in arr.ravel()]


def encode_packet(
    seq: int,
    t: float,
    *,
    keypoints: np.ndarray | Sequence[Any] | None = None,
    angles: np.ndarray | Sequence[float] | None = None,
    wrist: np.ndarray | Sequence[Any] | None = None,
    confidence: float = 1.0,
    hand: str = "right",
    fmt: Literal["msgpack", "json"] | str = "msgpack",
) -> bytes:
    """Build one valid glove datagram.

    Args:
        seq: sequence number, ``0 <= seq < 2**63``.
        t: sender's monotonic clock, seconds.
        keypoints: (21, 3) or (63,) keypoints, metres, wrist frame (exactly one of
            ``keypoints`` / ``angles``).
        angles: (20,) joint angles, radians, ``JOINT_NAMES`` order.
        wrist: optional (4, 4) or (16,) wrist pose, metres.
        confidence: tracking confidence in [0, 1].
        hand: ``"right"`` or ``"left"``.
        fmt: ``"msgpack"`` or ``"json"``.

    Returns:
        The datagram (at most :data:`MAX_PACKET_BYTES` bytes).

    Raises:
        GlovePacketError: if the packet would not pass :func:`decode_packet`.
        ValueError: on an unknown ``fmt`` or arrays of the wrong shape.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    obj: dict[str, Any] = {"v": PROTOCOL_VERSION, "seq": seq, "t": t, "hand": hand}
    if keypoints is not None:
        obj["keypoints"] = _as_list(keypoints, "keypoints", ((NUM_HUMAN_KEYPOINTS, 3), (63,)))
    if angles is not None:
        obj["angles"] = _as_list(angles, "angles", ((NUM_JOINTS,),))
    if wrist is not None:
        obj["wrist"] = _as_list(wrist, "wrist", ((4, 4), (16,)))
    if confidence != 1.0:
        obj["confidence"] = confidence
    validate_map(obj)
    if fmt == "json":
        data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
    else:
        data = msgpack.packb(obj, use_bin_type=True)
    if len(data) > MAX_PACKET_BYTES:
        raise GlovePacketError(
            "too_large", f"packet of {len(data)} bytes exceeds {MAX_PACKET_BYTES}"
        )
    return data


# ---------------------------------------------------------------------------- receiver
@dataclass
class GloveConfig:
    """Settings of the glove receiver.

    Attributes:
        host: local address to listen on (``0.0.0.0``: every interface).
        port: UDP port; 0 picks a free one (read it back with :attr:`GloveDevice.port`).
        hand: the hand to accept, ``"right"`` or ``"left"``; packets of the other are
            rejected as ``wrong_hand``.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    hand: str = "right"


@dataclass(frozen=True)
class GloveStats:
    """Counters of the glove receiver since connecting.

    Attributes:
        received: datagrams received (valid or not).
        accepted: packets published as frames.
        lost: packets never received, from gaps in the senders' ``seq``.
        senders: senders currently tracked (distinct source addresses).
        restarts: times a sender's sequence started afresh (restart or idle).
    """

    received: int = 0
    accepted: int = 0
    lost: int = 0
    senders: int = 0
    restarts: int = 0


@dataclass
class _Sender:
    """Sequence state of one sender: the last seq in sequence and when it came (monotonic, s)."""

    last_seq: int
    last_accept: float


@DEVICES.register("glove")
class GloveDevice(Device):
    """Receives glove packets over UDP (protocol in the module docstring) and publishes them.

    A thread owns the socket; each datagram is decoded, validated and checked against its
    sender's sequence; good packets become :class:`HumanFrame` s stamped with
    ``self.clock.now()`` on arrival, with ``seq`` the packet's.
    """

    Config = GloveConfig

    def __init__(self, config: GloveConfig) -> None:
        """Check the settings (nothing is opened before :meth:`connect`).

        Raises:
            ValueError: on an unknown hand or a port outside 0..65535.
        """
        super().__init__()
        if config.hand not in HANDS:
            raise ValueError(f"glove hand must be 'right' or 'left', got {config.hand!r}")
        port = config.port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"glove port must be an integer in 0..65535, got {port!r}")
        self.config = config
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._port: int | None = None
        self._stats_lock = threading.Lock()
        self._received = 0
        self._accepted = 0
        self._lost = 0
        self._restarts = 0
        self._senders: dict[tuple[Any, ...], _Sender] = {}
        self._last_warning: dict[str, float] = {}

    @classmethod
    def availability(cls) -> str | None:
        """Always None: UDP needs no driver or SDK."""
        return None

    @property
    def port(self) -> int | None:
        """The UDP port actually bound (useful with ``port=0``), None when not connected."""
        return self._port

    @property
    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` bound, None when not connected."""
        return None if self._port is None else (self.config.host, self._port)

    def stats(self) -> GloveStats:
        """Receiver counters since connecting (thread-safe)."""
        with self._stats_lock:
            return GloveStats(
                received=self._received,
                accepted=self._accepted,
                lost=self._lost,
                senders=len(self._senders),
                restarts=self._restarts,
            )

    def report_extra(self) -> dict[str, object]:
        """Packets received / accepted / lost (sequence gaps) for the run report."""
        return {"packets": dataclasses.asdict(self.stats())}

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        """Bind the UDP socket and start the receiver thread.

        Raises:
            OSError: if the address cannot be bound (e.g. the port is already in use).
        """
        if self._thread is not None:
            return
        host, port = self.config.host, self.config.port
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                msg = (
                    f"glove: UDP port {port} on {host} is already in use (another glove "
                    "receiver running?); choose another port"
                )
            else:
                msg = f"glove: cannot listen on udp://{host}:{port}: {err.strerror or err}"
            raise OSError(err.errno, msg) from err
        sock.settimeout(RECV_TIMEOUT_S)
        self._sock = sock
        self._port = int(sock.getsockname()[1])
        with self._stats_lock:
            self._received = self._accepted = self._lost = self._restarts = 0
            self._senders.clear()
        self._stop_evt.clear()
        self._thread = threading.Thread(target=self._run, name="glove-udp", daemon=True)
        self._thread.start()
        log.info(
            "glove: listening for %s-hand packets on udp://%s:%d",
            self.config.hand,
            host,
            self._port,
        )

    def _stop(self) -> None:
        """Stop the thread (within about :data:`RECV_TIMEOUT_S`) and close the socket."""
        self._stop_evt.set()
        self._join_thread(self._thread, 1.0)
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._port = None

    # ------------------------------------------------------------------ receiving
    def _run(self) -> None:
        """Receiver loop: never dies on bad input, only when asked to stop."""
        sock = self._sock
        assert sock is not None
        while not self._stop_evt.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError as err:
                if self._stop_evt.is_set():
                    break
                log.warning("glove: receive error: %s", err)
                self._set_message(f"glove: receive error: {err}")
                self._stop_evt.wait(0.01)
                continue
            try:
                self._handle(data, addr)
            except Exception:  # the receiver must survive any bug: log, count, go on
                log.exception("glove: error handling a packet from %s", _fmt_addr(addr))
                self._drop("internal_error", "internal error handling a packet", addr)

    def _handle(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Validate one datagram from ``addr`` and publish it or count why not."""
        now = self.clock.now()
        arrival = time.monotonic()
        with self._stats_lock:
            self._received += 1
        try:
            packet = decode_packet(data)
        except GlovePacketError as err:
            self._drop(err.reason, str(err), addr)
            return
        # The sequence spans both hands of a sender, so check it before the hand.
        verdict = self._sequence(packet.seq, addr, arrival)
        if verdict is not None:
            self._drop(verdict, f"seq {packet.seq}", addr)
            return
        if packet.hand != self.config.hand:
            self._drop(
                "wrong_hand", f"{packet.hand}-hand packet, expecting {self.config.hand}", addr
            )
            return
        frame = packet.to_frame(now)
        with self._stats_lock:
            self._accepted += 1
        self._publish(frame)

    def _sequence(self, seq: int, addr: tuple[Any, ...], arrival: float) -> str | None:
        """Check ``seq`` against ``addr``'s sequence: None (in sequence) or the reject reason.

        ``arrival`` is the receiver's monotonic time, seconds. Updates the sender's state and
        the lost / restart counters.
        """
        with self._stats_lock:
            sender = self._senders.get(addr)
            if sender is None:
                if len(self._senders) >= MAX_SENDERS:
                    oldest = min(self._senders, key=lambda a: self._senders[a].last_accept)
                    del self._senders[oldest]
                self._senders[addr] = _Sender(seq, arrival)
                log.info("glove: new sender %s (seq %d)", _fmt_addr(addr), seq)
                return None
            last = sender.last_seq
            idle = arrival - sender.last_accept > SENDER_IDLE_RESET_S
            if seq <= last:
                if not idle and seq == last:
                    return "duplicate"
                if not idle and last - seq <= SEQ_RESTART_GAP:
                    return "out_of_order"
                self._restarts += 1
                log.info(
                    "glove: sender %s restarted its sequence (%d after %d%s)",
                    _fmt_addr(addr),
                    seq,
                    last,
                    ", idle" if idle else "",
                )
            elif seq > last + 1:
                self._lost += seq - last - 1
            sender.last_seq, sender.last_accept = seq, arrival
            return None

    def _drop(self, reason: str, detail: str, addr: tuple[Any, ...]) -> None:
        """Count a rejected datagram; log a warning at most every 5 s per reason."""
        message = f"glove: dropped packet from {_fmt_addr(addr)}: {reason}: {detail}"
        self._reject(reason, message)
        now = time.monotonic()
        if now - self._last_warning.get(reason, -math.inf) >= 5.0:
            self._last_warning[reason] = now
            log.warning("%s (further '%s' drops logged at debug level for 5 s)", message, reason)
        else:
            log.debug("%s", message)


def _fmt_addr(addr: tuple[Any, ...]) -> str:
    """``host:port`` of a socket address."""
    return f"{addr[0]}:{addr[1]}" if len(addr) >= 2 else str(addr)


# ---------------------------------------------------------------------------- sender
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


if __name__ == "__main__":
    raise SystemExit(main())
