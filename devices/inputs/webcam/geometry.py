"""MediaPipe landmarks of one hand to a :class:`~devices.tick.HumanFrame`'s keypoints and wrist.

Pure functions (numpy only): axes, handedness, mirroring and the coarse wrist position.

Camera and world axes
---------------------
MediaPipe's landmarks use the image axes: x to the right of the image, y down, z away from
the camera (the OpenCV camera frame, right-handed). The world frame is the operator's, as for
the other devices (x forward, y left, z up), for an operator **facing the camera**: forward is
toward the camera, the operator's left is the image's right. :data:`CAMERA_TO_WORLD` maps
camera vectors to world vectors, with the origin at the camera::

    x_world = -z_cam   (toward the camera)
    y_world = +x_cam   (the operator's left: image right)
    z_world = -y_cam   (up)

So a right hand held flat, palm down, fingers pointing at the camera, thumb to the operator's
left has the identity rotation. A left hand's wrist rotation is, as in the glove protocol, the
pose of the frame whose +y points toward the little finger (+x along the fingers, +z dorsal),
so that it stays a proper rotation.

Handedness and mirroring
------------------------
MediaPipe labels a hand ``"Left"`` or ``"Right"`` *as the hand appears in the image it is
given* (as the Tasks API documents it): a real right hand in an ordinary (non-mirrored)
camera image is ``"Right"``, and in a horizontally mirrored ("selfie") image it looks like,
and is labelled, a left hand. Some older models (the legacy MediaPipe Hands solution) assumed
selfie input and report the opposite; for those set :attr:`WebcamConfig.swap_labels`. The
world landmarks have the same handedness as the image. If the frames are mirror images of
the scene (a selfie-mirrored video, a driver that mirrors the camera), set
:attr:`WebcamConfig.mirrored`: the x axis of the landmarks is flipped back and the label
swapped, so ``hand`` always names the operator's real hand.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from devices.tick import NUM_HUMAN_KEYPOINTS, wrist_frame_from_points

HANDS: Final[tuple[str, ...]] = ("right", "left")


#: Rotation (3, 3) taking camera vectors (x image right, y image down, z away from the camera)
#: to world vectors (x forward = toward the camera, y left, z up) for an operator facing the
#: camera: ``v_world = CAMERA_TO_WORLD @ v_cam``. Proper rotation (det +1).
CAMERA_TO_WORLD: Final[np.ndarray] = np.array(
    [
        [0.0, 0.0, -1.0],
        [1.0, 0.0, 0.0],
        [0.0, -1.0, 0.0],
    ]
)
CAMERA_TO_WORLD.setflags(write=False)

_MIRROR_X: Final[np.ndarray] = np.array([-1.0, 1.0, 1.0])
_LEFT_WRIST_AXES: Final[np.ndarray] = np.diag([1.0, -1.0, -1.0])
#: Smallest spread of the landmarks, image-plane units (tan of the angle) or metres, that
#: still gives a depth estimate.
_MIN_SPREAD: Final[float] = 1e-6
_MAX_DEPTH_M: Final[float] = 20.0


def normalize_hand(label: str) -> str:
    """``"Right"`` / ``"left"`` / ... as ``"right"`` or ``"left"``.

    Raises:
        ValueError: for any other label.
    """
    hand = str(label).strip().lower()
    if hand not in HANDS:
        raise ValueError(f"hand must be 'right' or 'left', got {label!r}")
    return hand


def other_hand(hand: str) -> str:
    """``"left"`` for ``"right"`` and vice versa."""
    return "left" if normalize_hand(hand) == "right" else "right"


def operator_hand(seen: str, mirror: bool) -> str:
    """The operator's real hand, from its handedness as seen in the processed image.

    Args:
        seen: ``"right"`` / ``"left"`` (any case): the hand as it appears in the image the
            landmarker processed (MediaPipe's label).
        mirror: the processed image is a horizontal mirror image of the scene.

    Returns:
        ``seen`` if the image was not mirrored, else the other hand.
    """
    return other_hand(seen) if mirror else normalize_hand(seen)


def mirror_hand(points: np.ndarray) -> np.ndarray:
    """Mirror points in their x axis, ``(x, y, z) -> (-x, y, z)``.

    A left hand's landmarks mirrored this way have the shape of a right hand (and vice
    versa); mirroring twice is the identity.

    Args:
        points: (..., 3) points, any unit.

    Returns:
        (..., 3) float64 mirrored copy.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1:] != (3,):
        raise ValueError(f"expected (..., 3) points, got {pts.shape}")
    return pts * _MIRROR_X


