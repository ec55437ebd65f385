"""The clip file format: :class:`Clip`, its validation, :func:`load_clip` and :func:`save_clip`.

File format
-----------
with these arrays, ``T >= 2`` being the number of frames:

``t``
    (T,) float, seconds, strictly increasing; it may start at any value.
``keypoints``
    (T, 21, 3) float, metres, the 21 MediaPipe / MANO keypoints in the wrist frame defined in
    :mod:`devices.tick` (origin at the wrist, +x toward the middle MCP, +y toward the
    thumb, +z dorsal). Right hand.
``wrist``
    (T, 4, 4) float, homogeneous pose of the wrist frame in the world frame (metres): the
    rotation block must be orthonormal with determinant +1 (within 1e-3) and the last row
    must be ``0 0 0 1``.
``buttons_<name>`` (optional, any number)
    (T,) float, a button or axis value per frame (booleans as 0.0 / 1.0). ``<name>`` is made of
    letters, digits, ``_``, ``-`` and ``.``.
``rate_hz`` (optional)
    scalar, nominal sample rate; allowed but ignored on load (``t`` is authoritative).

All values must be finite. Other keys are ignored with a warning. :func:`save_clip` writes
``t`` as float64 and everything else as float32, compressed. Every validation failure raises
:class:`ClipFormatError` with a one-line message that names the file and the problem.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from assets.atomic import atomic_path
from devices.tick import NUM_HUMAN_KEYPOINTS, HumanFrame

logger = logging.getLogger("devices.inputs.clips")

REQUIRED_KEYS: Final[tuple[str, ...]] = ("t", "keypoints", "wrist")
BUTTON_PREFIX: Final[str] = "buttons_"
#: Tolerance on ``max |R^T R - I|`` (and on ``|det R - 1|``) of the wrist rotations.
ROTATION_TOL: Final[float] = 1e-3

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header, empty archive
_BUTTON_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class ClipFormatError(ValueError):
    """A clip file or :class:`Clip` is malformed. ``str(err)`` is one self-explanatory line."""

    def __init__(self, message: str) -> None:
        """Store ``message`` with any line breaks replaced by spaces."""
        super().__init__(" ".join(message.splitlines()))


@dataclass
class Clip:
    """A recorded or generated sequence of hand observations.

    Attributes:
        t: (T,) float64 timestamps, seconds, strictly increasing.
        keypoints: (T, 21, 3) float64 keypoints, metres, in the wrist frame.
        wrist: (T, 4, 4) float64 poses of the wrist frame in the world (metres).
        buttons: button / axis values by name, each (T,) float64.
    """

    t: np.ndarray
    keypoints: np.ndarray
    wrist: np.ndarray
    buttons: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame, seconds."""
        return float(self.t[-1] - self.t[0]) if len(self.t) else 0.0

    def __len__(self) -> int:
        """Return the number of frames T."""
        return len(self.t)

    def frame(self, i: int) -> HumanFrame:
        """Frame ``i`` as a :class:`HumanFrame` (``seq = i``, ``t`` from the clip's clock)."""
        return HumanFrame(
            keypoints=np.array(self.keypoints[i], dtype=float),
            wrist=np.array(self.wrist[i], dtype=float),
            t=float(self.t[i]),
            seq=int(i),
            buttons={k: float(v[i]) for k, v in self.buttons.items()},
        )


# ---------------------------------------------------------------------------- validation
def _fmt_shape(shape: Sequence[int]) -> str:
    """``(10, 21, 3)``-style text for a shape (a 1-tuple prints as ``(5,)``)."""
    return str(tuple(int(s) for s in shape))


def _as_real_array(name: str, key: str, value: object) -> np.ndarray:
    """``value`` as an ndarray of real numbers, else :class:`ClipFormatError`."""
    try:
        arr = np.asarray(value)
    except Exception as err:  # whatever the object is, it is not a usable array
        raise ClipFormatError(f"{name}: {key!r} is not an array ({type(err).__name__})") from err
    if arr.dtype.kind not in "biuf":
        raise ClipFormatError(
            f"{name}: {key!r} has dtype {arr.dtype}, expected real numbers (float)"
        )
    return arr


