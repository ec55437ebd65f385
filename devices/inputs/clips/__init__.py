"""Replay clips of human-hand motion: the file format, its validation, and a generator.

- :mod:`~devices.inputs.clips.fileformat`: the ``.npz`` clip format (its docstring is the
  specification), :class:`Clip`, :func:`validate_clip`, :func:`load_clip`, :func:`save_clip`;
- :mod:`~devices.inputs.clips.generate`: :func:`generate_clip`, deterministic synthetic clips;
- :mod:`~devices.inputs.clips.cli`: ``python -m devices.inputs.clips --out DIR`` writes the
  shipped set (:func:`main`).
"""

from devices.inputs.clips.cli import main
from devices.inputs.clips.fileformat import (
    BUTTON_PREFIX,
    REQUIRED_KEYS,
    ROTATION_TOL,
    Clip,
    ClipFormatError,
    load_clip,
    save_clip,
    validate_clip,
)
from devices.inputs.clips.generate import (
    CLIP_KINDS,
    DEMO_SEGMENT_S,
    KEYPOINT_NOISE_M,
    WRIST_POSITION_M,
    generate_clip,
)

__all__ = [
    "BUTTON_PREFIX",
    "CLIP_KINDS",
    "DEMO_SEGMENT_S",
    "KEYPOINT_NOISE_M",
    "REQUIRED_KEYS",
    "ROTATION_TOL",
    "WRIST_POSITION_M",
    "Clip",
    "ClipFormatError",
    "generate_clip",
    "load_clip",
    "main",
    "save_clip",
    "validate_clip",
]
