"""Meta Quest 3 controllers as an input device, read from the teleop app's logcat stream.

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

World axes
----------
Poses are converted from the Quest head frame into this project's world convention
(x forward, y left, z up, origin at the head) by the fixed rotation :data:`QUEST_TO_WORLD`::

    world_x = -quest_z,  world_y = -quest_x,  world_z = quest_y

applied as a change of basis on both sides, ``C @ T @ C.T`` with ``C = diag(QUEST_TO_WORLD, 1)``,
so a controller's own axes are also re-expressed as x forward (along the controller's pointing
direction), y left, z up: a controller held level and pointing forward has the identity
rotation. Because the app logs poses relative to the head, turning the head moves them; the
clutch below makes that harmless (re-centre by releasing and pressing again).

Wrist, clutch and grasp
-----------------------
The published ``wrist`` starts at the identity (palm down, fingers forward, at the origin). While
the clutch button (default ``RG``, the right grip button) is held, the wrist moves by the wrist
controller's motion since the press: translation added in the world frame, rotation applied as
a world-frame delta (``R_ctrl(t) @ R_ctrl(press).T @ R_wrist(press)``). While released the
wrist stays put, so the operator can re-centre. A tracking loss, a time gap or a rejected jump
releases the clutch, so the wrist never jumps when tracking resumes. ``keypoints`` are the
nominal human hand interpolated in joint space between the open hand and the fist by the grasp
value (default ``rightTrig``: 0 open, 1 fist).

Rejections
----------
Every malformed tagged line is counted under its reason (:data:`REJECT_REASONS`, shown in
``status().rejected``) and publishes nothing, except a line whose only problem is one
controller's pose (``bad_pose``: the identity / all-zero garbage the Quest 3 sends when it loses
a controller, or ``non_finite``): it is counted *and* published without that controller (with
``confidence`` 0 if it was the wrist controller), so losing the idle controller does not stop
the stream. A wrist-controller step over :data:`MAX_JUMP_M` between close samples is counted as
``jump`` and dropped (at most :data:`MAX_JUMPS_IN_A_ROW` in a row, then the new position is
taken and the clutch re-anchored).

Transports
----------
Live: the Debian ``adb`` command-line tool through :mod:`subprocess` (find the headset, optional
``adb connect`` and ``adb install -r``, ``am start`` the app, then ``adb logcat -T 0 -v
threadtime`` on the device's thread, reconnecting with backoff when adb exits or goes silent;
disconnecting force-stops the app). File playback (``logcat=FILE``): a captured logcat text file
timed by its threadtime stamps; on a virtual clock, :meth:`QuestDevice.latest` plays
everything due at ``clock.now()`` without a thread, as :mod:`devices.inputs.replay` does.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import os
import re
import select
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from devices.inputs.base import DEVICES, Device, DeviceStatus
from devices.inputs.human_hand import DEFAULT_HAND, FIST_POSE, OPEN_POSE
from devices.tick import HumanFrame

log = logging.getLogger(__name__)

#: Logcat tag of the teleop app's pose lines.
TAG: Final[str] = "wE9ryARX"
DEFAULT_PACKAGE: Final[str] = "com.rail.oculus.teleop"
DEFAULT_ACTIVITY: Final[str] = "com.rail.oculus.teleop.MainActivity"
#: Default adb TCP port of ``adb connect`` (Wi-Fi debugging).
ADB_TCP_PORT: Final[int] = 5555

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

#: Rotation (3, 3) taking Quest/OpenXR head-frame axes (x right, y up, z back) to world axes
#: (x forward, y left, z up): ``v_world = QUEST_TO_WORLD @ v_quest``.
QUEST_TO_WORLD: Final[np.ndarray] = np.array(
    [
        [0.0, 0.0, -1.0],
        [-1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
    ]
)
QUEST_TO_WORLD.setflags(write=False)

#: Tolerance on ``R.T @ R - I`` (max abs) for a pose rotation to count as orthonormal.
ORTHONORMAL_TOL: Final[float] = 1e-2
#: A controller farther than this from the headset is a tracking error (m).
MAX_CONTROLLER_DISTANCE_M: Final[float] = 5.0
#: A wrist-controller step larger than this between samples closer than GAP_S is a glitch (m).
MAX_JUMP_M: Final[float] = 0.2
#: Consecutive jumps rejected before a new position is accepted (and re-anchored).
MAX_JUMPS_IN_A_ROW: Final[int] = 3
#: A pause in the wrist controller's samples longer than this releases the clutch (s).
GAP_S: Final[float] = 0.25
#: Nominal frame period of the app (72 Hz), for capture lines without a timestamp (s).
NOMINAL_PERIOD_S: Final[float] = 1.0 / 72.0

#: Waits between reconnection attempts (s); the last one repeats.
RECONNECT_BACKOFF_S: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
#: No tagged line from a running logcat for this long: say so in the status message (s).
STALL_WARN_S: float = 2.0
#: No tagged line for this long: restart logcat (the link may be dead without adb noticing) (s).
STALL_RESTART_S: float = 10.0
#: A logcat line longer than this is dropped (bytes); the app's lines are under 1 KiB.
MAX_LINE_BYTES: Final[int] = 1 << 16
#: Timeout of short adb commands (devices, connect, am start/force-stop) (s).
ADB_TIMEOUT_S: float = 15.0
#: Timeout of ``adb install`` (s).
ADB_INSTALL_TIMEOUT_S: float = 180.0

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


class QuestError(ConnectionError):
    """The headset cannot be reached or set up through adb (the message says what to do)."""


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


# ------------------------------------------------------------------------ world conversion
def _orthonormalize(rot: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) nearest to ``rot`` (polar decomposition)."""
    u, _, vt = np.linalg.svd(rot)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1.0
        r = u @ vt
    return r