def _check_frames(
    name: str, key: str, arr: np.ndarray, tail: tuple[int, ...], n: int, expected: str
) -> np.ndarray:
    """Check ``arr`` is ``(n,) + tail`` and finite; return it as float64."""
    if arr.ndim == 1 + len(tail) and arr.shape[1:] == tail and arr.shape[0] != n:
        raise ClipFormatError(
            f"{name}: length mismatch: {key!r} has {arr.shape[0]} frames but 't' has {n}"
        )
    if arr.shape != (n, *tail):
        raise ClipFormatError(
            f"{name}: {key!r} has shape {_fmt_shape(arr.shape)}, expected {expected} with T={n}"
        )
    out = np.array(arr, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise ClipFormatError(
            f"{name}: {key!r} contains non-finite values (NaN or inf), first at frame {first}"
        )
    return out


def _validate_arrays(
    name: str,
    t: object,
    keypoints: object,
    wrist: object,
    buttons: Mapping[str, object],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Validate the clip arrays; return float64 copies ``(t, keypoints, wrist, buttons)``.

    Raises:
        ClipFormatError: on the first problem found, naming ``name``.
    """
    t_arr = _as_real_array(name, "t", t)
    if t_arr.ndim != 1:
        raise ClipFormatError(f"{name}: 't' has shape {_fmt_shape(t_arr.shape)}, expected (T,)")
    n = int(t_arr.shape[0])
    if n < 2:
        raise ClipFormatError(f"{name}: clip has {n} frame(s), expected at least 2")
    t_out = _check_frames(name, "t", t_arr, (), n, "(T,)")
    dt = np.diff(t_out)
    if np.any(dt <= 0):
        i = int(np.argmax(dt <= 0))
        raise ClipFormatError(
            f"{name}: 't' is not strictly increasing: "
            f"t[{i + 1}]={t_out[i + 1]:.9g} <= t[{i}]={t_out[i]:.9g}"
        )

    kp_arr = _as_real_array(name, "keypoints", keypoints)
    kp = _check_frames(name, "keypoints", kp_arr, (NUM_HUMAN_KEYPOINTS, 3), n, "(T, 21, 3)")
    w = _check_frames(name, "wrist", _as_real_array(name, "wrist", wrist), (4, 4), n, "(T, 4, 4)")
    row_err = np.abs(w[:, 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
    if np.any(row_err > 1e-6):
        i = int(np.argmax(row_err > 1e-6))
        row = ", ".join(f"{v:.6g}" for v in w[i, 3])
        raise ClipFormatError(
            f"{name}: 'wrist' frame {i} has last row [{row}], expected [0, 0, 0, 1]"
        )
    rot = w[:, :3, :3]
    ortho_err = np.abs(np.swapaxes(rot, 1, 2) @ rot - np.eye(3)).max(axis=(1, 2))
    if np.any(ortho_err > ROTATION_TOL):
        i = int(np.argmax(ortho_err > ROTATION_TOL))
        raise ClipFormatError(
            f"{name}: 'wrist' frame {i} rotation is not orthonormal "
            f"(max |R^T R - I| = {ortho_err[i]:.3g}, tolerance {ROTATION_TOL:g})"
        )
    det = np.linalg.det(rot)
    if np.any(np.abs(det - 1.0) > ROTATION_TOL):
        i = int(np.argmax(np.abs(det - 1.0) > ROTATION_TOL))
        raise ClipFormatError(
            f"{name}: 'wrist' frame {i} rotation has determinant {det[i]:.3g}, expected +1 "
            "(a reflection is not a rotation)"
        )

    if not isinstance(buttons, Mapping):
        raise ClipFormatError(f"{name}: buttons must be a mapping of name to (T,) array")
    out_buttons: dict[str, np.ndarray] = {}
    for bname, values in buttons.items():
        key = f"{BUTTON_PREFIX}{bname}"
        if not isinstance(bname, str) or not _BUTTON_NAME.fullmatch(bname):
            raise ClipFormatError(
                f"{name}: bad button name {bname!r} (use letters, digits, '_', '-', '.')"
            )
        arr = _as_real_array(name, key, values)
        out_buttons[bname] = _check_frames(name, key, arr, (), n, "(T,)")
    return t_out, kp, w, out_buttons


def validate_clip(clip: Clip, name: str = "clip") -> None:
    """Check that ``clip`` satisfies the clip format (see the module docstring).

    Args:
        clip: the clip to check.
        name: how to name the clip in error messages (e.g. its file name).

    Raises:
        ClipFormatError: with a one-line message naming ``name`` and the problem.
    """
    _validate_arrays(name, clip.t, clip.keypoints, clip.wrist, clip.buttons)


def load_clip(path: str | os.PathLike[str]) -> Clip:
    """Load and validate a clip file.

    Args:
        path: path of the ``.npz`` file.

    Returns:
        The clip, with float64 arrays.

    Raises:
        ClipFormatError: if the file is missing, unreadable, not an ``.npz`` archive, or
            violates the format; the one-line message names the file and the problem.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
    except FileNotFoundError as err:
        raise ClipFormatError(f"{name}: file not found") from err
    except OSError as err:
        raise ClipFormatError(f"{name}: cannot read file ({err.strerror or err})") from err
    if magic.startswith(_NPY_MAGIC):
        raise ClipFormatError(f"{name}: not an .npz archive (it holds a single .npy array)")
    if not magic.startswith(_ZIP_MAGICS):
        raise ClipFormatError(f"{name}: not a valid .npz file (no zip archive signature)")

    arrays: dict[str, object] = {}
    key = ""
    try:  # a corrupt archive can fail in many ways (zip, zlib, npy header, memory): catch all
        with np.load(path, allow_pickle=False) as loaded:
            for key in loaded.files:
                arrays[key] = loaded[key]
    except Exception as err:
        if not key:
            raise ClipFormatError(
                f"{name}: not a valid .npz file ({type(err).__name__}: {err})"
            ) from err
        raise ClipFormatError(
            f"{name}: cannot read array {key!r} ({type(err).__name__}: {err})"
        ) from err
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise ClipFormatError(f"{name}: entry {key!r} is not a .npy array")

    for key in REQUIRED_KEYS:
        if key not in arrays:
            found = ", ".join(repr(k) for k in sorted(arrays)) or "none"
            raise ClipFormatError(f"{name}: missing key {key!r} (found keys: {found})")
    buttons: dict[str, object] = {}
    for key, value in arrays.items():
        if key.startswith(BUTTON_PREFIX):
            buttons[key[len(BUTTON_PREFIX) :]] = value
        elif key not in REQUIRED_KEYS and key != "rate_hz":
            logger.warning("%s: ignoring unknown key %r", name, key)
    t, kp, wrist, out_buttons = _validate_arrays(
        name, arrays["t"], arrays["keypoints"], arrays["wrist"], buttons
    )
    return Clip(t=t, keypoints=kp, wrist=wrist, buttons=out_buttons)


def save_clip(clip: Clip, path: str | os.PathLike[str]) -> None:
    """Validate ``clip`` and write it to ``path`` (compressed ``.npz``).

    ``t`` is written as float64, ``keypoints``, ``wrist`` and buttons as float32. The file is
    written atomically (:func:`assets.atomic.atomic_path`: a reader sees the old file or the
    new one, never half of one; the folder is created if needed).

    Raises:
        ClipFormatError: if the clip (or its float32 version) is invalid; nothing is written.
        OSError: if the file cannot be written.
    """
    name = os.fspath(path)
    t, kp, wrist, buttons = _validate_arrays(name, clip.t, clip.keypoints, clip.wrist, clip.buttons)
    arrays: dict[str, np.ndarray] = {
        "t": t,
        "keypoints": kp.astype(np.float32),
        "wrist": wrist.astype(np.float32),
    }
    for bname, values in buttons.items():
        arrays[f"{BUTTON_PREFIX}{bname}"] = values.astype(np.float32)
    _validate_arrays(  # float32 overflow or rounding must not produce an unloadable file
        name,
        arrays["t"],
        arrays["keypoints"],
        arrays["wrist"],
        {b: arrays[f"{BUTTON_PREFIX}{b}"] for b in buttons},
    )
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        np.savez_compressed(f, **arrays)
    logger.debug("saved clip %s: %d frames, %.2f s", name, len(t), float(t[-1] - t[0]))
