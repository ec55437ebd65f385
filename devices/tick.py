"""The types one control tick passes along, device to hand; light on purpose.

::

    input device -> HumanFrame -> retargeting -> Command -> Controller -> JointTarget
        -> safety filter -> hand backend -> HandState

This module imports numpy only: controllers, backends, the recorder and tests can use
the tick's types without loading pinocchio, dex-retargeting, a renderer or torch.

Human keypoints (21, the operator's hand) and robot keypoints (8, the hand spec's
``ROBOT_KEYPOINT_NAMES``) are different sets with different names.

The human wrist frame
---------------------

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
from typing import TypeAlias

import numpy as np

#: A controller's joint target: (n,) float, rad, in the hand spec's joint order. It is not
#: trusted: the safety filter clips and rate-limits it before any hand sees it.
JointTarget: TypeAlias = np.ndarray

#: Names of the 21 human keypoints, MediaPipe / MANO order (robot keypoints:
#: ``assets.hands.ROBOT_KEYPOINT_NAMES``).
HUMAN_KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

NUM_HUMAN_KEYPOINTS = len(HUMAN_KEYPOINT_NAMES)

WRIST, MIDDLE_MCP, INDEX_MCP, PINKY_MCP = 0, 9, 5, 17


def is_rotation(r: object, tol: float = 1e-2) -> bool:
    """Whether ``r`` is a finite (3, 3) proper rotation: R^T R = I within ``tol``, det +1."""
    try:
        m = np.asarray(r, dtype=float)
    except (TypeError, ValueError):
        return False
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        return False
    return bool(np.abs(m.T @ m - np.eye(3)).max() <= tol and np.linalg.det(m) > 0.5)


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
    if points.shape != (NUM_HUMAN_KEYPOINTS, 3):
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


#: The six signed palm axes the operator can pick (DexNDM's rotation commands), for
#: ``Command.axis``.
PALM_AXES: dict[str, tuple[float, float, float]] = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}


#: The same six axes named sign-last (``z+``, ``z-``), as command lines and training runs
#: name them (a bare ``-z`` reads as an option).
AXES: dict[str, tuple[float, float, float]] = {
    name[1:] + name[0]: v for name, v in PALM_AXES.items()
}


def tilted_unit(name: str, resolve, tilt: float, what: str, example: str) -> np.ndarray:
    """``A>B:DEG``: the unit vector ``resolve(A)`` turned ``DEG`` degrees (times ``tilt``,
    0-1) toward ``resolve(B)`` on the great circle between them; ``what`` (wrist, axis) and
    ``example`` name errors. The one parser of tilted names (axes here, wrists in the
    rotation task)."""
    a, _, rest = name.partition(">")
    b, _, deg = rest.partition(":")
    va, vb = resolve(a), resolve(b)
    try:
        rad = np.radians(float(deg))
    except ValueError:
        raise ValueError(f"{what} {name!r}: write a tilt as A>B:DEG, e.g. {example}") from None
    span = float(np.arccos(np.clip(va @ vb, -1.0, 1.0)))
    if span > np.pi - 1e-6:
        raise ValueError(f"{what} {name!r}: {a} and {b} are opposite; tilt through a third")
    if not (np.isfinite(rad) and 0.0 <= rad <= span + 1e-9):
        raise ValueError(f"{what} {name!r}: the tilt must be 0-{np.degrees(span):.0f} degrees")
    if span < 1e-9:
        return va
    k = np.cross(va, vb) / np.sin(span)  # the unit axis va turns about toward vb
    t = rad * float(np.clip(tilt, 0.0, 1.0))
    return va * np.cos(t) + np.cross(k, va) * np.sin(t)


def tilt_origin(name: str) -> str:
    """The wrist or axis a tilted one (``A>B:DEG``) tilts from (``A``); a plain name itself."""
    return name.partition(">")[0]


def axis_vector(name: str, tilt: float = 1.0) -> np.ndarray:
    """The unit palm axis named ``name`` (:data:`AXES`), or an axis between two of them:
    ``A>B:DEG`` (e.g. ``x->y-:45``, halfway from -x to -y) is axis ``A`` turned ``DEG``
    degrees toward ``B``; ``tilt`` (0-1) scales ``DEG`` (the rotation task's tilt
    curriculum turns a tilted axis with it)."""
    if ">" in name:
        return tilted_unit(name, axis_vector, tilt, "axis", "x->y-:45")
    if name not in AXES:
        raise ValueError(f"unknown axis {name!r}; known: {', '.join([*AXES, 'A>B:DEG'])}")
    return np.array(AXES[name], dtype=float)


def palm_axis(text: str) -> str:
    """A palm axis's name from ``+z`` or ``z+`` (on a command line a bare ``-z`` reads as an
    option, so scripts write ``z-``); ValueError for anything else."""
    name = text if text[:1] in "+-" else text[1:] + text[:1]
    if name not in PALM_AXES:
        raise ValueError(f"{text!r}: not a palm axis ({' '.join(PALM_AXES)})")
    return name


def axis_name(axis: np.ndarray) -> str:
    """A palm axis's name (``+z``), or the axis rounded (``[0.71, 0.00, 0.71]``)."""
    a = np.asarray(axis, dtype=float)
    for name, v in PALM_AXES.items():
        if np.allclose(a, v, atol=1e-6):
            return name
    return "[" + ", ".join(f"{x:.2f}" for x in a) + "]"


@dataclass(frozen=True)
class Command:
    """One command, produced by retargeting a HumanFrame.

    Attributes:
        t: timestamp of the human frame it came from (loop clock, s).
        seq: sequence number of that frame.
        keypoints: (8, 3) keypoint targets in the palm frame, m (``ROBOT_KEYPOINT_NAMES`` order),
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


@dataclass(frozen=True)
class HandState:
    """The measured state of a hand.

    Attributes:
        t: time of the reading on the hand's own clock, s (simulated time for the sim hand).
        q: (n,) joint positions, rad, in the hand spec's joint order.
        dq: (n,) joint velocities, rad/s.
        target: (n,) the last target the hand was sent (after the safety filter).
        keypoints: (8, 3) keypoint positions in the palm frame, m (``ROBOT_KEYPOINT_NAMES`` order).
        wrist: (4, 4) pose of the palm frame in the world.
        object_pose: (7,) object position (m) and quaternion (wxyz) in the world, or None.
        object_dropped: whether the object has left the hand (simulation only), or None.
        effort: (n,) the torque each joint's actuator applies, N m (simulation: MuJoCo's
            actuator force; a servo hand: its measured current through its torque
            constant), or None where the backend does not measure it.
    """

    t: float
    q: np.ndarray
    dq: np.ndarray
    target: np.ndarray
    keypoints: np.ndarray
    wrist: np.ndarray
    object_pose: np.ndarray | None = None
    object_dropped: bool | None = None
    effort: np.ndarray | None = None
