"""The glove protocol: its specification (this docstring), constants and packet type.

Gloves have no Python SDK; a lab bridges its glove from the vendor's SDK (usually C++) by
sending one small UDP datagram per hand sample to the receiver
(:class:`~devices.inputs.glove.GloveDevice`). This docstring is the specification of that
protocol; :func:`~devices.inputs.glove.encode_packet` / :func:`~devices.inputs.glove.decode_packet`
implement it and :func:`~devices.inputs.glove.stream_clip` is a reference sender that streams
a recorded clip (``python -m devices.inputs.glove FILE``), so the whole path can be tested
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
    :mod:`devices.tick`: origin at the wrist keypoint, +x from the wrist toward the
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
- lower by more, or any ``seq`` after
  :data:`~devices.inputs.glove.device.SENDER_IDLE_RESET_S` (2 s) without a packet in
  sequence from that sender: the sender restarted, its sequence starts afresh there;
- higher: in sequence; the numbers skipped count as lost packets (not as rejections).

A packet in sequence for the other hand than the receiver's is then dropped as
``wrong_hand``; the others are published as frames stamped with the receiver's clock on
arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from devices.inputs.human_hand import DEFAULT_HAND, JOINT_LOWER, JOINT_UPPER, HumanHandModel
from devices.tick import HumanFrame

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

_IDENTITY = np.eye(4)
_IDENTITY.setflags(write=False)


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
