"""What the operator asks of the hand, in the robot's palm frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Command:
    """One command, produced by retargeting a HumanFrame.

    Attributes:
        t: timestamp of the human frame it came from (loop clock, s).
        seq: sequence number of that frame.
        keypoints: (8, 3) keypoint targets in the palm frame, m (assets.KEYPOINT_NAMES order),
            or None.
        joints: (n,) joint targets from the retargeting optimizer, rad, or None.
        axis: (3,) unit rotation axis in the palm frame for in-hand rotation, or None.
        gesture: name of a gesture (cost function) to make, or None.
    """

    t: float
    seq: int = 0
    keypoints: np.ndarray | None = None
    joints: np.ndarray | None = None
    axis: np.ndarray | None = None
    gesture: str | None = None
