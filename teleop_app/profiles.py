"""Operator profiles and the calibration that fills them.

A profile holds what differs between operators: the retargeting scale (from the measured
hand size) and the wrist alignment (the operator's neutral wrist orientation, so that holding
the hand flat, palm down, fingers forward, puts the robot palm down). Profiles are JSON files
in ``$DEXTELEOP_HOME/operators/`` (default ``~/.config/dexteleop/operators/``), written
atomically.

Calibration: the operator holds a flat open hand, palm down, fingers pointing forward, for a
few seconds. From the frames we take the length of the middle finger (the sum of its bone
lengths, which does not change as the finger bends) and the median wrist orientation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assets.atomic import write_atomic
from devices.inputs.validate import frame_problem
from devices.tick import HumanFrame, is_rotation

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ProfileError(ValueError):
    """A profile is missing, unreadable or invalid; the message says which and why."""


@dataclass
class OperatorProfile:
    """What the app remembers about one operator.

    Attributes:
        name: operator id (letters, digits, ``_.-``).
        scale: retargeting scale factor (nominal human middle finger / this operator's).
        middle_finger_m: the operator's measured middle-finger length (MCP to tip).
        wrist_alignment: (9,) row-major rotation applied on the right of the device's wrist
            orientation (the transpose of the operator's neutral wrist orientation).
        calibrated_at: ISO time of the calibration, or "".
        settings: free-form UI settings kept with the operator.
    """

    name: str
    scale: float = 1.0
    middle_finger_m: float | None = None
    wrist_alignment: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)
    calibrated_at: str = ""
    settings: dict[str, object] = field(default_factory=dict)

    def alignment_matrix(self) -> np.ndarray:
        return np.asarray(self.wrist_alignment, dtype=float).reshape(3, 3)


def app_home() -> Path:
    """Where the app keeps its files: ``$DEXTELEOP_HOME`` or ``~/.config/dexteleop``."""
    home = os.environ.get("DEXTELEOP_HOME")
    return Path(home) if home else Path.home() / ".config" / "dexteleop"


def profiles_dir() -> Path:
    return app_home() / "operators"


def check_operator_name(name: str) -> None:
    """ProfileError unless ``name`` is a valid operator id."""
    _check_name(name)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ProfileError(f"operator name {name!r}: use 1-64 letters, digits, '_', '.', '-'")


def save_profile(profile: OperatorProfile) -> Path:
    """Write ``profile`` atomically (temp file, fsync, rename); returns its path."""
    _check_name(profile.name)
    path = profiles_dir() / f"{profile.name}.json"
    return write_atomic(path, json.dumps(dataclasses.asdict(profile), indent=2) + "\n")


def list_profiles() -> list[str]:
    """Names of the saved operator profiles, sorted."""
    folder = profiles_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.match(p.stem))


def load_profile(name: str) -> OperatorProfile:
    """Load operator ``name``; a clear ProfileError if it is missing or damaged."""
    _check_name(name)
    path = profiles_dir() / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(
            f"no profile for operator {name!r} in {path.parent}; run 'dexteleop calibrate'"
        ) from None
    except (OSError, ValueError) as e:
        raise ProfileError(f"{path}: unreadable profile ({e})") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: not a profile (expected a JSON object)")
    known = {f.name for f in dataclasses.fields(OperatorProfile)}
    try:
        profile = OperatorProfile(**{k: v for k, v in raw.items() if k in known})
        profile.wrist_alignment = tuple(float(v) for v in profile.wrist_alignment)
        r = profile.alignment_matrix()
        profile.scale = float(profile.scale)
        if profile.middle_finger_m is not None:
            profile.middle_finger_m = float(profile.middle_finger_m)
        profile.name = str(profile.name)
        profile.calibrated_at = str(profile.calibrated_at)
    except (TypeError, ValueError) as e:
        raise ProfileError(f"{path}: invalid profile ({e})") from None
    if not isinstance(profile.settings, dict):
        raise ProfileError(f"{path}: settings must be a JSON object")
    if not (np.isfinite(profile.scale) and 0.2 <= profile.scale <= 5.0):
        raise ProfileError(f"{path}: scale {profile.scale} is outside 0.2..5")
    if not is_rotation(r, tol=1e-4):
        raise ProfileError(f"{path}: wrist_alignment is not a proper rotation")
    if profile.name != name:
        raise ProfileError(f"{path}: holds operator {profile.name!r}, not {name!r}")
    return profile


def _middle_finger_m(kp: np.ndarray) -> float:
    return float(sum(np.linalg.norm(kp[i + 1] - kp[i]) for i in (9, 10, 11)))


def _mean_rotation(rs: np.ndarray) -> np.ndarray:
    """The rotation nearest the element-wise mean of (N, 3, 3) rotations."""
    u, _, vt = np.linalg.svd(rs.mean(axis=0))
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def calibrate(frames: Sequence[HumanFrame], name: str, *, min_frames: int = 10) -> OperatorProfile:
    """A profile from frames of the calibration pose (flat hand, palm down, fingers forward).

    Raises:
        ProfileError: too few valid frames, or an implausible hand size.
    """
    from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE

    _check_name(name)
    good = [f for f in frames if frame_problem(f, last_t=None, min_confidence=0.5) is None]
    if len(good) < min_frames:
        raise ProfileError(
            f"calibration needs {min_frames} valid frames, got {len(good)} of {len(frames)}: "
            "is the device tracking the hand?"
        )
    lengths = np.array([_middle_finger_m(np.asarray(f.keypoints)) for f in good])
    measured = float(np.median(lengths))
    nominal = _middle_finger_m(DEFAULT_HAND.keypoints(OPEN_POSE))
    if not 0.04 < measured < 0.16:
        raise ProfileError(f"measured middle finger {measured * 1e3:.0f} mm is not a human hand's")
    neutral = _mean_rotation(np.array([np.asarray(f.wrist)[:3, :3] for f in good]))
    return OperatorProfile(
        name=name,
        scale=round(nominal / measured, 4),
        middle_finger_m=round(measured, 4),
        wrist_alignment=tuple(float(v) for v in neutral.T.ravel()),
        calibrated_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
