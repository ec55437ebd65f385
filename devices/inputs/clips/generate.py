"""Generated clips: deterministic synthetic right-hand motion from the hand model.

:func:`generate_clip` synthesises deterministic clips (see :data:`CLIP_KINDS`) from the
kinematic model in :mod:`devices.inputs.human_hand`. Running
``python -m devices.inputs.clips --out DIR`` writes the shipped set: ``demo.npz`` plus one
``<kind>.npz`` per other kind (6 s, 30 Hz, seed 0); see :mod:`devices.inputs.clips.cli`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from scipy.optimize import least_squares

from devices.inputs.clips.fileformat import Clip
from devices.inputs.human_hand import (
    DEFAULT_HAND,
    FIST_POSE,
    JOINT_LOWER,
    JOINT_UPPER,
    OPEN_POSE,
    HumanHandModel,
)
from devices.tick import INDEX_MCP, MIDDLE_MCP, NUM_HUMAN_KEYPOINTS, PINKY_MCP, WRIST

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

#: Length of each segment of the ``demo`` clip, seconds (``duration_s`` is ignored for it).
DEMO_SEGMENT_S: Final[float] = 3.0
#: Standard deviation of the per-axis keypoint noise added to generated clips, metres.
KEYPOINT_NOISE_M: Final[float] = 0.0006
#: Nominal world position of the wrist in generated clips, metres.
WRIST_POSITION_M: Final[tuple[float, float, float]] = (0.0, 0.0, 0.3)

_FINGER_TIP = {"thumb": 4, "index": 8, "middle": 12, "ring": 16, "pinky": 20}
_FINGER_JOINTS = {"thumb": 0, "index": 4, "middle": 8, "ring": 12, "pinky": 16}


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
