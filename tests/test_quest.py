"""The Quest 3 device: logcat parser, clutch and grasp, capture playback, adb transport.

``tests/data/quest/capture.txt`` is written by :func:`make_capture` (run this file with
``python tests/test_quest.py`` to regenerate it); a test checks that the two agree, so the
expected values below come from the generator.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.clock import RealClock, SimClock
from devices.inputs.base import DEVICES
from devices.inputs.human_hand import DEFAULT_HAND, FIST_POSE, OPEN_POSE
from devices.inputs.quest import (
    QUEST_TO_WORLD,
    TAG,
    QuestDevice,
    QuestError,
    QuestFrameBuilder,
    QuestSample,
    WristClutch,
    grasp_keypoints,
    parse_adb_devices,
    parse_logcat_line,
    parse_logcat_line_partial,
    quest_to_world,
)

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data" / "quest"
CAPTURE = DATA / "capture.txt"
RATE_HZ = 72.0
N_FRAMES = 180
START_S = 23 * 3600 + 59 * 60 + 58.5  # 23:59:58.500: the capture crosses midnight
#: Frame index -> malformed kind written instead of (or on top of) the good line.
MALFORMED = {
    30: "truncated",
    50: "non_finite",
    70: "wrong_count",
    90: "bad_float",
    110: "bad_pose",  # identity garbage for the right controller
    130: "bad_buttons",
    150: "bad_pose_left",  # all-zero left controller
    160: "no_left",  # a good line without the left group
}
#: Kinds that drop the whole line (no frame); the others publish a frame without the pose.
DROPPED = {"truncated", "wrong_count", "bad_float", "bad_buttons"}


# ----------------------------------------------------------------------------- generator
def _rot(axis: int, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in np.asarray(values).ravel())


def right_pose(i: int) -> np.ndarray:
    """Right controller pose (Quest head frame) of frame ``i``, as the app would print it."""
    w = 2 * math.pi / 90
    pose = np.eye(4)
    pose[:3, :3] = _rot(1, 0.3 * math.sin(w * i)) @ _rot(0, 0.2 * math.cos(w * i))
    pose[:3, 3] = (
        0.15 + 0.05 * math.sin(w * i),
        -0.35 + 0.03 * math.cos(w * i),
        -0.45 + 0.02 * math.sin(2 * w * i),
    )
    return np.array([float(t) for t in _fmt(pose).split()]).reshape(4, 4)


def left_pose(i: int) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = _rot(1, 0.1 + 0.001 * i)
    pose[:3, 3] = (-0.2, -0.4, -0.4 + 0.0005 * i)
    return np.array([float(t) for t in _fmt(pose).split()]).reshape(4, 4)


def buttons_of(i: int) -> dict[str, float]:
    """The buttons of frame ``i`` as the parser should return them."""
    b: dict[str, float] = {}
    if i % 40 < 5:
        b["A"] = 1.0
    if 40 <= i < 100:
        b["RG"] = 1.0
    trig = round(min(max((i - 20) / 100, 0.0), 1.0), 6)
    if trig > 0.5:
        b["RTr"] = 1.0
    b["rightJS_x"] = round(0.5 * math.sin(i / 10), 6)
    b["rightJS_y"] = -0.25
    b["rightTrig"] = trig
    b["rightGrip"] = 1.0 if "RG" in b else 0.0
    b["leftJS_x"] = 0.0
    b["leftJS_y"] = 0.0
    b["leftTrig"] = 0.0
    b["leftGrip"] = 0.0
    return b


def _buttons_text(b: dict[str, float], left: bool = True) -> str:
    right = ["R"] + [k for k in ("A", "B", "RTr", "RG", "RThU", "RJ") if k in b]
    right += [
        f"rightJS {b['rightJS_x']:.6f} {b['rightJS_y']:.6f}",
        f"rightTrig {b['rightTrig']:.6f}",
        f"rightGrip {b['rightGrip']:.6f}",
    ]
    if not left:
        return ",".join(right)
    left_tokens = ["L", f"leftJS {0:.6f} {0:.6f}", f"leftTrig {0:.6f}", f"leftGrip {0:.6f}"]
    return ",".join(right + left_tokens)


def _stamp(t: float) -> str:
    day = 22 + int(t // 86400)
    t = t % 86400
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"11-{day:02d} {int(h):02d}:{int(m):02d}:{s:06.3f}"


def message_of(i: int, kind: str | None = None) -> str:
    """The app's message for frame ``i``, possibly malformed as ``kind``."""
    r, lp, b = _fmt(right_pose(i)), _fmt(left_pose(i)), _buttons_text(buttons_of(i))
    if kind == "truncated":
        full = f"r:{r}|l:{lp}&{b}"
        return full[: full.index("|l:") + 20]  # cut inside the left pose
    if kind == "non_finite":
        r = " ".join(["nan", *r.split()[1:]])
    elif kind == "wrong_count":
        lp = " ".join(lp.split()[:-1])
    elif kind == "bad_float":
        r = " ".join([*r.split()[:5], "0.1x", *r.split()[6:]])
    elif kind == "bad_pose":
        r = _fmt(np.eye(4))
    elif kind == "bad_buttons":
        b = b.replace("rightTrig ", "rightTrig abc ")
    elif kind == "bad_pose_left":
        lp = _fmt(np.zeros((4, 4)))
    elif kind == "no_left":
        return f"r:{r}&{_buttons_text(buttons_of(i), left=False)}"
    return f"r:{r}|l:{lp}&{b}"


