"""Checks a HumanFrame before anything downstream trusts it."""

from __future__ import annotations

import numpy as np

from devices.tick import NUM_HUMAN_KEYPOINTS, HumanFrame

#: A hand keypoint farther than this from the wrist is a tracking error, not a hand (m).
MAX_KEYPOINT_M = 0.5
#: A wrist farther than this from the device's origin is a tracking error (m).
MAX_WRIST_M = 100.0


def is_rotation(r: object, tol: float = 1e-2) -> bool:
    """Whether ``r`` is a finite (3, 3) proper rotation: R^T R = I within ``tol``, det +1."""
    try:
        m = np.asarray(r, dtype=float)
    except (TypeError, ValueError):
        return False
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        return False
    return bool(np.abs(m.T @ m - np.eye(3)).max() <= tol and np.linalg.det(m) > 0.5)


def frame_problem(frame: object, *, last_t: float | None, min_confidence: float) -> str | None:
    """The reason ``frame`` must not be used, as a safety-event name, or None if it is fine.

    Reasons: ``invalid_input`` (not a frame, wrong shapes, NaN/inf, keypoints farther than
    MAX_KEYPOINT_M from the wrist or a wrist beyond MAX_WRIST_M), ``low_confidence``,
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
    if not np.isfinite(conf) or conf < min_confidence:
        return "low_confidence"
    if last_t is not None and t < last_t:
        return "time_backwards"
    return None
