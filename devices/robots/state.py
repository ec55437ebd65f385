"""What a hand backend reports each tick."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HandState:
    """The measured state of a hand.

    Attributes:
        t: time of the reading on the hand's own clock, s (simulated time for the sim hand).
        q: (n,) joint positions, rad, in the hand spec's joint order.
        dq: (n,) joint velocities, rad/s.
        target: (n,) the last target the hand was sent (after the safety filter).
        keypoints: (8, 3) keypoint positions in the palm frame, m (assets.KEYPOINT_NAMES order).
        wrist: (4, 4) pose of the palm frame in the world.
        object_pose: (7,) object position (m) and quaternion (wxyz) in the world, or None.
        object_dropped: whether the object has left the hand (simulation only), or None.
    """

    t: float
    q: np.ndarray
    dq: np.ndarray
    target: np.ndarray
    keypoints: np.ndarray
    wrist: np.ndarray
    object_pose: np.ndarray | None = None
    object_dropped: bool | None = None
