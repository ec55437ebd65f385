"""Checks a HumanFrame before anything downstream trusts it."""

from __future__ import annotations

import numpy as np

from devices.inputs.frame import NUM_KEYPOINTS, HumanFrame


def frame_problem(frame: object, *, last_t: float | None, min_confidence: float) -> str | None:
    """The reason ``frame`` must not be used, as a safety-event name, or None if it is fine.

    Reasons: ``invalid_input`` (not a frame, wrong shapes, NaN/inf), ``low_confidence``,
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
    if kp.shape != (NUM_KEYPOINTS, 3) or wrist.shape != (4, 4):
        return "invalid_input"
    if not (np.all(np.isfinite(kp)) and np.all(np.isfinite(wrist)) and np.isfinite(t)):
        return "invalid_input"
    if not np.isfinite(conf) or conf < min_confidence:
        return "low_confidence"
    if last_t is not None and t < last_t:
        return "time_backwards"
    return None
