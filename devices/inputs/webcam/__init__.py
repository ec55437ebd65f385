"""Webcam hand tracking with MediaPipe's HandLandmarker as an input device (optional).

Needs the optional ``webcam`` extra (``pip install 'dexteleop[webcam]'``); importing this
package never imports mediapipe or OpenCV.

- :mod:`~devices.inputs.webcam.geometry`: landmarks to keypoints and a coarse wrist pose
  (axes, handedness, mirroring);
- :mod:`~devices.inputs.webcam.packages`: the optional packages and :func:`find_model`;
- :mod:`~devices.inputs.webcam.backends`: the landmarker and the image source;
- :mod:`~devices.inputs.webcam.config`: the settings, counters and rejection reasons;
- :mod:`~devices.inputs.webcam.device`: the registered ``webcam`` device and its pipeline.
"""

from devices.inputs.webcam.backends import (
    Capture,
    HandDetection,
    Landmarker,
    MediaPipeLandmarker,
    OpenCVCapture,
)
from devices.inputs.webcam.config import REASONS, WebcamConfig, WebcamStats
from devices.inputs.webcam.device import WebcamDevice
from devices.inputs.webcam.geometry import (
    CAMERA_TO_WORLD,
    HANDS,
    landmarks_to_frame_arrays,
    mirror_hand,
    normalize_hand,
    operator_hand,
    other_hand,
    wrist_position_from_image,
)
from devices.inputs.webcam.packages import (
    INSTALL_HINT,
    MODEL_FILENAME,
    MODEL_HINT,
    WebcamError,
    find_model,
)

__all__ = [
    "CAMERA_TO_WORLD",
    "HANDS",
    "INSTALL_HINT",
    "MODEL_FILENAME",
    "MODEL_HINT",
    "REASONS",
    "Capture",
    "HandDetection",
    "Landmarker",
    "MediaPipeLandmarker",
    "OpenCVCapture",
    "WebcamConfig",
    "WebcamDevice",
    "WebcamError",
    "WebcamStats",
    "find_model",
    "landmarks_to_frame_arrays",
    "mirror_hand",
    "normalize_hand",
    "operator_hand",
    "other_hand",
    "wrist_position_from_image",
]