UNRELATED = (
    "I VrApi   : FPS=72/72,Prd=38ms,Tear=0,Early=0,Stale=0,Stale2/5/10/max=0/0/0/0,VSnc=1",
    "I jsk73b1z_0: l:0.1 0.2 0.3",
    "D ActivityManager: Displayed com.rail.oculus.teleop/.MainActivity: +812ms",
    "W ProxSensor: proximity changed: near",
    "E wE9ryARXX: not our tag: r:1 2 3&A",
)


def make_capture() -> str:
    """The capture file's text: 180 frames at 72 Hz with unrelated and malformed lines."""
    rng = random.Random(0)
    lines = ["--------- beginning of main"]
    for i in range(N_FRAMES):
        t = START_S + round(i * 1000 / RATE_HZ) / 1000
        while rng.random() < 0.15:
            other = UNRELATED[int(rng.random() * len(UNRELATED))]
            level, _, rest = other.partition(" ")
            lines.append(f"{_stamp(t)}  1234  1301 {level} {rest}")
        lines.append(f"{_stamp(t)}  1234  1250 I {TAG}: {message_of(i, MALFORMED.get(i))}")
    return "\n".join(lines) + "\n"


@dataclass
class Expected:
    """What playing the capture should give: per frame index, a frame or a rejection."""

    offsets: list[float] = field(default_factory=list)  # per frame index, capture seconds
    published: list[int] = field(default_factory=list)  # frame indices that publish
    rejected: dict[str, int] = field(default_factory=dict)


def expected() -> Expected:
    e = Expected()
    for i in range(N_FRAMES):
        e.offsets.append(round(i * 1000 / RATE_HZ) / 1000)
        kind = MALFORMED.get(i)
        reason = {"bad_pose_left": "bad_pose", "no_left": None}.get(kind or "", kind)
        if reason is not None:
            e.rejected[reason] = e.rejected.get(reason, 0) + 1
        if kind not in DROPPED:
            e.published.append(i)
    return e


@pytest.fixture(scope="module")
def capture() -> Path:
    return CAPTURE


def test_committed_capture_matches_the_generator():
    assert CAPTURE.read_text() == make_capture()
    n = len(CAPTURE.read_text().splitlines())
    assert 190 <= n <= 260


# -------------------------------------------------------------------------------- parser
def _line(msg: str, fmt: str = "threadtime") -> str:
    if fmt == "threadtime":
        return f"11-22 23:12:01.123  1234  1250 I {TAG}: {msg}"
    if fmt == "brief":
        return f"I/{TAG}( 1234): {msg}"
    if fmt == "time":
        return f"11-22 23:12:01.123 I/{TAG}( 1234): {msg}"
    return msg


@pytest.mark.parametrize("fmt", ["threadtime", "brief", "time", "bare"])
def test_parser_reads_good_lines_exactly(fmt):
    sample, reason = parse_logcat_line(_line(message_of(7), fmt) + "\r\n")
    assert reason is None and isinstance(sample, QuestSample)
    np.testing.assert_array_equal(sample.right, right_pose(7))
    np.testing.assert_array_equal(sample.left, left_pose(7))
    assert sample.buttons == buttons_of(7)
    assert "R" not in sample.buttons and "L" not in sample.buttons  # presence markers dropped
    if fmt in ("threadtime", "time"):
        assert sample.logcat_time_s == pytest.approx(23 * 3600 + 12 * 60 + 1.123)
    else:
        assert sample.logcat_time_s is None


