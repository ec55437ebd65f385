"""Checks a HumanFrame before anything downstream trusts it."""

from __future__ import annotations

from typing import Final

import numpy as np

from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
from devices.tick import NUM_HUMAN_KEYPOINTS, HumanFrame

#: A hand keypoint farther than this from the wrist is a tracking error, not a hand (m).
MAX_KEYPOINT_M = 0.5
#: A wrist farther than this from the device's origin is a tracking error (m).
MAX_WRIST_M = 100.0

#: The 20 bones of the 21-keypoint hand, ``(parent, child)`` keypoint indices: per finger
#: (thumb, index, middle, ring, pinky) the palm bone from the wrist, then the phalanges.
HAND_BONES: Final[tuple[tuple[int, int], ...]] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (0, 9), (9, 10), (10, 11), (11, 12),
    (0, 13), (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip
#: Keypoints all within this of the origin: the all-zero frame some gloves send when their
#: tracking drops (m).
ALL_ZERO_TOL_M: Final[float] = 1e-6
#: A bone shorter than this fraction of the nominal hand's (:data:`NOMINAL_BONE_M`) has
#: collapsed (two keypoints on top of each other): 0.25, so a 0.7x hand keeps a margin of 2.8x.
MIN_BONE_FRACTION: Final[float] = 0.25
#: A bone longer than this fraction of the nominal hand's is no human's: 2.0, so a 1.4x hand
#: keeps a margin of 1.43x (an adult hand is about 0.8x to 1.2x the model), while a bone
#: stretched 3x is refused on any hand from 0.7x (3 x 0.7 = 2.1) up.
MAX_BONE_FRACTION: Final[float] = 2.0


_PARENTS, _CHILDREN = np.array(HAND_BONES).T


def bone_lengths(keypoints: np.ndarray) -> np.ndarray:
    """(..., 20) lengths of :data:`HAND_BONES` of (..., 21, 3) keypoints (their unit)."""
    kp = np.asarray(keypoints, dtype=float)
    d = kp[..., _CHILDREN, :] - kp[..., _PARENTS, :]
    return np.sqrt(np.einsum("...i,...i->...", d, d))  # every frame, every tick: no norm()


#: (20,) bone lengths of the nominal adult hand of :mod:`devices.inputs.human_hand` (m);
#: its bones are rigid, so they are the same in every pose (40 mm wrist to thumb CMC, 83-92
#: mm wrist to finger MCPs, 20-47 mm phalanges).
NOMINAL_BONE_M: Final[np.ndarray] = bone_lengths(DEFAULT_HAND.keypoints(OPEN_POSE))
#: (20,) shortest plausible length of each bone (m).
MIN_BONE_M: Final[np.ndarray] = MIN_BONE_FRACTION * NOMINAL_BONE_M
#: (20,) longest plausible length of each bone (m).
MAX_BONE_M: Final[np.ndarray] = MAX_BONE_FRACTION * NOMINAL_BONE_M
for _arr in (NOMINAL_BONE_M, MIN_BONE_M, MAX_BONE_M):
    _arr.setflags(write=False)

#: The reasons :func:`frame_problem` gives for finite keypoints that are not a human hand.
IMPLAUSIBLE_HAND_REASONS: Final[tuple[str, ...]] = (
    "hand_all_zero",  # every keypoint at the origin (within ALL_ZERO_TOL_M)
    "hand_bone_too_short",  # a bone below MIN_BONE_M: zero-length, keypoints collapsed
    "hand_bone_too_long",  # a bone above MAX_BONE_M
)


def hand_problem(keypoints: np.ndarray) -> str | None:
    """Why finite (21, 3) keypoints (metres) are not a human hand, or None if they may be.

    One of :data:`IMPLAUSIBLE_HAND_REASONS`, checked in that order.
    """
    kp = np.asarray(keypoints, dtype=float)
    if np.abs(kp).max() <= ALL_ZERO_TOL_M:
        return "hand_all_zero"
    lengths = bone_lengths(kp)
    if (lengths < MIN_BONE_M).any():
        return "hand_bone_too_short"
    if (lengths > MAX_BONE_M).any():
        return "hand_bone_too_long"
    return None


def frame_problem(frame: object, *, last_t: float | None, min_confidence: float) -> str | None:
    """The reason ``frame`` must not be used, as a safety-event name, or None if it is fine.

    Reasons: ``invalid_input`` (not a frame, wrong shapes, NaN/inf, keypoints farther than
    MAX_KEYPOINT_M from the wrist or a wrist beyond MAX_WRIST_M), one of
    :data:`IMPLAUSIBLE_HAND_REASONS` (keypoints that are no human hand: all zero, a bone
    collapsed or longer than a human's, see :func:`hand_problem`), ``low_confidence``,
    ``time_backwards`` (older than the last accepted frame).
    """
    if not isinstance(frame, HumanFrame):
        return "invalid_input"
    try:
        kp = np.asarray(frame.keypoints, dtype=float)
        wrist = np.asarray(frame.wrist, dtype=float)
        t = float(frame.t)
        conf = float(frame.confidence)
    except (TypeError, ValueError):
        return "invalid_input"
    if kp.shape != (NUM_HUMAN_KEYPOINTS, 3) or wrist.shape != (4, 4):
        return "invalid_input"
    if not (np.all(np.isfinite(kp)) and np.all(np.isfinite(wrist)) and np.isfinite(t)):
        return "invalid_input"
    if np.abs(kp).max() > MAX_KEYPOINT_M or np.abs(wrist[:3, 3]).max() > MAX_WRIST_M:
        return "invalid_input"
    problem = hand_problem(kp)
    if problem is not None:
        return problem
    if not np.isfinite(conf) or conf < min_confidence:
        return "low_confidence"
    if last_t is not None and t < last_t:
        return "time_backwards"
    return None