def quest_to_world(pose: np.ndarray) -> np.ndarray:
    """Convert a (4, 4) Quest head-frame pose to the world convention; see the module doc.

    Args:
        pose: (4, 4) pose in OpenXR axes (x right, y up, z back), metres.

    Returns:
        (4, 4) ``C @ pose @ C.T`` with ``C = diag(QUEST_TO_WORLD, 1)``, the rotation block
        re-orthonormalized (the app prints 6 significant digits).
    """
    pose = np.asarray(pose, dtype=float)
    out = np.eye(4)
    out[:3, :3] = _orthonormalize(QUEST_TO_WORLD @ pose[:3, :3] @ QUEST_TO_WORLD.T)
    out[:3, 3] = QUEST_TO_WORLD @ pose[:3, 3]
    return out


def grasp_keypoints(grasp: float) -> np.ndarray:
    """Keypoints (21, 3), metres, wrist frame, of the nominal hand closed by ``grasp``.

    Joint angles are interpolated linearly from ``OPEN_POSE`` (0) to ``FIST_POSE`` (1);
    ``grasp`` is clipped to [0, 1] (NaN reads as 0).
    """
    g = float(grasp)
    g = 0.0 if not math.isfinite(g) else min(max(g, 0.0), 1.0)
    return DEFAULT_HAND.keypoints(OPEN_POSE + g * (FIST_POSE - OPEN_POSE))


class WristClutch:
    """Relative wrist motion with a clutch.

    While engaged, the wrist moves by the controller's motion since engagement (translation in
    the world frame, rotation as a world-frame delta); while released it stays put.
    """

    def __init__(self, home: np.ndarray | None = None) -> None:
        """``home``: (4, 4) initial wrist pose (default identity)."""
        self._wrist = np.eye(4) if home is None else np.array(home, dtype=float)
        self._grab: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def wrist(self) -> np.ndarray:
        """Current wrist pose (4, 4), world frame, metres (a copy)."""
        return self._wrist.copy()

    @property
    def engaged(self) -> bool:
        return self._grab is not None

    def release(self) -> None:
        """Disengage; the next engaged update re-anchors (no jump)."""
        self._grab = None

    def update(self, engaged: bool, controller: np.ndarray | None) -> np.ndarray:
        """Advance one sample.

        Args:
            engaged: whether the clutch button is held.
            controller: (4, 4) controller pose in the world frame, metres, or None when not
                tracked (releases the clutch).

        Returns:
            the wrist pose (4, 4), world frame, metres.
        """
        if not engaged or controller is None:
            self._grab = None
            return self.wrist
        controller = np.asarray(controller, dtype=float)
        if self._grab is None:
            self._grab = (controller.copy(), self._wrist.copy())
            return self.wrist
        c0, w0 = self._grab
        wrist = np.eye(4)
        wrist[:3, :3] = _orthonormalize(controller[:3, :3] @ c0[:3, :3].T @ w0[:3, :3])
        wrist[:3, 3] = w0[:3, 3] + controller[:3, 3] - c0[:3, 3]
        self._wrist = wrist
        return self.wrist