def test_parser_buttons_and_missing_groups():
    pose = _fmt(right_pose(3))
    s, r = parse_logcat_line(_line(f"l:{pose}&L,X,Y,LTr,LG,LThU,LJ,leftJS -1 1,leftTrig 0.25"))
    assert r is None and s.right is None and s.left is not None
    assert s.buttons == {
        **dict.fromkeys(("X", "Y", "LTr", "LG", "LThU", "LJ"), 1.0),
        "leftJS_x": -1.0,
        "leftJS_y": 1.0,
        "leftTrig": 0.25,
    }
    s, r = parse_logcat_line(_line("&"))  # nothing tracked: a sample without poses
    assert r is None and s.right is None and s.left is None and s.buttons == {}
    s, r = parse_logcat_line(_line(f"l:{pose}|r:{pose}&A,newToken,newValue 3 4,"))  # any order
    assert r is None and s.buttons == {"A": 1.0}  # unknown names ignored, trailing comma ok


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (message_of(1, "truncated"), "truncated"),
        ("r:" + _fmt(right_pose(1)), "truncated"),
        (message_of(1, "non_finite"), "non_finite"),
        (
            "r:"
            + " ".join([*_fmt(right_pose(1)).split()[:3], "-inf", *_fmt(right_pose(1)).split()[4:]])
            + "&",
            "non_finite",
        ),
        ("r:" + " ".join(["1e999", *_fmt(right_pose(1)).split()[1:]]) + "&", "non_finite"),
        (message_of(1, "wrong_count"), "wrong_count"),
        ("r:&A", "wrong_count"),
        (message_of(1, "bad_float"), "bad_float"),
        ("r:" + _fmt(right_pose(1)).replace(" ", " 1_0 ", 1) + "&", "bad_float"),
        (message_of(1, "bad_pose"), "bad_pose"),
        (message_of(1, "bad_pose_left"), "bad_pose"),
        ("r:" + _fmt(np.diag([1.0, 1.0, 1.1, 1.0])) + "&", "bad_pose"),  # not orthonormal
        ("r:" + _fmt(np.diag([1.0, 1.0, -1.0, 1.0])) + "&", "bad_pose"),  # reflection
        ("r:" + _fmt(np.vstack([right_pose(1)[:3], [0, 0, 1, 1]])) + "&", "bad_pose"),
        (
            "r:" + _fmt(right_pose(1) + np.pad(np.full((3, 1), 9.0), ((0, 1), (3, 0)))) + "&",
            "bad_pose",
        ),
        (message_of(1, "bad_buttons"), "bad_buttons"),
        ("&rightTrig 1.5", "bad_buttons"),
        ("&rightJS 0.1", "bad_buttons"),
        ("&A 1", "bad_buttons"),
        ("&rightTrig nan", "bad_buttons"),
        ("&r!ght", "bad_buttons"),
        ("&rightTrig 0.1,rightTrig 0.2", "bad_buttons"),
        ("x:" + _fmt(right_pose(1)) + "&", "bad_format"),
        (f"r:{_fmt(right_pose(1))}|r:{_fmt(right_pose(1))}&", "bad_format"),
        (f"r:{_fmt(right_pose(1))}|&", "bad_format"),
        (f"r:{_fmt(right_pose(1))}&A&B", "bad_format"),
        ("", "truncated"),
    ],
)
def test_parser_reasons(msg, reason):
    for fmt in ("threadtime", "brief"):
        assert parse_logcat_line(_line(msg, fmt)) == (None, reason)


def test_parser_ignores_unrelated_lines():
    for line in [
        *UNRELATED,
        "",
        "   ",
        "--------- beginning of main",
        "11-22 23:12:01.123  1234  1250 I VrApi: r:1 2 3&A",
        f"11-22 23:12:01.123  1234  1250 I {TAG}X: r:1&A",
        f"I/{TAG}X( 1234): r:1&A",
        "hello r:1 2 3",
        "11-22 23:12:01.123  1234",
    ]:
        assert parse_logcat_line(line) == (None, None), line


