"""Data gloves (Manus, ...) over UDP: the glove protocol, its receiver device and a sender.

- :mod:`~devices.inputs.glove.protocol`: the specification of the glove protocol (its
  docstring), its constants and :class:`GlovePacket`;
- :mod:`~devices.inputs.glove.codec`: validation, :func:`decode_packet`, :func:`encode_packet`;
- :mod:`~devices.inputs.glove.device`: the registered ``glove`` receiver, :class:`GloveDevice`;
- :mod:`~devices.inputs.glove.sender`: :func:`stream_clip`, a reference sender, and its
  command line (``python -m devices.inputs.glove FILE``, :func:`main`).
"""

from devices.inputs.glove.codec import decode_packet, encode_packet, validate_map
from devices.inputs.glove.device import (
    DEVICE_REASONS,
    GloveConfig,
    GloveDevice,
    GloveStats,
)
from devices.inputs.glove.protocol import (
    ANGLE_MARGIN_RAD,
    DEFAULT_HOST,
    DEFAULT_PORT,
    FORMATS,
    HANDS,
    MAX_KEYPOINT_M,
    MAX_PACKET_BYTES,
    MAX_WRIST_M,
    PACKET_REASONS,
    PROTOCOL_VERSION,
    SEQ_RESTART_GAP,
    WRIST_ORIGIN_TOL_M,
    GlovePacket,
    GlovePacketError,
)
from devices.inputs.glove.sender import fit_clip_angles, main, stream_clip

__all__ = [
    "ANGLE_MARGIN_RAD",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEVICE_REASONS",
    "FORMATS",
    "HANDS",
    "MAX_KEYPOINT_M",
    "MAX_PACKET_BYTES",
    "MAX_WRIST_M",
    "PACKET_REASONS",
    "PROTOCOL_VERSION",
    "SEQ_RESTART_GAP",
    "WRIST_ORIGIN_TOL_M",
    "GloveConfig",
    "GloveDevice",
    "GlovePacket",
    "GlovePacketError",
    "GloveStats",
    "decode_packet",
    "encode_packet",
    "fit_clip_angles",
    "main",
    "stream_clip",
    "validate_map",
]