class QuestFrameBuilder:
    """Turns :class:`QuestSample` s into :class:`HumanFrame` s (clutch, grasp, jump check).

    Not thread-safe; the device calls it from one thread at a time.
    """

    def __init__(self, clutch: str = "RG", grasp: str = "rightTrig", hand: str = "right") -> None:
        self.clutch_button = clutch
        self.grasp_button = grasp
        self.hand = hand
        self.clutch = WristClutch()
        self._last_pos: np.ndarray | None = None
        self._last_t: float | None = None
        self._jumps = 0

    def release(self) -> None:
        """Release the clutch and forget the last position (after a loop or a reconnect)."""
        self.clutch.release()
        self._last_pos = None
        self._last_t = None
        self._jumps = 0

    def engaged(self, buttons: dict[str, float]) -> bool:
        """Whether the clutch is held; ``clutch`` "" or "none" means always engaged."""
        if self.clutch_button in ("", "none"):
            return True
        return buttons.get(self.clutch_button, 0.0) >= 0.5

    def build(
        self, sample: QuestSample, t: float, seq: int
    ) -> tuple[HumanFrame | None, str | None]:
        """The frame for ``sample``.

        Args:
            sample: a parsed line (poses in the Quest head frame).
            t: arrival time (live) or due time (playback), seconds, on the device's clock.
            seq: the frame's sequence number.

        Returns:
            ``(frame, None)``: ``wrist`` (4, 4) and ``controllers`` (4, 4 each) in the world
            convention, ``keypoints`` (21, 3) m from the grasp value, ``confidence`` 0 when the
            wrist controller is not tracked; or ``(None, "jump")`` for a tracking glitch.
        """
        controllers = {
            name: quest_to_world(pose)
            for name, pose in (("right", sample.right), ("left", sample.left))
            if pose is not None
        }
        ctrl = controllers.get(self.hand)
        if ctrl is not None:
            gap = self._last_t is None or t - self._last_t > GAP_S
            if gap:
                self.clutch.release()
            elif (
                self._last_pos is not None
                and np.linalg.norm(ctrl[:3, 3] - self._last_pos) > MAX_JUMP_M
                and self._jumps < MAX_JUMPS_IN_A_ROW
            ):
                self._jumps += 1
                self.clutch.release()
                return None, "jump"
            if self._jumps:
                self.clutch.release()  # accepted a new position after jumps: re-anchor
            self._jumps = 0
            self._last_pos = ctrl[:3, 3].copy()
            self._last_t = t
        else:  # tracking lost: the clutch releases below; no jump check when it comes back
            self._last_pos = None
            self._last_t = None
            self._jumps = 0
        wrist = self.clutch.update(self.engaged(sample.buttons), ctrl)
        grasp = 0.0 if self.grasp_button in ("", "none") else sample.buttons.get(self.grasp_button)
        frame = HumanFrame(
            keypoints=grasp_keypoints(grasp or 0.0),
            wrist=wrist,
            t=float(t),
            seq=seq,
            confidence=1.0 if ctrl is not None else 0.0,
            buttons=dict(sample.buttons),
            controllers=controllers,
        )
        return frame, None


