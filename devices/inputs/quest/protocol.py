"""The teleop app's logcat stream: one line per frame, parsed into :class:`QuestSample` s.

The stream
----------
The teleop app on the headset (``com.rail.oculus.teleop``) logs one line per rendered frame
(about 72 Hz) to Android logcat under the tag :data:`TAG`. The message is::

    r:<16 floats>|l:<16 floats>&<button tokens>

Each group of 16 floats is the row-major (4, 4) pose of a controller **relative to the
headset** (the app logs ``inverse(head) @ controller``), in metres, in the OpenXR / Oculus axes:
+x right, +y up, -z forward (+z backward). Either group may be missing (untracked controller)
and their order may vary. Button tokens, comma-separated, are bare names for pressed booleans
(:data:`BOOL_BUTTONS`) and value tuples (:data:`VALUE_BUTTONS`): ``rightJS x y``,
``rightTrig v``, ... The app also writes the presence markers ``R`` and ``L``; they carry no
value and are dropped. The stream has no timestamp and no tracking confidence.

:func:`parse_logcat_line` accepts the ``threadtime`` (``11-22 23:12:01.123  1234  1250 I
wE9ryARX: r:...``), ``time``, ``brief`` (``I/wE9ryARX( 1234): r:...``) and ``tag`` formats and
a bare message line (starting with ``r:`` or ``l:``); other lines are unrelated.

Every malformed tagged line gets a reason (:data:`REJECT_REASONS`); a line whose only problem
is one controller's pose keeps the rest (:func:`parse_logcat_line_partial`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Final

import numpy as np

log = logging.getLogger("devices.inputs.quest")

#: Logcat tag of the teleop app's pose lines.
TAG: Final[str] = "wE9ryARX"

#: Boolean buttons: present in the message while pressed, published as 1.0.
BOOL_BUTTONS: Final[frozenset[str]] = frozenset(
    {"A", "B", "X", "Y", "RTr", "LTr", "RG", "LG", "RThU", "LThU", "RJ", "LJ"}
)
#: Value tuples: name -> suffixes of the flattened keys ("" = the name itself) and their range.
VALUE_BUTTONS: Final[dict[str, tuple[tuple[str, ...], float, float]]] = {
    "rightJS": (("_x", "_y"), -1.0, 1.0),
    "leftJS": (("_x", "_y"), -1.0, 1.0),
    "rightTrig": (("",), 0.0, 1.0),
    "leftTrig": (("",), 0.0, 1.0),
    "rightGrip": (("",), 0.0, 1.0),
    "leftGrip": (("",), 0.0, 1.0),
}
#: Presence markers the app writes before each controller's buttons (dropped).
PRESENCE_MARKERS: Final[frozenset[str]] = frozenset({"R", "L"})

#: Reasons :func:`parse_logcat_line` gives for a tagged but unusable line.
REJECT_REASONS: Final[tuple[str, ...]] = (
    "truncated",  # no '&' (the line was cut before the buttons) or no message after the tag
    "bad_format",  # a group not 'r:'/'l:', a repeated group, an empty group, a second '&'
    "bad_float",  # a pose token that is not a decimal number
    "wrong_count",  # a pose group without exactly 16 numbers
    "non_finite",  # a pose number that is NaN or infinite
    "bad_pose",  # last row not 0 0 0 1, rotation not orthonormal, identity/zero garbage, too far
    "bad_buttons",  # a malformed token, wrong arity, a value out of range or not finite
    "bad_timestamp",  # a threadtime stamp with an impossible date or time
)


#: Tolerance on ``R.T @ R - I`` (max abs) for a pose rotation to count as orthonormal.
ORTHONORMAL_TOL: Final[float] = 1e-2
#: A controller farther than this from the headset is a tracking error (m).
MAX_CONTROLLER_DISTANCE_M: Final[float] = 5.0

_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NON_FINITE = frozenset({"nan", "inf", "infinity"})
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)
_STAMP = (
    r"(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})\s+"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})\.(?P<frac>[0-9]{1,9})"
)
_TAIL = r"(?:\s*:\s?(?P<msg>.*))?"
_LEVEL = r"[VDIWEFA]"
_THREADTIME = re.compile(
    _STAMP + r"\s+[0-9]+\s+[0-9]+\s+" + _LEVEL + r"\s+" + TAG + _TAIL, re.ASCII | re.DOTALL
)
_TIME = re.compile(
    _STAMP + r"\s+" + _LEVEL + "/" + TAG + r"(?:\s*\(\s*[0-9]+\))?" + _TAIL, re.ASCII | re.DOTALL
)
_BRIEF = re.compile(_LEVEL + "/" + TAG + r"(?:\s*\(\s*[0-9]+\))?" + _TAIL, re.ASCII | re.DOTALL)


@dataclass(frozen=True, eq=False)
class QuestSample:
    """One parsed line of the teleop app's stream (poses as sent, in the Quest head frame).

    Attributes:
        right: (4, 4) float, pose of the right controller relative to the headset (metres,
            OpenXR axes: x right, y up, z back), or None when not tracked. Read-only.
        left: (4, 4) float, same for the left controller, or None.
        buttons: pressed booleans as 1.0 (released ones absent) and values flattened to
            ``rightJS_x``, ``rightJS_y``, ``rightTrig``, ``rightGrip``, ``left...``
            (joysticks in [-1, 1], triggers and grips in [0, 1]).
        logcat_time_s: the threadtime stamp as seconds since midnight (headset clock), or
            None for formats without one.
    """

    right: np.ndarray | None
    left: np.ndarray | None
    buttons: dict[str, float]
    logcat_time_s: float | None = None


# ---------------------------------------------------------------------------------- parsing
def parse_logcat_line(line: str) -> tuple[QuestSample | None, str | None]:
    """Parse one logcat line of the teleop app; never raises for a ``str``.

    Args:
        line: a logcat line (``threadtime``, ``time``, ``brief`` or ``tag`` format) or a bare
            message; trailing newline and surrounding white space are ignored.

    Returns:
        ``(sample, None)`` for a good line of tag :data:`TAG`; ``(None, reason)`` for a tagged
        but malformed one (reason in :data:`REJECT_REASONS`); ``(None, None)`` for an unrelated
        line.
    """
    sample, reason = parse_logcat_line_partial(line)
    if reason is not None:
        return None, reason
    return sample, None


def parse_logcat_line_partial(line: str) -> tuple[QuestSample | None, str | None]:
    """Like :func:`parse_logcat_line`, but keeps what is usable of a line with a bad pose.

    When a controller's group is well formed but its pose is not (``bad_pose``, the garbage the
    Quest 3 sends when it loses a controller, or ``non_finite``), the returned sample has that
    controller set to None *and* the reason is returned too. Every other problem gives
    ``(None, reason)``. The device counts the reason and still publishes the rest, so losing
    one controller does not stop the stream.

    Returns:
        ``(sample, None)``, ``(sample, reason)`` (partial), ``(None, reason)`` or
        ``(None, None)`` (unrelated line).
    """
    try:
        return _parse_line(line)
    except Exception:  # a parser bug must read as bad input, never stop the stream
        log.debug("quest parser failed on %r", line[:200], exc_info=True)
        return None, "bad_format"


def _parse_line(line: str) -> tuple[QuestSample | None, str | None]:
    text = line.strip()
    if not text:
        return None, None
    stamp: float | None = None
    m = None
    if text[0].isdigit():
        m = _THREADTIME.fullmatch(text) or _TIME.fullmatch(text)
        if m is not None:
            stamp = _stamp_seconds(m)
            if stamp is None:
                return None, "bad_timestamp"
    elif text[0] in "VDIWEFA":
        m = _BRIEF.fullmatch(text)
    if m is not None:
        msg = m.group("msg")
        if msg is None or not msg.strip():
            return None, "truncated"
    elif text.startswith(("r:", "l:")):
        msg = text
    else:
        return None, None
    return _parse_message(msg, stamp)


def _stamp_seconds(m: re.Match[str]) -> float | None:
    """Seconds since midnight of a threadtime stamp, or None if the date/time is impossible."""
    month, day = int(m.group("mo")), int(m.group("d"))
    h, mi, s = int(m.group("h")), int(m.group("mi")), int(m.group("s"))
    if not (1 <= month <= 12 and 1 <= day <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    frac = m.group("frac")
    return h * 3600.0 + mi * 60.0 + s + int(frac) / 10.0 ** len(frac)


def _parse_message(msg: str, stamp: float | None) -> tuple[QuestSample | None, str | None]:
    head, sep, tail = msg.strip().partition("&")
    if not sep:
        return None, "truncated"
    if "&" in tail:
        return None, "bad_format"
    buttons, reason = _parse_buttons(tail)
    if reason is not None:
        return None, reason
    poses: dict[str, np.ndarray | None] = {}
    pose_reason: str | None = None
    if head.strip():
        for group in head.split("|"):
            side, colon, body = group.strip().partition(":")
            name = {"r": "right", "l": "left"}.get(side.strip())
            if not colon or name is None or name in poses:
                return None, "bad_format"
            pose, reason = _parse_pose(body)
            if reason in ("bad_float", "wrong_count"):
                return None, reason
            if reason is not None and pose_reason is None:
                pose_reason = reason
            poses[name] = pose
    sample = QuestSample(
        right=poses.get("right"), left=poses.get("left"), buttons=buttons, logcat_time_s=stamp
    )
    return sample, pose_reason


def _parse_pose(body: str) -> tuple[np.ndarray | None, str | None]:
    """(4, 4) read-only pose from 16 space-separated numbers, or (None, reason)."""
    values: list[float] = []
    non_finite = False
    for token in body.split():
        if _FLOAT.fullmatch(token):
            values.append(float(token))
        elif token.lower().lstrip("+-") in _NON_FINITE:
            values.append(math.nan)
            non_finite = True
        else:
            return None, "bad_float"
    if len(values) != 16:
        return None, "wrong_count"
    pose = np.array(values, dtype=float).reshape(4, 4)
    if non_finite or not np.all(np.isfinite(pose)):
        return None, "non_finite"
    if not is_valid_pose(pose):
        return None, "bad_pose"
    pose.setflags(write=False)
    return pose, None


def is_valid_pose(pose: np.ndarray) -> bool:
    """Whether a (4, 4) controller pose from the app is plausible.

    False when the last row is not ``0 0 0 1`` (within 1e-4), the rotation is not orthonormal
    (``max|R.T R - I| > ORTHONORMAL_TOL``) or is a reflection, the pose is the identity (what
    the Quest 3 sends when it loses a controller; all-zero fails orthonormality), or the
    controller is more than :data:`MAX_CONTROLLER_DISTANCE_M` from the headset.
    """
    pose = np.asarray(pose, dtype=float)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
        return False
    if np.abs(pose[3] - (0.0, 0.0, 0.0, 1.0)).max() > 1e-4:
        return False
    rot = pose[:3, :3]
    if np.abs(rot.T @ rot - np.eye(3)).max() > ORTHONORMAL_TOL or np.linalg.det(rot) <= 0:
        return False
    if np.abs(pose - np.eye(4)).max() < 1e-6:
        return False
    return bool(np.linalg.norm(pose[:3, 3]) <= MAX_CONTROLLER_DISTANCE_M)


def _parse_buttons(text: str) -> tuple[dict[str, float], str | None]:
    """Buttons dict from the comma-separated tokens after '&', or ({}, "bad_buttons")."""
    out: dict[str, float] = {}
    for raw in text.split(","):
        parts = raw.split()
        if not parts:
            continue
        name, args = parts[0], parts[1:]
        if not _IDENT.fullmatch(name):
            return {}, "bad_buttons"
        values: list[float] = []
        for a in args:
            if not _FLOAT.fullmatch(a):
                return {}, "bad_buttons"
            v = float(a)
            if not math.isfinite(v):
                return {}, "bad_buttons"
            values.append(v)
        if name in BOOL_BUTTONS or name in PRESENCE_MARKERS:
            if values:
                return {}, "bad_buttons"
            if name in BOOL_BUTTONS:
                out[name] = 1.0
        elif name in VALUE_BUTTONS:
            suffixes, lo, hi = VALUE_BUTTONS[name]
            if len(values) != len(suffixes) or (name + suffixes[0]) in out:
                return {}, "bad_buttons"
            for suffix, v in zip(suffixes, values, strict=True):
                if not lo - 1e-3 <= v <= hi + 1e-3:
                    return {}, "bad_buttons"
                out[name + suffix] = min(max(v, lo), hi)
        # Unknown well-formed names (a newer app) are ignored.
    return out, None
