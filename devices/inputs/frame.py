"""The human-hand frame every input device publishes.

Wrist frame (used by every ``HumanFrame.keypoints``), for a right hand:

- origin: the wrist keypoint (index 0);
- +x: from the wrist toward the middle-finger MCP (keypoint 9), i.e. along the fingers;
- +y: toward the thumb side, the part of (index MCP 5 - pinky MCP 17) orthogonal to +x;
- +z: ``x cross y``, out of the back of the hand (dorsal). The palm faces -z.

The robot palm frame (``assets.hands``) uses the same axes (x along the fingers, y toward
the thumb, z dorsal), so retargeting needs no rotation between the two, only a scale and an
anchor. Keypoints follow the MediaPipe / MANO order of 21 points:

    0 wrist
    1-4   thumb  CMC, MCP, IP, tip
    5-8   index  MCP, PIP, DIP, tip
    9-12  middle MCP, PIP, DIP, tip
    13-16 ring   MCP, PIP, DIP, tip
    17-20 pinky  MCP, PIP, DIP, tip
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NUM_KEYPOINTS = 21

#: Names of the 21 keypoints, MediaPipe / MANO order.
KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

WRIST, MIDDLE_MCP, INDEX_MCP, PINKY_MCP = 0, 9, 5, 17


@dataclass(frozen=True)
class HumanFrame:
    """One observation of the operator's hand.

    Attributes:
        keypoints: (21, 3) float, metres, in the wrist frame documented above.
        wrist: (4, 4) float, pose of the wrist frame in the device's world frame.
        t: monotonic timestamp of capture, seconds (same clock as the control loop).
        seq: sequence number, increasing with every new frame (a gap: frames skipped).
        confidence: tracking confidence in [0, 1].
        buttons: button / axis values by name (booleans as 0.0 / 1.0).
        controllers: extra tracked poses by name (e.g. ``"left"``, ``"right"`` for Quest
            controllers, a tracker's serial), each (4, 4) in the device's world frame.
    """

    keypoints: np.ndarray
    wrist: np.ndarray
    t: float
    seq: int = 0
    confidence: float = 1.0
    buttons: dict[str, float] = field(default_factory=dict)
    controllers: dict[str, np.ndarray] = field(default_factory=dict)


def wrist_frame_from_points(points: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) whose columns are the wrist-frame axes, given 21 points in any frame.

    Use it to express keypoints measured in a world or camera frame in the wrist frame:
    ``local = (points - points[0]) @ R``.

    Raises:
        ValueError: if ``points`` is not (21, 3) or the hand is degenerate.
    """
    points = np.asarray(points, dtype=float)
    if points.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"expected (21, 3) keypoints, got {points.shape}")
    x = points[MIDDLE_MCP] - points[WRIST]
    across = points[INDEX_MCP] - points[PINKY_MCP]
    nx = np.linalg.norm(x)
    if nx < 1e-6:
        raise ValueError("degenerate hand: wrist and middle MCP coincide")
    x = x / nx
    y = across - x * (across @ x)
    ny = np.linalg.norm(y)
    if ny < 1e-6:
        raise ValueError("degenerate hand: index and pinky MCP are aligned with the wrist")
    y = y / ny
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)
