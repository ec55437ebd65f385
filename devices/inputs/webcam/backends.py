"""What the webcam device runs on: a hand landmarker and an image source, each behind a
small protocol (:class:`Landmarker`, :class:`Capture`) so tests can stand in for them.

:class:`MediaPipeLandmarker` and :class:`OpenCVCapture` are the real ones; they import
mediapipe and OpenCV when built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from devices.inputs.webcam.packages import WebcamError, import_optional


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
        mp = import_optional("mediapipe")
        vision = import_optional("mediapipe.tasks.python.vision")
        tasks = import_optional("mediapipe.tasks.python")
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
        cv2 = import_optional("cv2")
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


def to_rgb(image: np.ndarray) -> np.ndarray:
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
