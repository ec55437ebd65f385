"""Replay clips of human-hand motion: the file format, its validation, and a generator.

File format
-----------
A clip is a NumPy ``.npz`` archive (``np.savez`` / ``np.savez_compressed``, no pickled data)
with these arrays, ``T >= 2`` being the number of frames:

``t``
    (T,) float, seconds, strictly increasing; it may start at any value.
``keypoints``
    (T, 21, 3) float, metres, the 21 MediaPipe / MANO keypoints in the wrist frame defined in
    :mod:`devices.inputs.frame` (origin at the wrist, +x toward the middle MCP, +y toward the
    thumb, +z dorsal). Right hand.
``wrist``
    (T, 4, 4) float, homogeneous pose of the wrist frame in the world frame (metres): the
    rotation block must be orthonormal with determinant +1 (within 1e-3) and the last row
    must be ``0 0 0 1``.
``buttons_<name>`` (optional, any number)
    (T,) float, a button or axis value per frame (booleans as 0.0 / 1.0). ``<name>`` is made of
    letters, digits, ``_``, ``-`` and ``.``.
``rate_hz`` (optional)
    scalar, nominal sample rate; allowed but ignored on load (``t`` is authoritative).

All values must be finite. Other keys are ignored with a warning. :func:`save_clip` writes
``t`` as float64 and everything else as float32, compressed. Every validation failure raises
:class:`ClipFormatError` with a one-line message that names the file and the problem.

Generated clips
---------------
:func:`generate_clip` synthesises deterministic clips (see :data:`CLIP_KINDS`) from the
kinematic model in :mod:`devices.inputs.human_hand`. Running
``python -m devices.inputs.clips --out DIR`` writes the shipped set: ``demo.npz`` plus one
``<kind>.npz`` per other kind (6 s, 30 Hz, seed 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
from scipy.optimize import least_squares

from devices.inputs.human_hand import (
    DEFAULT_HAND,
    FIST_POSE,
    JOINT_LOWER,
    JOINT_UPPER,
    OPEN_POSE,
    HumanHandModel,
)
from devices.tick import INDEX_MCP, MIDDLE_MCP, NUM_HUMAN_KEYPOINTS, PINKY_MCP, WRIST, HumanFrame

logger = logging.getLogger(__name__)

#: Clip kinds :func:`generate_clip` knows, ``demo`` last.
CLIP_KINDS: Final[tuple[str, ...]] = (
    "open_close",
    "pinch_index",
    "pinch_middle",
    "pinch_ring",
    "pinch_pinky",
    "tripod",
    "power_grasp",
    "finger_wave",
    "wrist_rotation",
    "demo",
)

REQUIRED_KEYS: Final[tuple[str, ...]] = ("t", "keypoints", "wrist")
BUTTON_PREFIX: Final[str] = "buttons_"
#: Tolerance on ``max |R^T R - I|`` (and on ``|det R - 1|``) of the wrist rotations.
ROTATION_TOL: Final[float] = 1e-3
#: Length of each segment of the ``demo`` clip, seconds (``duration_s`` is ignored for it).
DEMO_SEGMENT_S: Final[float] = 3.0
#: Standard deviation of the per-axis keypoint noise added to generated clips, metres.
KEYPOINT_NOISE_M: Final[float] = 0.0006
#: Nominal world position of the wrist in generated clips, metres.
WRIST_POSITION_M: Final[tuple[float, float, float]] = (0.0, 0.0, 0.3)

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header, empty archive
_BUTTON_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_FINGER_TIP = {"thumb": 4, "index": 8, "middle": 12, "ring": 16, "pinky": 20}
_FINGER_JOINTS = {"thumb": 0, "index": 4, "middle": 8, "ring": 12, "pinky": 16}


class ClipFormatError(ValueError):
    """A clip file or :class:`Clip` is malformed. ``str(err)`` is one self-explanatory line."""

    def __init__(self, message: str) -> None:
        """Store ``message`` with any line breaks replaced by spaces."""
        super().__init__(" ".join(message.splitlines()))


@dataclass
class Clip:
    """A recorded or generated sequence of hand observations.

    Attributes:
        t: (T,) float64 timestamps, seconds, strictly increasing.
        keypoints: (T, 21, 3) float64 keypoints, metres, in the wrist frame.
        wrist: (T, 4, 4) float64 poses of the wrist frame in the world (metres).
        buttons: button / axis values by name, each (T,) float64.
    """

    t: np.ndarray
    keypoints: np.ndarray
    wrist: np.ndarray
    buttons: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame, seconds."""
        return float(self.t[-1] - self.t[0]) if len(self.t) else 0.0

    def __len__(self) -> int:
        """Return the number of frames T."""
        return len(self.t)

    def frame(self, i: int) -> HumanFrame:
        """Frame ``i`` as a :class:`HumanFrame` (``seq = i``, ``t`` from the clip's clock)."""
        return HumanFrame(
            keypoints=np.array(self.keypoints[i], dtype=float),
            wrist=np.array(self.wrist[i], dtype=float),
            t=float(self.t[i]),
            seq=int(i),
            buttons={k: float(v[i]) for k, v in self.buttons.items()},
        )