def test_parser_truncated_header_and_bad_stamp():
    assert parse_logcat_line(f"11-22 23:12:01.123  1234  1250 I {TAG}") == (None, "truncated")
    assert parse_logcat_line(f"I/{TAG}( 1234):") == (None, "truncated")
    bad = f"13-40 25:12:01.123  1234  1250 I {TAG}: {message_of(1)}"
    assert parse_logcat_line(bad) == (None, "bad_timestamp")


def test_partial_parse_keeps_the_good_controller():
    sample, reason = parse_logcat_line_partial(_line(message_of(4, "bad_pose")))
    assert reason == "bad_pose" and sample.right is None
    np.testing.assert_array_equal(sample.left, left_pose(4))
    assert parse_logcat_line(_line(message_of(4, "bad_pose"))) == (None, "bad_pose")


def _assert_sane(sample: QuestSample | None) -> None:
    if sample is None:
        return
    for pose in (sample.right, sample.left):
        if pose is None:
            continue
        assert pose.shape == (4, 4) and np.all(np.isfinite(pose))
        np.testing.assert_allclose(pose[3], [0, 0, 0, 1], atol=1e-4)
        rot = pose[:3, :3]
        assert np.abs(rot.T @ rot - np.eye(3)).max() <= 1e-2 and np.linalg.det(rot) > 0
    assert all(isinstance(v, float) and math.isfinite(v) for v in sample.buttons.values())


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_fuzz_random_strings_never_raise(text):
    for line in (text, _line(text), _line(text, "brief"), "r:" + text, "l:" + text):
        result = parse_logcat_line(line)
        assert isinstance(result, tuple) and len(result) == 2
        _assert_sane(result[0])


_MUTATIONS = ("truncate", "insert", "swap", "drop_pipe", "drop_amp", "delete")


