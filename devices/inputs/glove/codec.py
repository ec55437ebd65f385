"""Glove packets to and from bytes: validation, decoding and encoding (protocol version 1).

The rules are those of the specification in :mod:`devices.inputs.glove.protocol`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

import msgpack
import numpy as np

from devices.inputs.glove.protocol import (
    ANGLE_MARGIN_RAD,
    FORMATS,
    HANDS,
    LAST_ROW_TOL,
    MAX_KEYPOINT_M,
    MAX_PACKET_BYTES,
    MAX_SEQ,
    MAX_WRIST_M,
    PROTOCOL_VERSION,
    ROTATION_TOL,
    WRIST_ORIGIN_TOL_M,
    GlovePacket,
    GlovePacketError,
)
from devices.inputs.human_hand import JOINT_LOWER, JOINT_UPPER, NUM_JOINTS
from devices.tick import NUM_HUMAN_KEYPOINTS

_JSON_WHITESPACE = b" \t\r\n"
_ANGLE_LOW = JOINT_LOWER - ANGLE_MARGIN_RAD
_ANGLE_HIGH = JOINT_UPPER + ANGLE_MARGIN_RAD


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