# ---------------------------------------------------------------------------- validation
def _fmt_shape(shape: Sequence[int]) -> str:
    """``(10, 21, 3)``-style text for a shape (a 1-tuple prints as ``(5,)``)."""
    return str(tuple(int(s) for s in shape))


def _as_real_array(name: str, key: str, value: object) -> np.ndarray:
    """``value`` as an ndarray of real numbers, else :class:`ClipFormatError`."""
    try:
        arr = np.asarray(value)
    except Exception as err:  # whatever the object is, it is not a usable array
        raise ClipFormatError(f"{name}: {key!r} is not an array ({type(err).__name__})") from err
    if arr.dtype.kind not in "biuf":
        raise ClipFormatError(
            f"{name}: {key!r} has dtype {arr.dtype}, expected real numbers (float)"
        )
    return arr


def _check_frames(
    name: str, key: str, arr: np.ndarray, tail: tuple[int, ...], n: int, expected: str
) -> np.ndarray:
    """Check ``arr`` is ``(n,) + tail`` and finite; return it as float64."""
    if arr.ndim == 1 + len(tail) and arr.shape[1:] == tail and arr.shape[0] != n:
        raise ClipFormatError(
            f"{name}: length mismatch: {key!r} has {arr.shape[0]} frames but 't' has {n}"
        )
    if arr.shape != (n, *tail):
        raise ClipFormatError(
            f"{name}: {key!r} has shape {_fmt_shape(arr.shape)}, expected {expected} with T={n}"
        )
    out = np.array(arr, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise ClipFormatError(
            f"{name}: {key!r} contains non-finite values (NaN or inf), first at frame {first}"
        )
    return out


def _validate_arrays(
    name: str,
    t: object,
    keypoints: object,
    wrist: object,
    buttons: Mapping[str, object],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Validate the clip arrays; return float64 copies ``(t, keypoints, wrist, buttons)``.

    Raises:
        ClipFormatError: on the first problem found, naming ``name``.
    """
    t_arr = _as_real_array(name, "t", t)
    if t_arr.ndim != 1:
        raise ClipFormatError(f"{name}: 't' has shape {_fmt_shape(t_arr.shape)}, expected (T,)")
    n = int(t_arr.shape[0])
    if n < 2:
        raise ClipFormatError(f"{name}: clip has {n} frame(s), expected at least 2")
    t_out = _check_frames(name, "t", t_arr, (), n, "(T,)")
    dt = np.diff(t_out)
    if np.any(dt <= 0):
        i = int(np.argmax(dt <= 0))
        raise ClipFormatError(
            f"{name}: 't' is not strictly increasing: "
            f"t[{i + 1}]={t_out[i + 1]:.9g} <= t[{i}]={t_out[i]:.9g}"
        )

    kp_arr = _as_real_array(name, "keypoints", keypoints)
    kp = _check_frames(name, "keypoints", kp_arr, (NUM_HUMAN_KEYPOINTS, 3), n, "(T, 21, 3)")
    w = _check_frames(name, "wrist", _as_real_array(name, "wrist", wrist), (4, 4), n, "(T, 4, 4)")
    row_err = np.abs(w[:, 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
    if np.any(row_err > 1e-6):
        i = int(np.argmax(row_err > 1e-6))
        row = ", ".join(f"{v:.6g}" for v in w[i, 3])
        raise ClipFormatError(
            f"{name}: 'wrist' frame {i} has last row [{row}], expected [0, 0, 0, 1]"
        )
    rot = w[:, :3, :3]
    ortho_err = np.abs(np.swapaxes(rot, 1, 2) @ rot - np.eye(3)).max(axis=(1, 2))
    if np.any(ortho_err > ROTATION_TOL):
        i = int(np.argmax(ortho_err > ROTATION_TOL))
        raise ClipFormatError(
            f"{name}: 'wrist' frame {i} rotation is not orthonormal "
            f"(max |R^T R - I| = {ortho_err[i]:.3g}, tolerance {ROTATION_TOL:g})"
        )
    det = np.linalg.det(rot)
    if np.any(np.abs(det - 1.0) > ROTATION_TOL):
        i = int(np.argmax(np.abs(det - 1.0) > ROTATION_TOL))
        raise ClipFormatError(
            f"{name}: 'wrist' frame {i} rotation has determinant {det[i]:.3g}, expected +1 "
            "(a reflection is not a rotation)"
        )

    if not isinstance(buttons, Mapping):
        raise ClipFormatError(f"{name}: buttons must be a mapping of name to (T,) array")
    out_buttons: dict[str, np.ndarray] = {}
    for bname, values in buttons.items():
        key = f"{BUTTON_PREFIX}{bname}"
        if not isinstance(bname, str) or not _BUTTON_NAME.fullmatch(bname):
            raise ClipFormatError(
                f"{name}: bad button name {bname!r} (use letters, digits, '_', '-', '.')"
            )
        arr = _as_real_array(name, key, values)
        out_buttons[bname] = _check_frames(name, key, arr, (), n, "(T,)")
    return t_out, kp, w, out_buttons


def validate_clip(clip: Clip, name: str = "clip") -> None:
    """Check that ``clip`` satisfies the clip format (see the module docstring).

    Args:
        clip: the clip to check.
        name: how to name the clip in error messages (e.g. its file name).

    Raises:
        ClipFormatError: with a one-line message naming ``name`` and the problem.
    """
    _validate_arrays(name, clip.t, clip.keypoints, clip.wrist, clip.buttons)


def load_clip(path: str | os.PathLike[str]) -> Clip:
    """Load and validate a clip file.

    Args:
        path: path of the ``.npz`` file.

    Returns:
        The clip, with float64 arrays.

    Raises:
        ClipFormatError: if the file is missing, unreadable, not an ``.npz`` archive, or
            violates the format; the one-line message names the file and the problem.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
    except FileNotFoundError as err:
        raise ClipFormatError(f"{name}: file not found") from err
    except OSError as err:
        raise ClipFormatError(f"{name}: cannot read file ({err.strerror or err})") from err
    if magic.startswith(_NPY_MAGIC):
        raise ClipFormatError(f"{name}: not an .npz archive (it holds a single .npy array)")
    if not magic.startswith(_ZIP_MAGICS):
        raise ClipFormatError(f"{name}: not a valid .npz file (no zip archive signature)")

    arrays: dict[str, object] = {}
    key = ""
    try:  # a corrupt archive can fail in many ways (zip, zlib, npy header, memory): catch all
        with np.load(path, allow_pickle=False) as loaded:
            for key in loaded.files:
                arrays[key] = loaded[key]
    except Exception as err:
        if not key:
            raise ClipFormatError(
                f"{name}: not a valid .npz file ({type(err).__name__}: {err})"
            ) from err
        raise ClipFormatError(
            f"{name}: cannot read array {key!r} ({type(err).__name__}: {err})"
        ) from err
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise ClipFormatError(f"{name}: entry {key!r} is not a .npy array")

    for key in REQUIRED_KEYS:
        if key not in arrays:
            found = ", ".join(repr(k) for k in sorted(arrays)) or "none"
            raise ClipFormatError(f"{name}: missing key {key!r} (found keys: {found})")
    buttons: dict[str, object] = {}
    for key, value in arrays.items():
        if key.startswith(BUTTON_PREFIX):
            buttons[key[len(BUTTON_PREFIX) :]] = value
        elif key not in REQUIRED_KEYS and key != "rate_hz":
            logger.warning("%s: ignoring unknown key %r", name, key)
    t, kp, wrist, out_buttons = _validate_arrays(
        name, arrays["t"], arrays["keypoints"], arrays["wrist"], buttons
    )
    return Clip(t=t, keypoints=kp, wrist=wrist, buttons=out_buttons)


def save_clip(clip: Clip, path: str | os.PathLike[str]) -> None:
    """Validate ``clip`` and write it to ``path`` (compressed ``.npz``).

    ``t`` is written as float64, ``keypoints``, ``wrist`` and buttons as float32. The file is
    written to a temporary name first and then renamed over ``path``.

    Raises:
        ClipFormatError: if the clip (or its float32 version) is invalid; nothing is written.
        OSError: if the file cannot be written.
    """
    name = os.fspath(path)
    t, kp, wrist, buttons = _validate_arrays(name, clip.t, clip.keypoints, clip.wrist, clip.buttons)
    arrays: dict[str, np.ndarray] = {
        "t": t,
        "keypoints": kp.astype(np.float32),
        "wrist": wrist.astype(np.float32),
    }
    for bname, values in buttons.items():
        arrays[f"{BUTTON_PREFIX}{bname}"] = values.astype(np.float32)
    _validate_arrays(  # float32 overflow or rounding must not produce an unloadable file
        name,
        arrays["t"],
        arrays["keypoints"],
        arrays["wrist"],
        {b: arrays[f"{BUTTON_PREFIX}{b}"] for b in buttons},
    )
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.debug("saved clip %s: %d frames, %.2f s", name, len(t), float(t[-1] - t[0]))


# ---------------------------------------------------------------------------- generation
@dataclass(frozen=True)
class _Variation:
    """Seed-dependent variation of a generated clip."""

    phase: float  # cycle fraction added to the motion's phase, [0, 1)
    speed: float  # multiplies the cycle period
    amplitude: float  # scales the motion amplitude (not the pinch/grasp peaks)
    openness: float  # how far the "open" pose leans toward the fist, [0, 1]


_NEUTRAL = _Variation(phase=0.0, speed=1.0, amplitude=1.0, openness=0.0)


def _ease(u: np.ndarray) -> np.ndarray:
    """Cosine easing of ``u`` clipped to [0, 1]: 0 -> 0, 1 -> 1, zero slope at both ends."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def _cycle_profile(cycles: np.ndarray, low: float, rise: float, high: float) -> np.ndarray:
    """Periodic 0 -> 1 -> 0 profile: hold 0, ease up, hold 1, ease down.

    Args:
        cycles: (T,) time in cycles (any real).
        low: fraction of the cycle spent holding 0 (at the start of each cycle).
        rise: fraction of the cycle spent easing from 0 to 1.
        high: fraction of the cycle spent holding 1; the rest (``1 - low - rise - high``,
            which must be > 0) is the fall back to 0.

    Returns:
        (T,) values in [0, 1].
    """
    fall = 1.0 - low - rise - high
    u = np.mod(cycles, 1.0)
    return _ease((u - low) / rise) - _ease((u - low - rise - high) / fall)


def _rest_pose(variation: _Variation) -> np.ndarray:
    """(20,) "open" pose of a clip: the open hand, leaning toward the fist by ``openness``."""
    return OPEN_POSE + variation.openness * (FIST_POSE - OPEN_POSE)


def _solve_contact(
    hand: HumanHandModel,
    nominal: np.ndarray,
    distances: Sequence[tuple[int, int, float]],
    surface: tuple[np.ndarray, np.ndarray, Sequence[tuple[int, float]]] | None = None,
    regularization: float = 0.01,
) -> np.ndarray:
    """Joint angles near ``nominal`` that satisfy keypoint contact constraints.

    Args:
        hand: the hand model.
        nominal: (20,) preferred pose, radians (also the initial guess).
        distances: ``(i, j, d)``: keypoints i and j should be d metres apart.
        surface: optional ``(point, axis, [(i, r), ...])``: keypoint i should be at distance r
            (metres) from the line through ``point`` (3,) along unit ``axis`` (3,).
        regularization: weight (metres per radian) pulling the pose toward ``nominal``.

    Returns:
        (20,) joint angles, radians, within the joint limits.
    """
    a0 = np.clip(nominal, JOINT_LOWER, JOINT_UPPER)

    def residual(a: np.ndarray) -> np.ndarray:
        kp = hand.keypoints(a)
        res = [np.linalg.norm(kp[i] - kp[j]) - d for i, j, d in distances]
        if surface is not None:
            point, axis, items = surface
            for i, r in items:
                v = kp[i] - point
                res.append(np.linalg.norm(v - (v @ axis) * axis) - r)
        return np.concatenate([np.asarray(res, dtype=float), regularization * (a - a0)])

    result = least_squares(residual, a0, bounds=(JOINT_LOWER, JOINT_UPPER), method="trf")
    return np.clip(result.x, JOINT_LOWER, JOINT_UPPER)


def _pose_with(base: np.ndarray, **joints: float) -> np.ndarray:
    """Copy of ``base`` (20,) with named finger blocks set: ``index=(abd, mcp, pip, dip)``."""
    pose = np.array(base, dtype=float)
    for finger, values in joints.items():
        start = _FINGER_JOINTS[finger]
        pose[start : start + 4] = values
    return pose


_RELAXED_FINGERS: Final[dict[str, tuple[float, float, float, float]]] = {
    "index": (0.0, 0.15, 0.20, 0.10),
    "middle": (0.0, 0.20, 0.25, 0.10),
    "ring": (0.0, 0.25, 0.30, 0.15),
    "pinky": (0.0, 0.30, 0.30, 0.15),
}
_PINCH_FINGER: Final[dict[str, tuple[float, float, float, float]]] = {
    "index": (0.0, 0.60, 0.60, 0.30),
    "middle": (0.0, 0.65, 0.70, 0.35),
    "ring": (0.0, 0.75, 0.80, 0.40),
    "pinky": (0.0, 0.85, 0.85, 0.45),
}


@lru_cache(maxsize=64)
def _pinch_pose(hand: HumanHandModel, finger: str) -> np.ndarray:
    """(20,) pose where the thumb tip touches ``finger``'s tip (tips ~7 mm apart, pad contact)."""
    nominal = _pose_with(OPEN_POSE, **_RELAXED_FINGERS)
    nominal = _pose_with(nominal, thumb=(0.8, 0.3, 0.3, 0.3), **{finger: _PINCH_FINGER[finger]})
    pose = _solve_contact(
        hand, nominal, [(_FINGER_TIP["thumb"], _FINGER_TIP[finger], 0.007 * hand.scale)]
    )
    pose.setflags(write=False)
    return pose


@lru_cache(maxsize=16)
def _tripod_pose(hand: HumanHandModel) -> np.ndarray:
    """(20,) pose where the thumb, index and middle tips meet."""
    nominal = _pose_with(
        OPEN_POSE,
        thumb=(0.8, 0.35, 0.3, 0.3),
        index=_PINCH_FINGER["index"],
        middle=_PINCH_FINGER["middle"],
        ring=(0.0, 0.5, 0.6, 0.3),
        pinky=(0.0, 0.6, 0.6, 0.3),
    )
    s = hand.scale
    thumb, index, middle = _FINGER_TIP["thumb"], _FINGER_TIP["index"], _FINGER_TIP["middle"]
    pose = _solve_contact(
        hand,
        nominal,
        [(thumb, index, 0.009 * s), (thumb, middle, 0.009 * s), (index, middle, 0.014 * s)],
    )
    pose.setflags(write=False)
    return pose


@lru_cache(maxsize=16)
def _power_pose(hand: HumanHandModel) -> np.ndarray:
    """(20,) cylindrical power grasp around a 4 cm diameter cylinder across the palm.

    The cylinder axis runs obliquely across the palm (index side slightly more distal), just
    below the MCP line; finger joint centres lie 9 mm (finger half-thickness) outside its
    surface and the thumb wraps around the outside of the fingers.
    """
    s = hand.scale
    radius, half_thickness = 0.020 * s, 0.009 * s
    tilt = 0.18
    axis = np.array([np.sin(tilt), np.cos(tilt), 0.0])
    point = np.array([0.085 * s, 0.0, -(radius + half_thickness + 0.002 * s)])
    items: list[tuple[int, float]] = []
    for finger in ("index", "middle", "ring", "pinky"):
        tip = _FINGER_TIP[finger]
        items += [(k, radius + half_thickness) for k in (tip - 2, tip - 1, tip)]
    items += [(3, radius + 2 * half_thickness + 0.006 * s), (4, radius + 2 * half_thickness)]
    nominal = _pose_with(
        OPEN_POSE,
        thumb=(0.9, 0.5, 0.4, 0.5),
        index=(0.0, 1.0, 1.2, 0.8),
        middle=(0.0, 1.0, 1.2, 0.8),
        ring=(0.0, 1.0, 1.2, 0.8),
        pinky=(0.0, 1.0, 1.2, 0.8),
    )
    pose = _solve_contact(hand, nominal, [], surface=(point, axis, items))
    pose.setflags(write=False)
    return pose


def _kind_angles(
    kind: str, t: np.ndarray, hand: HumanHandModel, var: _Variation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free motion of one kind (not ``demo``).

    Args:
        kind: a clip kind other than ``demo``.
        t: (T,) time since the start of the motion, seconds.
        hand: the hand model.
        var: seed-dependent variation.

    Returns:
        ``(angles (T, 20) rad, roll (T,) rad, pitch (T,) rad)``; roll / pitch rotate the wrist
        about its own x / y axes.
    """
    rest = _rest_pose(var)
    zeros = np.zeros_like(t)

    def cycles(period_s: float) -> np.ndarray:
        return t / (period_s * var.speed) + var.phase

    if kind == "open_close":
        s = var.amplitude * _cycle_profile(cycles(2.4), 0.15, 0.35, 0.15)
        return rest + s[:, None] * (FIST_POSE - rest), zeros, zeros
    if kind.startswith("pinch_") or kind in ("tripod", "power_grasp"):
        if kind == "tripod":
            peak = _tripod_pose(hand)
        elif kind == "power_grasp":
            peak = _power_pose(hand)
        else:
            peak = _pinch_pose(hand, kind.removeprefix("pinch_"))
        period = 3.0 if kind == "power_grasp" else 2.5
        s = _cycle_profile(cycles(period), 0.15 if kind == "power_grasp" else 0.2, 0.3, 0.25)
        return rest + s[:, None] * (peak - rest), zeros, zeros
    if kind == "finger_wave":
        c = cycles(2.0)
        angles = np.repeat(rest[None, :], len(t), axis=0)
        for j, finger in enumerate(("thumb", "index", "middle", "ring", "pinky")):
            s = var.amplitude * (0.5 - 0.5 * np.cos(2.0 * np.pi * (c - 0.12 * j)))
            sl = slice(_FINGER_JOINTS[finger], _FINGER_JOINTS[finger] + 4)
            angles[:, sl] = rest[sl] + s[:, None] * (FIST_POSE[sl] - rest[sl])
        return angles, zeros, zeros
    if kind == "wrist_rotation":
        c = cycles(3.0)
        pose = rest + 0.35 * (FIST_POSE - rest)
        roll = np.deg2rad(60.0) * np.sin(2.0 * np.pi * c)
        pitch = np.deg2rad(10.0) * np.sin(4.0 * np.pi * c)
        return np.repeat(pose[None, :], len(t), axis=0), roll, pitch
    raise ValueError(f"unknown clip kind {kind!r}")


def _wrist_poses(
    t: np.ndarray, roll: np.ndarray, pitch: np.ndarray, drift: np.ndarray
) -> np.ndarray:
    """(T, 4, 4) wrist poses: ``Rx(roll) Ry(pitch)`` at :data:`WRIST_POSITION_M` + ``drift``."""
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    n = len(t)
    w = np.zeros((n, 4, 4))
    # Rx(roll) @ Ry(pitch)
    w[:, 0, 0], w[:, 0, 1], w[:, 0, 2] = cp, 0.0, sp
    w[:, 1, 0], w[:, 1, 1], w[:, 1, 2] = sr * sp, cr, -sr * cp
    w[:, 2, 0], w[:, 2, 1], w[:, 2, 2] = -cr * sp, sr, cr * cp
    w[:, :3, 3] = np.asarray(WRIST_POSITION_M) + drift
    w[:, 3, 3] = 1.0
    return w


def _keypoint_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 21, 3) Gaussian keypoint noise, metres, that keeps the wrist frame exact.

    Every keypoint but the wrist gets :data:`KEYPOINT_NOISE_M` per axis, except that the
    middle MCP only moves along x and the index and pinky MCPs share their z noise; so
    ``wrist_frame_from_points`` of a noisy frame is still the identity and the wrist pose
    stays free of jitter.
    """
    noise = rng.normal(0.0, KEYPOINT_NOISE_M, size=(n, NUM_HUMAN_KEYPOINTS, 3))
    noise[:, WRIST, :] = 0.0
    noise[:, MIDDLE_MCP, 1:] = 0.0
    noise[:, PINKY_MCP, 2] = noise[:, INDEX_MCP, 2]
    return noise


def generate_clip(
    kind: str,
    *,
    duration_s: float = 6.0,
    rate_hz: float = 30.0,
    seed: int = 0,
    hand: HumanHandModel | None = None,
) -> Clip:
    """Synthesise a deterministic clip of right-hand motion.

    Kinds (:data:`CLIP_KINDS`): ``open_close`` (open hand <-> fist), ``pinch_index``,
    ``pinch_middle``, ``pinch_ring``, ``pinch_pinky`` (thumb tip meets the finger tip, tips
    < 1.5 cm apart at the peak, held ~0.6 s), ``tripod`` (thumb, index, middle tips meet),
    ``power_grasp`` (wrap around a 4 cm cylinder, thumb opposed), ``finger_wave`` (thumb to
    pinky flex one after another), ``wrist_rotation`` (half-open hand, the wrist rolls +-60 deg
    about its x axis and pitches +-10 deg), and ``demo``: every other kind in that order, each
    :data:`DEMO_SEGMENT_S` seconds, blended to the open hand and neutral wrist at each segment
    boundary (27 s in all; ``duration_s`` is ignored for ``demo``).

    The wrist sits at :data:`WRIST_POSITION_M` with identity rotation (except in
    ``wrist_rotation``) and a smooth drift below 5 mm. Keypoints get Gaussian noise of
    :data:`KEYPOINT_NOISE_M` per axis (about 1 mm per point), constrained so that the wrist
    frame computed from the noisy keypoints is still exactly the identity. The seed also
    varies the cycle phase, speed (+-10 %), amplitude (85-100 %, except the pinch / tripod /
    grasp peaks, which are always reached) and how open the "open" hand is.

    Args:
        kind: one of :data:`CLIP_KINDS`.
        duration_s: clip length, seconds (T = round(duration_s * rate_hz) + 1 frames, t from 0).
        rate_hz: sample rate, Hz.
        seed: seed of the numpy random Generator; the same seed gives identical arrays.
        hand: the hand model (default :data:`devices.inputs.human_hand.DEFAULT_HAND`).

    Returns:
        The clip (float64 arrays, no buttons).

    Raises:
        ValueError: on an unknown kind or a non-positive duration or rate.
    """
    if kind not in CLIP_KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; expected one of {', '.join(CLIP_KINDS)}")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    hand = hand or DEFAULT_HAND
    rng = np.random.default_rng(seed)
    var = _Variation(
        phase=float(rng.uniform(0.0, 1.0)),
        speed=float(rng.uniform(0.9, 1.1)),
        amplitude=float(rng.uniform(0.85, 1.0)),
        openness=float(rng.uniform(0.0, 0.1)),
    )
    if kind == "demo":
        segments = [k for k in CLIP_KINDS if k != "demo"]
        duration_s = DEMO_SEGMENT_S * len(segments)
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    n = max(2, round(duration_s * rate_hz) + 1)
    t = np.arange(n) / rate_hz

    if kind == "demo":
        demo_var = _Variation(0.0, 1.0, var.amplitude, var.openness)
        rest = _rest_pose(demo_var)
        index = np.minimum((t // DEMO_SEGMENT_S).astype(int), len(segments) - 1)
        angles = np.empty((n, len(JOINT_LOWER)))
        roll, pitch = np.zeros(n), np.zeros(n)
        for k, seg_kind in enumerate(segments):
            sel = index == k
            tau = t[sel] - k * DEMO_SEGMENT_S
            a, r, p = _kind_angles(seg_kind, tau, hand, demo_var)
            ramp = 0.5  # seconds of blending at each end of a segment
            w = _ease(tau / ramp) * _ease((DEMO_SEGMENT_S - tau) / ramp)
            angles[sel] = rest + w[:, None] * (a - rest)
            roll[sel], pitch[sel] = w * r, w * p
    else:
        angles, roll, pitch = _kind_angles(kind, t, hand, var)

    drift_periods = rng.uniform(5.0, 9.0, size=3)
    drift_phases = rng.uniform(0.0, 2.0 * np.pi, size=3)
    drift = 0.002 * np.sin(2.0 * np.pi * t[:, None] / drift_periods + drift_phases)
    wrist = _wrist_poses(t, roll, pitch, drift)

    kp = hand.keypoints(angles) + _keypoint_noise(rng, n)
    return Clip(t=t, keypoints=kp, wrist=wrist, buttons={})


# ---------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """Write the shipped clips (``demo.npz`` and one ``<kind>.npz`` per other kind).

    Returns:
        Process exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m devices.inputs.clips", description="Generate the shipped hand clips."
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--rate", type=float, default=30.0, help="sample rate, Hz (default 30)")
    parser.add_argument(
        "--duration", type=float, default=6.0, help="length of each non-demo clip, s (default 6)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in CLIP_KINDS:
        clip = generate_clip(kind, duration_s=args.duration, rate_hz=args.rate, seed=args.seed)
        path = args.out / f"{kind}.npz"
        try:
            save_clip(clip, path)
        except (ClipFormatError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{path}: {len(clip)} frames, {clip.duration_s:.1f} s, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