@settings(
    max_examples=2500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    frame=st.integers(0, N_FRAMES - 1),
    fmt=st.sampled_from(["threadtime", "brief", "bare"]),
    ops=st.lists(
        st.tuples(
            st.sampled_from(_MUTATIONS),
            st.integers(0, 10_000),
            st.sampled_from(["nan", "inf", "-inf", "x", "1e999", "abc", "|", "&", ":", " ", ","]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_mutated_lines_never_raise(frame, fmt, ops):
    line = _line(message_of(frame), fmt)
    for op, pos, text in ops:
        pos = pos % (len(line) + 1)
        if op == "truncate":
            line = line[:pos]
        elif op == "insert":
            line = line[:pos] + text + line[pos:]
        elif op == "delete":
            line = line[:pos] + line[pos + 1 :]
        elif op == "swap":
            tokens = line.split(" ")
            tokens[pos % len(tokens)] = text
            line = " ".join(tokens)
        elif op == "drop_pipe":
            line = line.replace("|", "", 1)
        else:
            line = line.replace("&", "", 1)
    for parse in (parse_logcat_line, parse_logcat_line_partial):
        sample, reason = parse(line)
        _assert_sane(sample)
        if parse is parse_logcat_line:
            assert sample is None or reason is None


# ---------------------------------------------------------------------- axes, clutch, grasp
def test_world_axes():
    c = QUEST_TO_WORLD
    np.testing.assert_allclose(c @ c.T, np.eye(3))
    assert np.linalg.det(c) == pytest.approx(1.0)
    np.testing.assert_allclose(c @ [0, 0, -1], [1, 0, 0])  # Quest forward -> world +x
    np.testing.assert_allclose(c @ [0, 1, 0], [0, 0, 1])  # Quest up -> world +z
    np.testing.assert_allclose(c @ [-1, 0, 0], [0, 1, 0])  # Quest left -> world +y
    pose = np.eye(4)
    pose[:3, 3] = (1.0, 2.0, 3.0)
    np.testing.assert_allclose(quest_to_world(pose)[:3, 3], [-3.0, -1.0, 2.0])
    np.testing.assert_allclose(quest_to_world(pose)[:3, :3], np.eye(3))  # level, forward
    yaw = np.eye(4)
    yaw[:3, :3] = _rot(1, 0.4)  # about Quest up
    np.testing.assert_allclose(quest_to_world(yaw)[:3, :3], _rot(2, 0.4), atol=1e-12)


def _sample(pos_world=(0.0, 0.0, 0.0), yaw=0.0, **buttons: float) -> QuestSample:
    """A right-controller sample whose world pose is ``pos_world`` / yaw about world z."""
    pose = np.eye(4)
    pose[:3, :3] = QUEST_TO_WORLD.T @ _rot(2, yaw) @ QUEST_TO_WORLD
    pose[:3, 3] = QUEST_TO_WORLD.T @ np.asarray(pos_world, dtype=float)
    return QuestSample(right=pose, left=None, buttons=dict(buttons))


def test_clutch_holds_moves_and_recentres():
    b = QuestFrameBuilder()
    t = 0.0

    def step(sample: QuestSample) -> np.ndarray:
        nonlocal t
        t += 0.01
        frame, reason = b.build(sample, t, 0)
        assert reason is None and frame.confidence == 1.0
        return frame.wrist

    home = np.eye(4)
    np.testing.assert_allclose(step(_sample((0.3, 0.1, 0.0))), home)
    np.testing.assert_allclose(step(_sample((0.35, 0.1, 0.05))), home)  # released: holds
    np.testing.assert_allclose(step(_sample((0.35, 0.1, 0.05), RG=1.0)), home)  # press: anchor
    w = step(_sample((0.40, 0.12, 0.05), yaw=0.3, RG=1.0))
    np.testing.assert_allclose(w[:3, 3], [0.05, 0.02, 0.0], atol=1e-12)
    np.testing.assert_allclose(w[:3, :3], _rot(2, 0.3), atol=1e-12)
    for k in range(1, 11):  # release, move far away: stays put
        a = k / 10
        held = step(_sample((0.40 - 0.3 * a, 0.12 - 0.32 * a, 0.05 - 0.05 * a), yaw=0.3 - 0.3 * a))
        np.testing.assert_allclose(held, w)
    step(_sample((0.10, -0.2, 0.0), RG=1.0))  # re-centre here
    w2 = step(_sample((0.10, -0.2, 0.03), yaw=-0.1, RG=1.0))
    np.testing.assert_allclose(w2[:3, 3], [0.05, 0.02, 0.03], atol=1e-12)
    np.testing.assert_allclose(w2[:3, :3], _rot(2, 0.2), atol=1e-12)


def test_clutch_ignores_jumps_gaps_and_tracking_loss():
    b = QuestFrameBuilder()
    b.build(_sample((0.0, 0.0, 0.0), RG=1.0), 0.00, 0)
    frame, _ = b.build(_sample((0.01, 0.0, 0.0), RG=1.0), 0.01, 1)
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.01, 0, 0], atol=1e-12)
    assert b.build(_sample((0.61, 0.0, 0.0), RG=1.0), 0.02, 2) == (None, "jump")
    frame, _ = b.build(_sample((0.02, 0.0, 0.0), RG=1.0), 0.03, 2)  # re-anchored: no step
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.01, 0, 0], atol=1e-12)
    lost = QuestSample(right=None, left=None, buttons={"RG": 1.0})
    frame, _ = b.build(lost, 0.04, 3)
    assert frame.confidence == 0.0 and "right" not in frame.controllers
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.01, 0, 0], atol=1e-12)
    frame, _ = b.build(_sample((0.3, 0.0, 0.0), RG=1.0), 0.05, 4)  # back: re-anchored
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.01, 0, 0], atol=1e-12)
    frame, _ = b.build(_sample((0.5, 0.0, 0.0), RG=1.0), 1.05, 5)  # after a 1 s gap
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.01, 0, 0], atol=1e-12)
    c = WristClutch()
    assert not c.engaged
    c.update(True, np.eye(4))
    assert c.engaged


def test_grasp_scalar_closes_the_hand():
    b = QuestFrameBuilder()
    open_kp = DEFAULT_HAND.keypoints(OPEN_POSE)
    fist_kp = DEFAULT_HAND.keypoints(FIST_POSE)
    frame, _ = b.build(_sample(rightTrig=0.0), 0.0, 0)
    np.testing.assert_allclose(frame.keypoints, open_kp)
    frame, _ = b.build(_sample(rightTrig=1.0), 0.01, 1)
    np.testing.assert_allclose(frame.keypoints, fist_kp)
    frame, _ = b.build(_sample(), 0.02, 2)  # no trigger value: open
    np.testing.assert_allclose(frame.keypoints, open_kp)
    half = grasp_keypoints(0.5)
    np.testing.assert_allclose(half, DEFAULT_HAND.keypoints((OPEN_POSE + FIST_POSE) / 2))
    assert 0 < np.linalg.norm(half - open_kp) < np.linalg.norm(fist_kp - open_kp)
    np.testing.assert_allclose(grasp_keypoints(7.0), fist_kp)
    np.testing.assert_allclose(grasp_keypoints(float("nan")), open_kp)