def _landmarks(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as a finite (21, 3) float64 array, or ValueError."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (NUM_HUMAN_KEYPOINTS, 3):
        raise ValueError(f"{name} must be (21, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contain NaN or infinity")
    return arr


def wrist_position_from_image(
    world: np.ndarray,
    image: np.ndarray,
    *,
    aspect: float = 4.0 / 3.0,
    hfov_deg: float = 60.0,
) -> np.ndarray:
    """Coarse camera-frame position of keypoint 0 from one monocular observation.

    A pinhole camera with horizontal field of view ``hfov_deg`` and the principal point at
    the image centre is assumed. The depth of the hand is the scale that best maps the
    world landmarks' x, y (metric, camera axes) onto the image landmarks (weak perspective,
    least squares about the centroids); keypoint 0 is then placed on its viewing ray at that
    depth plus its own depth offset in the world landmarks.

    Args:
        world: (21, 3) world landmarks, metres, camera axes (x right, y down, z away).
        image: (21, 3) image landmarks: x, y normalized to [0, 1] by the image width and
            height (x right, y down), z ignored.
        aspect: image width / height.
        hfov_deg: horizontal field of view, degrees.

    Returns:
        (3,) position of keypoint 0 in the camera frame, metres.

    Raises:
        ValueError: on wrong shapes, non-finite values, a degenerate hand or a depth beyond
            20 m.
    """
    world = _landmarks(world, "world landmarks")
    image = _landmarks(image, "image landmarks")
    if not (math.isfinite(aspect) and aspect > 0):
        raise ValueError(f"aspect must be positive, got {aspect}")
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
    k = 2.0 * math.tan(math.radians(hfov_deg) / 2.0)
    # Tangents of the viewing angles: X / Z and Y / Z of each landmark.
    rays = np.stack([(image[:, 0] - 0.5) * k, (image[:, 1] - 0.5) * k / aspect], axis=1)
    d_ray = rays - rays.mean(axis=0)
    d_world = world[:, :2] - world[:, :2].mean(axis=0)
    ww = float(np.sum(d_world * d_world))
    if ww < _MIN_SPREAD**2 or float(np.sum(d_ray * d_ray)) < _MIN_SPREAD**2:
        raise ValueError("degenerate hand: no spread of the landmarks to estimate its depth")
    inv_depth = float(np.sum(d_ray * d_world)) / ww
    if not inv_depth > 1.0 / _MAX_DEPTH_M:
        raise ValueError("hand depth estimate is negative or beyond 20 m")
    depth = 1.0 / inv_depth + float(world[0, 2] - world[:, 2].mean())
    if not 0.0 < depth <= _MAX_DEPTH_M:
        raise ValueError(f"wrist depth estimate {depth:.3g} m is out of range")
    return np.array([rays[0, 0] * depth, rays[0, 1] * depth, depth])


def landmarks_to_frame_arrays(
    world_landmarks: np.ndarray,
    image_landmarks: np.ndarray,
    handedness: str,
    mirror: bool,
    *,
    aspect: float = 4.0 / 3.0,
    hfov_deg: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe landmarks of one hand as ``HumanFrame`` keypoints and wrist pose.

    Args:
        world_landmarks: (21, 3) MediaPipe world landmarks, metres, axes of the processed
            image (x right, y down, z away from the camera), origin anywhere.
        image_landmarks: (21, 3) MediaPipe normalized image landmarks of the same hand
            (x, y in [0, 1] of the processed image's width and height; z unused).
        handedness: ``"right"`` / ``"left"`` (any case): the hand as it appears in the
            processed image (MediaPipe's label, see the module docstring).
        mirror: the processed image is a horizontal mirror image of the scene; the x axes
            are flipped back (``x -> -x``, ``u -> 1 - u``) and the hand is the other one.
        aspect: the image's width / height, for the wrist position.
        hfov_deg: the camera's horizontal field of view, degrees, for the wrist position.

    Returns:
        ``(keypoints, wrist)``: keypoints (21, 3), metres, in the wrist frame of
        :mod:`devices.tick`, with the shape of a right hand (a left hand is
        mirrored, :func:`mirror_hand`); wrist (4, 4), the coarse pose of the wrist frame in
        the world (x toward the camera, y left, z up, origin at the camera, metres; for a
        left hand the frame with +y toward the little finger), see the module docstring.

    Raises:
        ValueError: on wrong shapes, non-finite values, an unknown handedness or a
            degenerate hand.
    """
    world = _landmarks(world_landmarks, "world landmarks")
    image = _landmarks(image_landmarks, "image landmarks").copy()
    hand = operator_hand(handedness, mirror)
    if mirror:
        world = mirror_hand(world)
        image[:, 0] = 1.0 - image[:, 0]
    # ``world`` now holds the operator's real hand in camera axes.
    right_shaped = mirror_hand(world) if hand == "left" else world
    rot = wrist_frame_from_points(right_shaped)
    keypoints = (right_shaped - right_shaped[0]) @ rot
    keypoints[0] = 0.0  # exactly, not 1e-17
    rot_cam = wrist_frame_from_points(world)
    if hand == "left":
        # wrist_frame_from_points gives a left hand +y toward the thumb and +z palmar; turn
        # by 180 degrees about +x: +y toward the little finger, +z dorsal.
        rot_cam = rot_cam @ _LEFT_WRIST_AXES
    wrist = np.eye(4)
    wrist[:3, :3] = CAMERA_TO_WORLD @ rot_cam
    wrist[:3, 3] = CAMERA_TO_WORLD @ wrist_position_from_image(
        world, image, aspect=aspect, hfov_deg=hfov_deg
    )
    return keypoints, wrist