# ------------------------------------------------------------------------------ adb helpers
def parse_adb_devices(text: str) -> list[tuple[str, str]]:
    """``(serial, state)`` pairs from ``adb devices`` output (state e.g. ``device``,
    ``unauthorized``, ``offline``, ``no permissions (...)``)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("*", "List of devices")) or line.startswith("adb "):
            continue
        serial, _, state = line.partition("\t") if "\t" in line else line.partition(" ")
        if serial and state.strip():
            out.append((serial.strip(), state.strip()))
    return out


def _state_problem(serial: str, state: str) -> str | None:
    """What to do about a headset in adb state ``state``, or None if it is usable."""
    if state == "device":
        return None
    if state.startswith("unauthorized"):
        return (
            f"headset {serial} is unauthorized: put the headset on and accept USB debugging "
            "in the prompt (tick 'always allow')"
        )
    if state.startswith("no permissions"):
        return (
            f"no permissions for headset {serial}: accept USB debugging in the headset and "
            "check the udev rules (Meta vendor id 2833)"
        )
    if state.startswith("offline"):
        return f"headset {serial} is offline: replug the cable or run 'adb kill-server'"
    return f"headset {serial} is in state {state!r}, not ready"


def select_headset(devices: list[tuple[str, str]], serial: str | None) -> str:
    """The serial to use among ``adb devices``' entries.

    Raises:
        QuestError: none, several without ``serial``, ``serial`` missing, or not ready (the
            message says what to do, e.g. accept USB debugging in the headset).
    """
    if serial is not None:
        states = dict(devices)
        if serial not in states:
            seen = ", ".join(f"{s} ({st})" for s, st in devices) or "nothing"
            raise QuestError(f"headset {serial} not found by adb; adb sees: {seen}")
        problem = _state_problem(serial, states[serial])
        if problem:
            raise QuestError(problem)
        return serial
    if not devices:
        raise QuestError(
            "no headset found by adb: connect the Quest by USB with developer mode on, "
            "or set host=IP for Wi-Fi debugging"
        )
    if len(devices) > 1:
        listed = ", ".join(f"{s} ({st})" for s, st in devices)
        raise QuestError(f"several adb devices ({listed}): choose one with serial=...")
    only, state = devices[0]
    problem = _state_problem(only, state)
    if problem:
        raise QuestError(problem)
    return only


def _adb_executable(override: str | None) -> str:
    path = override or shutil.which("adb")
    if not path:
        raise QuestError(
            "adb not found: apt-get install adb, or play a capture with quest3:logcat=FILE"
        )
    return path


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


# ---------------------------------------------------------------------------------- device
@dataclass
class QuestConfig:
    """Settings of the Quest 3 device.

    Attributes:
        serial: adb serial of the headset; None = the only one adb sees (or ``host:port``).
        host: Wi-Fi debugging: ``adb connect host[:port]`` first (port default 5555).
        apk: the teleop app to install with ``adb install -r`` before starting it.
        package: the app's package (force-stopped on disconnect).
        activity: the activity to start (``am start -n package/activity``).
        logcat: a captured logcat text file to play instead of a headset.
        speed: playback speed factor (file playback).
        loop: start the capture over at the end (file playback).
        clutch: button that engages the wrist ("" or "none": always engaged).
        grasp: value that closes the hand, 0 open .. 1 fist ("" or "none": always open).
        hand: which controller drives the wrist, "right" or "left".
        adb: path of the adb executable; None = ``shutil.which("adb")``.
    """

    serial: str | None = None
    host: str | None = None
    apk: str | None = None
    package: str = DEFAULT_PACKAGE
    activity: str = DEFAULT_ACTIVITY
    logcat: str | None = None
    speed: float = 1.0
    loop: bool = False
    clutch: str = "RG"
    grasp: str = "rightTrig"
    hand: str = "right"
    adb: str | None = None


@dataclass(frozen=True)
class _Event:
    """A tagged capture line: ``offset_s`` after the first good line (capture seconds)."""

    offset_s: float
    sample: QuestSample | None
    reason: str | None
    line_no: int


@DEVICES.register("quest3")
class QuestDevice(Device):
    """Meta Quest 3 controllers through the teleop app, live over adb or from a capture."""

    Config = QuestConfig

    @classmethod
    def availability(cls) -> str | None:
        """None when ``adb`` is on PATH, else why not (one line)."""
        if shutil.which("adb"):
            return None
        return "adb not found: apt-get install adb, or play a capture with quest3:logcat=FILE"

    def __init__(self, config: QuestConfig) -> None:
        super().__init__()
        if not (math.isfinite(float(config.speed)) and config.speed > 0):
            raise ValueError(f"quest3 speed must be positive, got {config.speed}")
        if config.hand not in ("right", "left"):
            raise ValueError(f"quest3 hand must be 'right' or 'left', got {config.hand!r}")
        self.config = config
        self._builder = QuestFrameBuilder(config.clutch, config.grasp, config.hand)
        self._builder_lock = threading.RLock()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        # file playback
        self._events: list[_Event] = []
        self._offsets: list[float] = []
        self._period = NOMINAL_PERIOD_S
        self._t0: float | None = None
        self._loop_i = 0
        self._cursor = 0
        self._ended = False
        # live
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self.serial: str | None = None
        self.reconnects = 0
        self._pending_recovery: str | None = None
        self._tail = "0"  # logcat -T: start at the end of the log
        if config.logcat is not None:
            if config.host or config.apk or config.serial:
                log.warning("quest3: logcat=%s given, ignoring serial/host/apk", config.logcat)
            self._load_capture(Path(config.logcat))
        elif config.apk is not None and not Path(config.apk).is_file():
            raise FileNotFoundError(f"quest3 apk not found: {config.apk}")
        if config.hand == "left" and (config.clutch, config.grasp) == ("RG", "rightTrig"):
            log.warning("quest3: hand=left with the right controller's clutch and grasp buttons")

    @property
    def playback(self) -> bool:
        """True when playing a capture file rather than a headset."""
        return self.config.logcat is not None

    # -------------------------------------------------------------------- common
    def _handle(self, sample: QuestSample | None, reason: str | None, t: float) -> None:
        """Count ``reason`` and publish the frame of ``sample`` (if any) stamped ``t``."""
        if reason is not None:
            self._reject(reason, f"quest3: dropped a line ({reason})")
        if sample is None:
            return
        with self._builder_lock:
            frame, problem = self._builder.build(sample, t, self._seq)
            if frame is None:
                self._reject(problem or "bad_pose", f"quest3: dropped a sample ({problem})")
                return
            self._seq += 1
        self._publish(frame)

    def _handle_line(self, line: str, t: float) -> bool:
        """Parse and handle one line; True if it was a tagged line. Never raises."""
        try:
            sample, reason = parse_logcat_line_partial(line)
            if sample is None and reason is None:
                return False
            self._handle(sample, reason, t)
            return True
        except Exception as e:
            log.exception("quest3: failed to handle a line")
            self._reject("internal_error", f"quest3: internal error: {e}")
            return True

    def report_extra(self) -> dict[str, object]:
        return {
            "source": "file" if self.playback else "adb",
            "serial": self.serial,
            "reconnects": self.reconnects,
        }

    def _start(self) -> None:
        self._stop_evt.clear()
        if self.playback:
            self._start_playback()
        else:
            self._start_live()

    def _stop(self) -> None:
        self._stop_evt.set()
        self._kill_proc()
        self._join_thread(self._thread, ADB_TIMEOUT_S + 2.0)  # at most one adb call to wait
        self._thread = None
        if not self.playback and self.serial is not None:
            self._force_stop_app()

    # -------------------------------------------------------------------- file playback
    def _load_capture(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"quest3 logcat capture not found: {path}")
        text = path.read_text(encoding="utf-8", errors="replace")
        raw: list[tuple[float, QuestSample | None, str | None, int]] = []
        t_prev: float | None = None
        stamp_prev: float | None = None
        day = 0.0
        for no, line in enumerate(text.splitlines(), start=1):
            sample, reason = parse_logcat_line_partial(line)
            if sample is None and reason is None:
                continue  # unrelated line
            stamp = sample.logcat_time_s if sample is not None else None
            if stamp is not None:
                if stamp_prev is not None and stamp < stamp_prev - 43200.0:
                    day += 86400.0  # the capture went past midnight
                stamp_prev = stamp
                t = stamp + day
            elif t_prev is None:
                t = 0.0
            else:  # no stamp: a malformed line plays with the previous one, a sample 1/72 s on
                t = t_prev + (NOMINAL_PERIOD_S if sample is not None else 0.0)
            t = t if t_prev is None else max(t, t_prev)
            raw.append((t, sample, reason, no))
            t_prev = t
        good = [t for t, s, _, _ in raw if s is not None]
        if not good:
            raise ValueError(f"quest3: no usable {TAG} lines in {path}")
        first = good[0]
        offsets: list[float] = []
        for t, s, r, no in raw:
            off = max(0.0, t - first)
            if offsets:
                off = max(off, offsets[-1])
            offsets.append(off)
            self._events.append(_Event(off, s, r, no))
        self._offsets = offsets
        span = good[-1] - first
        self._period = offsets[-1] + (span / (len(good) - 1) if len(good) > 1 else NOMINAL_PERIOD_S)
        if self._period <= 0:
            self._period = NOMINAL_PERIOD_S
        log.info(
            "quest3: %s: %d samples, %d bad lines, %.2f s",
            path,
            len(good),
            sum(1 for e in self._events if e.reason is not None),
            self._period,
        )

    def _start_playback(self) -> None:
        with self._builder_lock:
            self._t0 = self.clock.now()
            self._loop_i = 0
            self._cursor = 0
            self._ended = False
            self._builder.release()
        if self.clock.realtime:
            self._thread = threading.Thread(target=self._run_playback, name="quest3", daemon=True)
            self._thread.start()

    def _advance(self, now: float) -> None:
        """Handle, in order, every capture event due at clock time ``now``."""
        with self._builder_lock:
            if self._t0 is None:
                return
            speed = float(self.config.speed)
            pos = max(0.0, (now - self._t0) * speed)
            n_loop = 0
            if self.config.loop:
                n_loop = int(pos // self._period)
                pos -= n_loop * self._period
            target = bisect.bisect_right(self._offsets, pos)
            n = len(self._events)
            while (self._loop_i, self._cursor) < (n_loop, target):
                if self._cursor >= n:
                    # Wrapped: skip whole loops when the clock jumped far ahead.
                    self._loop_i = self._loop_i + 1 if n_loop - self._loop_i <= 2 else n_loop
                    self._cursor = 0
                    self._builder.release()
                    continue
                ev = self._events[self._cursor]
                self._cursor += 1
                t = self._t0 + (self._loop_i * self._period + ev.offset_s) / speed
                try:
                    self._handle(ev.sample, ev.reason, t)
                except Exception as e:
                    log.exception("quest3: failed to play line %d", ev.line_no)
                    self._reject("internal_error", f"quest3: internal error: {e}")
            if not self.config.loop and self._cursor >= n and not self._ended:
                self._ended = True
                self._set_message(f"quest3: end of capture {self.config.logcat}")

    def _next_due(self) -> float | None:
        """Clock time of the next capture event, or None at the end (no loop)."""
        with self._builder_lock:
            if self._t0 is None:
                return None
            speed = float(self.config.speed)
            if self._cursor < len(self._events):
                off = self._loop_i * self._period + self._offsets[self._cursor]
            elif self.config.loop:
                off = (self._loop_i + 1) * self._period + self._offsets[0]
            else:
                return None
            return self._t0 + off / speed

    def _run_playback(self) -> None:
        while not self._stop_evt.is_set():
            try:
                self._advance(self.clock.now())
                nxt = self._next_due()
                wait = 0.1 if nxt is None else min(0.1, max(0.0005, nxt - self.clock.now()))
            except Exception:
                log.exception("quest3: playback thread error")
                wait = 0.05
            self._stop_evt.wait(wait)

    def latest(self) -> HumanFrame | None:
        if self.playback and not self.clock.realtime and self._t0 is not None:
            self._advance(self.clock.now())
        return super().latest()

    def status(self) -> DeviceStatus:
        if self.playback and not self.clock.realtime and self._t0 is not None:
            self._advance(self.clock.now())
        return super().status()

    # -------------------------------------------------------------------- live (adb)
    def _adb(self, *args: str, timeout: float = ADB_TIMEOUT_S) -> tuple[int, str]:
        """Run ``adb args...``; (exit code, stdout+stderr). Raises QuestError if it cannot run."""
        cmd = [_adb_executable(self.config.adb), *args]
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise QuestError(f"'adb {' '.join(args)}' timed out after {timeout:.0f} s") from e
        except OSError as e:
            raise QuestError(f"cannot run adb ({cmd[0]}): {e}") from e
        return proc.returncode, proc.stdout.decode("utf-8", errors="replace")

    def _host_port(self) -> str | None:
        host = self.config.host
        if not host:
            return None
        return host if ":" in host else f"{host}:{ADB_TCP_PORT}"

    def _open(self, *, install: bool) -> str:
        """Find the headset (connecting over Wi-Fi if asked), install, start the app.

        Returns:
            the serial in use.
        """
        hp = self._host_port()
        if hp is not None:
            rc, out = self._adb("connect", hp)
            low = out.lower()
            if rc != 0 or not ("connected to" in low and "cannot" not in low):
                raise QuestError(f"adb connect {hp} failed: {_one_line(out) or f'exit {rc}'}")
        rc, out = self._adb("devices")
        if rc != 0:
            raise QuestError(f"adb devices failed: {_one_line(out) or f'exit {rc}'}")
        serial = select_headset(parse_adb_devices(out), self.config.serial or hp)
        if install and self.config.apk:
            log.info("quest3: installing %s on %s", self.config.apk, serial)
            rc, out = self._adb(
                "-s", serial, "install", "-r", self.config.apk, timeout=ADB_INSTALL_TIMEOUT_S
            )
            if rc != 0 or "Success" not in out:
                raise QuestError(f"adb install {self.config.apk} failed: {_one_line(out)}")
        if self._stop_evt.is_set():  # disconnecting: do not start the app again
            raise QuestError("stopped")
        component = f"{self.config.package}/{self.config.activity}"
        rc, out = self._adb("-s", serial, "shell", "am", "start", "-n", component)
        if rc != 0 or "Error" in out:
            raise QuestError(f"cannot start {component} on {serial}: {_one_line(out)}")
        self.serial = serial
        return serial

    def _start_live(self) -> None:
        serial = self._open(install=True)  # raises a clear QuestError before any thread
        log.info("quest3: streaming from %s", serial)
        self._thread = threading.Thread(target=self._run_live, name="quest3", daemon=True)
        self._thread.start()

    def _run_live(self) -> None:
        attempt = 0
        first = True
        while not self._stop_evt.is_set():
            got_data = False
            try:
                if not first:
                    self.reconnects += 1
                    self._open(install=False)
                first = False
                got_data, reason = self._stream()
            except QuestError as e:
                reason = str(e)
            except Exception as e:
                log.exception("quest3: live thread error")
                reason = f"internal error: {e}"
            if self._stop_evt.is_set():
                break
            attempt = 0 if got_data else attempt + 1
            delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            self._set_message(f"quest3: {reason}; reconnecting in {delay:.1f} s")
            log.warning("quest3: %s; reconnecting in %.1f s", reason, delay)
            self._pending_recovery = reason
            self._stop_evt.wait(delay)

    def _stream(self) -> tuple[bool, str]:
        """Run ``adb logcat`` until it ends, goes silent or the device stops.

        Returns:
            (whether any tagged line arrived, why the stream ended).
        """
        assert self.serial is not None
        cmd = [
            _adb_executable(self.config.adb),
            "-s",
            self.serial,
            "logcat",
            "-T",
            self._tail,
            "-v",
            "threadtime",
            f"{TAG}:V",
            "*:S",
        ]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as e:
            raise QuestError(f"cannot run adb logcat: {e}") from e
        with self._proc_lock:
            if self._stop_evt.is_set():
                _terminate(proc)
                return False, "stopped"
            self._proc = proc
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        got = False
        other = ""
        last_data = time.monotonic()
        warned = False
        reason = ""
        try:
            while not self._stop_evt.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    silent = time.monotonic() - last_data
                    if silent > STALL_RESTART_S:
                        reason = f"no data from {self.serial} for {silent:.0f} s"
                        break
                    if silent > STALL_WARN_S and not warned:
                        warned = True
                        self._set_message(
                            f"quest3: no data from {self.serial} for {silent:.0f} s: is the app "
                            "in front and the headset awake (proximity sensor)?"
                        )
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if len(buf) > MAX_LINE_BYTES:  # no newline for far too long: drop it
                    self._reject("truncated", "quest3: dropped an over-long logcat line")
                    buf = b""
                for raw in lines:
                    line = raw.decode("utf-8", errors="replace")
                    if self._handle_line(line, self.clock.now()):
                        if not got:
                            self._on_first_data()
                        got = True
                        last_data = time.monotonic()
                        warned = False
                    elif line.strip() and not line.startswith("-----"):
                        other = line.strip()
        finally:
            with self._proc_lock:
                self._proc = None
            _terminate(proc)
            proc.stdout.close()
        if not got and self._tail == "0" and "greater than zero" in other:
            self._tail = "1"  # a logcat that refuses "-T 0": ask for the last line instead
        if not reason:
            rc = proc.returncode
            reason = f"adb logcat ended (exit {rc})" + (f": {_one_line(other)}" if other else "")
        return got, reason

    def _on_first_data(self) -> None:
        if self._pending_recovery is not None:
            self._set_message(
                f"quest3: reconnected to {self.serial} after: {self._pending_recovery}"
            )
            log.info("quest3: reconnected to %s", self.serial)
            self._pending_recovery = None
        with self._builder_lock:
            self._builder.release()

    def _kill_proc(self) -> None:
        with self._proc_lock:
            proc = self._proc
        if proc is not None:
            _terminate(proc)

    def _force_stop_app(self) -> None:
        assert self.serial is not None
        try:
            rc, out = self._adb("-s", self.serial, "shell", "am", "force-stop", self.config.package)
            if rc != 0:
                log.warning("quest3: force-stop failed: %s", _one_line(out))
        except QuestError as e:
            log.warning("quest3: force-stop failed: %s", e)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` (kill after 1 s) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.terminate()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait(timeout=5.0)