# ------------------------------------------------------------------------------ playback
def test_virtual_clock_plays_the_frames_due_in_order(capture):
    exp = expected()
    dev = DEVICES.make("quest3", logcat=str(capture))
    assert isinstance(dev, QuestDevice)
    clock = SimClock(start=100.0)
    dev.connect(clock)
    first = dev.latest()
    assert first.seq == 0 and first.t == pytest.approx(100.0)
    seqs, n_published, wrists = [], 0, {}
    for i in range(N_FRAMES):
        clock.sleep_until(100.0 + exp.offsets[i] + 1e-4)
        frame = dev.latest()
        if i in exp.published:
            n_published += 1
            assert frame.seq == n_published - 1
            assert frame.t == pytest.approx(100.0 + exp.offsets[i])
            right = _world_or_none(i)
            if right is None:
                assert "right" not in frame.controllers
            else:
                np.testing.assert_allclose(frame.controllers["right"], right, atol=1e-5)
            if MALFORMED.get(i) in ("bad_pose_left", "no_left"):
                assert "left" not in frame.controllers
            else:
                left = quest_to_world(left_pose(i))
                np.testing.assert_allclose(frame.controllers["left"], left, atol=1e-5)
            buttons = buttons_of(i)
            if MALFORMED.get(i) == "no_left":
                buttons = {k: v for k, v in buttons.items() if not k.startswith("left")}
            assert frame.buttons == buttons
            wrists[i] = frame.wrist
            assert frame.confidence == (
                0.0 if MALFORMED.get(i) in ("non_finite", "bad_pose") else 1.0
            )
        seqs.append(frame.seq)
    assert seqs == sorted(seqs)

    # The clutch (RG) is held over frames 40..99; the right pose is lost at 50 (re-anchor at 51).
    def pos(i: int) -> np.ndarray:
        return quest_to_world(right_pose(i))[:3, 3]

    np.testing.assert_allclose(wrists[39], np.eye(4))
    moved = pos(49) - pos(40) + pos(99) - pos(51)
    np.testing.assert_allclose(wrists[99][:3, 3], moved, atol=1e-5)
    for i in range(100, N_FRAMES):
        if i in wrists:
            np.testing.assert_allclose(wrists[i], wrists[99])  # released: holds
    status = dev.status()
    assert status.frames == len(exp.published)
    assert status.rejected == exp.rejected and status.errors == sum(exp.rejected.values())
    assert "end of capture" in status.message
    clock.sleep_until(200.0)
    assert dev.latest().seq == len(exp.published) - 1  # no loop: the last frame stays
    dev.disconnect()


def _world_or_none(i: int):
    if MALFORMED.get(i) in ("non_finite", "bad_pose"):
        return None
    return quest_to_world(right_pose(i))


def test_virtual_clock_loops_and_speed(capture):
    exp = expected()
    dev = DEVICES.make("quest3", logcat=str(capture), loop=True, speed=2.0)
    clock = SimClock()
    dev.connect(clock)
    period = dev._period
    clock.sleep_until(period / 2 + 0.001)  # one loop at double speed, and the first line
    assert dev.latest().seq == len(exp.published)
    clock.sleep_until(period - 0.001)  # the end of the second loop
    frame = dev.latest()
    assert frame.seq == 2 * len(exp.published) - 1
    assert dev.status().rejected == {k: 2 * v for k, v in exp.rejected.items()}
    dev.disconnect()


def test_real_time_playback_runs_at_the_recorded_rate(capture):
    dev = DEVICES.make("quest3", logcat=str(capture))
    dev.connect(RealClock())
    try:
        time.sleep(0.5)
        status = dev.status()
    finally:
        dev.disconnect()
    assert status.connected
    assert 28 <= status.frames <= 40  # 72 Hz for 0.5 s, one line dropped
    assert 60.0 < status.rate_hz < 85.0
    assert status.frame_age_s is not None and status.frame_age_s < 0.1
    assert not dev.status().connected


