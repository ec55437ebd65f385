"""Settings and counters of the ``webcam`` device, and its rejection reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Rejection reasons of :class:`~devices.inputs.webcam.WebcamDevice`.
REASONS: Final[tuple[str, ...]] = (
    "no_hand",
    "wrong_hand",
    "low_confidence",
    "bad_landmarks",
    "camera_error",
    "detector_error",
)


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
            camera driver); see :mod:`devices.inputs.webcam.geometry`.
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