def test_bad_settings_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="capture not found"):
        DEVICES.make("quest3", logcat=str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("I VrApi: hello\n")
    with pytest.raises(ValueError, match="no usable"):
        DEVICES.make("quest3", logcat=str(empty))
    with pytest.raises(ValueError, match="speed"):
        DEVICES.make("quest3", logcat=str(CAPTURE), speed=0.0)
    with pytest.raises(ValueError, match="hand"):
        DEVICES.make("quest3", logcat=str(CAPTURE), hand="both")
    with pytest.raises(FileNotFoundError, match="apk"):
        DEVICES.make("quest3", apk=str(tmp_path / "teleop.apk"))


def test_brief_capture_without_stamps_plays_at_72_hz(tmp_path):
    path = tmp_path / "brief.txt"
    path.write_text("".join(_line(message_of(i), "brief") + "\n" for i in range(10)))
    dev = DEVICES.make("quest3", logcat=str(path))
    clock = SimClock()
    dev.connect(clock)
    clock.sleep_until(5 / 72 + 1e-4)
    assert dev.latest().seq == 5
    dev.disconnect()


# ------------------------------------------------------------------------ adb transport
FAKE_ADB = """#!{python}
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
cfg = json.load(open(os.path.join(here, "fake_adb.json")))
with open(os.path.join(here, "calls.txt"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if args[:1] == ["-s"]:
    args = args[2:]
if args[0] == "devices":
    print("List of devices attached")
    for serial, state in cfg["devices"]:
        print(serial + "\\t" + state)
    print()
elif args[0] == "connect":
    print("connected to " + args[1])
elif args[0] == "install":
    print("Performing Streamed Install")
    print("Success")
elif args[:3] == ["shell", "am", "start"]:
    print("Starting: Intent { cmp=" + args[-1] + " }")
elif args[:3] == ["shell", "am", "force-stop"]:
    pass
elif args[0] == "logcat":
    for line in cfg["lines"]:
        print(line, flush=True)
        time.sleep(cfg["delay"])
    print("error: device offline", file=sys.stderr, flush=True)
    sys.exit(1)
else:
    print("unknown command", args, file=sys.stderr)
    sys.exit(2)
"""


def _fake_adb(tmp_path: Path, devices, lines=(), delay=0.002) -> Path:
    (tmp_path / "fake_adb.json").write_text(
        json.dumps({"devices": devices, "lines": list(lines), "delay": delay})
    )
    script = tmp_path / "adb"
    script.write_text(FAKE_ADB.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def _wait(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_live_transport_reconnects_and_force_stops(tmp_path, monkeypatch, caplog):
    import devices.inputs.quest.adb as quest  # the live transport reads its backoff there

    caplog.set_level(logging.INFO, logger="devices.inputs.quest")
    monkeypatch.setattr(quest, "RECONNECT_BACKOFF_S", (0.05,))
    lines = [f"11-22 23:12:01.{i:03d}  1234  1250 I {TAG}: {message_of(i)}" for i in range(10)]
    lines.insert(3, "11-22 23:12:01.500  1234  1301 I VrApi: FPS=72/72")
    lines.insert(6, f"11-22 23:12:01.500  1234  1250 I {TAG}: {message_of(5, 'bad_float')}")
    adb = _fake_adb(tmp_path, [["2G0YC5ZG8L0QXX", "device"]], lines)
    dev = DEVICES.make("quest3", adb=str(adb))
    dev.connect(RealClock())
    try:
        assert _wait(lambda: dev.status().frames >= 25)
        seqs = []
        for _ in range(20):
            seqs.append(dev.latest().seq)
            time.sleep(0.005)
        status = dev.status()
    finally:
        dev.disconnect()
    calls = _calls(tmp_path)
    logcats = [c for c in calls if " logcat " in f" {c} "]
    assert len(logcats) >= 3 and dev.reconnects >= 2
    assert logcats[0] == f"-s 2G0YC5ZG8L0QXX logcat -T 0 -v threadtime {TAG}:V *:S"
    start = "-s 2G0YC5ZG8L0QXX shell am start -n "
    assert calls[1] == start + "com.rail.oculus.teleop/com.rail.oculus.teleop.MainActivity"
    assert calls[-1] == "-s 2G0YC5ZG8L0QXX shell am force-stop com.rail.oculus.teleop"
    assert seqs == sorted(seqs)
    assert status.connected and status.rejected.get("bad_float", 0) >= 2
    assert any("reconnected to 2G0YC5ZG8L0QXX" in r.getMessage() for r in caplog.records)
    assert dev.report_extra()["reconnects"] == dev.reconnects
    assert not dev.status().connected


def test_live_transport_reports_the_lost_link(tmp_path, monkeypatch, caplog):
    import devices.inputs.quest.adb as quest  # the live transport reads its backoff there

    monkeypatch.setattr(quest, "RECONNECT_BACKOFF_S", (5.0,))
    line = f"11-22 23:12:01.000  1234  1250 I {TAG}: {message_of(0)}"
    adb = _fake_adb(tmp_path, [["2G0YC5ZG8L0QXX", "device"]], [line])
    dev = DEVICES.make("quest3", adb=str(adb))
    with caplog.at_level(logging.WARNING, logger="devices.inputs.quest"):
        dev.connect(RealClock())
        try:
            assert _wait(lambda: "reconnecting" in dev.status().message)
            message = dev.status().message
        finally:
            t0 = time.monotonic()
            dev.disconnect()
    assert time.monotonic() - t0 < 2.0  # disconnect does not wait out the backoff
    assert "adb logcat ended (exit 1): error: device offline" in message
    assert dev.status().frames == 1
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    assert _calls(tmp_path)[-1].endswith("am force-stop com.rail.oculus.teleop")


@pytest.mark.parametrize(
    ("devices", "serial", "match"),
    [
        ([], None, "no headset found"),
        ([["1WMHH", "unauthorized"]], None, "accept USB debugging"),
        (
            [["1WMHH", "no permissions (missing udev rules? user is in the plugdev group)"]],
            None,
            "accept USB debugging",
        ),
        ([["1WMHH", "offline"]], None, "offline"),
        ([["A1", "device"], ["B2", "device"]], None, "several adb devices.*serial="),
        ([["A1", "device"]], "B2", "B2 not found"),
    ],
)
def test_live_transport_clear_errors(tmp_path, devices, serial, match):
    adb = _fake_adb(tmp_path, devices)
    dev = DEVICES.make("quest3", adb=str(adb), serial=serial)
    with pytest.raises(QuestError, match=match):
        dev.connect(RealClock())
    assert not dev.status().connected
    assert not any("logcat" in c for c in _calls(tmp_path))


def test_live_transport_wifi_serial_and_install(tmp_path, monkeypatch):
    import devices.inputs.quest.adb as quest  # the live transport reads its backoff there

    monkeypatch.setattr(quest, "RECONNECT_BACKOFF_S", (0.05,))
    apk = tmp_path / "teleop.apk"
    apk.write_bytes(b"PK")
    line = f"11-22 23:12:01.000  1234  1250 I {TAG}: {message_of(0)}"
    adb = _fake_adb(tmp_path, [["A1", "device"], ["10.0.0.5:5555", "device"]], [line])
    dev = DEVICES.make("quest3", adb=str(adb), host="10.0.0.5", apk=str(apk))
    dev.connect(RealClock())
    try:
        assert _wait(lambda: dev.status().frames >= 1)
    finally:
        dev.disconnect()
    calls = _calls(tmp_path)
    assert calls[0] == "connect 10.0.0.5:5555"
    assert f"-s 10.0.0.5:5555 install -r {apk}" in calls
    assert sum(c.startswith("-s 10.0.0.5:5555 install") for c in calls) == 1  # once
    assert dev.serial == "10.0.0.5:5555"


def test_parse_adb_devices():
    text = (
        "* daemon not running; starting now at tcp:5037\n* daemon started successfully\n"
        "List of devices attached\n2G0YC5ZG8L0QXX\tdevice\n10.0.0.5:5555\toffline\n"
        "1WMHH\tno permissions (user in plugdev group); see [http://developer.android.com]\n\n"
    )
    devices = parse_adb_devices(text)
    assert devices[:2] == [("2G0YC5ZG8L0QXX", "device"), ("10.0.0.5:5555", "offline")]
    assert devices[2][0] == "1WMHH" and devices[2][1].startswith("no permissions")


def test_availability_follows_path(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    reason = QuestDevice.availability()
    assert reason is not None and "adb not found" in reason and "logcat=FILE" in reason
    assert "\n" not in reason
    with_adb = tmp_path / "bin"
    with_adb.mkdir()
    _fake_adb(with_adb, [])
    monkeypatch.setenv("PATH", f"{with_adb}{os.pathsep}{empty}")
    assert QuestDevice.availability() is None
    dev = DEVICES.make("quest3")  # no adb override: found on PATH
    with pytest.raises(QuestError, match="no headset found"):
        dev.connect(RealClock())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    DATA.mkdir(parents=True, exist_ok=True)
    CAPTURE.write_text(make_capture())
    log.info("wrote %s", CAPTURE)
