"""Input-frame plausibility: hands that are no human hand are refused, by reason."""

import dataclasses

import numpy as np
import pytest

from assets import CLIPS_DIR
from devices.clock import SimClock
from devices.inputs.clips import CLIP_KINDS, generate_clip, load_clip, save_clip
from devices.inputs.human_hand import (
    DEFAULT_HAND,
    FIST_POSE,
    JOINT_LOWER,
    JOINT_UPPER,
    OPEN_POSE,
    HumanHandModel,
)
from devices.inputs.quest import grasp_keypoints
from devices.inputs.validate import (
    HAND_BONES,
    IMPLAUSIBLE_HAND_REASONS,
    MAX_BONE_M,
    MIN_BONE_M,
    NOMINAL_BONE_M,
    bone_lengths,
    frame_problem,
    hand_problem,
)
from devices.tick import HumanFrame

SCALES = (0.7, 1.0, 1.4)  # operator hands, relative to the nominal adult hand


def frame(keypoints, t=0.0, seq=0):
    return HumanFrame(keypoints=np.asarray(keypoints, float), wrist=np.eye(4), t=t, seq=seq)


def problem(keypoints):
    return frame_problem(frame(keypoints), last_t=None, min_confidence=0.5)


def collapse(keypoints, bone):
    """The keypoints with the bone's child moved onto its parent (a zero-length bone)."""
    kp = np.array(keypoints, dtype=float)
    parent, child = bone
    kp[child] = kp[parent]
    return kp


def stretch(keypoints, bone, factor):
    """The keypoints with the bone's child moved to ``factor`` times the bone's length."""
    kp = np.array(keypoints, dtype=float)
    parent, child = bone
    kp[child] = kp[parent] + factor * (kp[child] - kp[parent])
    return kp


def test_bounds_come_from_the_hand_model():
    assert len(HAND_BONES) == 20 and sorted(c for _, c in HAND_BONES) == list(range(1, 21))
    np.testing.assert_allclose(NOMINAL_BONE_M, bone_lengths(DEFAULT_HAND.keypoints(FIST_POSE)))
    assert NOMINAL_BONE_M.min() == pytest.approx(0.020)  # pinky middle phalanx
    assert NOMINAL_BONE_M.max() == pytest.approx(0.092)  # wrist to middle MCP
    assert np.all(min(SCALES) * NOMINAL_BONE_M > MIN_BONE_M)
    assert np.all(max(SCALES) * NOMINAL_BONE_M < MAX_BONE_M)
    assert np.all(3 * min(SCALES) * NOMINAL_BONE_M > MAX_BONE_M)


def test_all_zero_frame_is_refused():
    assert problem(np.zeros((21, 3))) == "hand_all_zero"
    assert hand_problem(np.zeros((21, 3))) == "hand_all_zero"
    # the same hand everywhere but at the origin is not "all zero": its bones collapsed
    assert problem(np.full((21, 3), 0.01)) == "hand_bone_too_short"


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("bone", HAND_BONES)
def test_zero_length_bone_is_refused(bone, scale):
    kp = HumanHandModel(scale=scale).keypoints(OPEN_POSE)
    assert problem(collapse(kp, bone)) == "hand_bone_too_short"


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("bone", HAND_BONES)
def test_three_times_long_bone_is_refused(bone, scale):
    kp = HumanHandModel(scale=scale).keypoints(OPEN_POSE)
    assert problem(stretch(kp, bone, 3.0)) == "hand_bone_too_long"


def test_reasons_are_distinct_from_the_other_problems():
    assert len(set(IMPLAUSIBLE_HAND_REASONS)) == 3
    assert not {"invalid_input", "low_confidence", "time_backwards"} & set(IMPLAUSIBLE_HAND_REASONS)
    nan = np.full((21, 3), np.nan)
    assert problem(nan) == "invalid_input"  # unchanged: NaN is invalid input


@pytest.mark.parametrize("path", sorted(CLIPS_DIR.glob("*.npz")), ids=lambda p: p.stem)
def test_every_bundled_clip_is_accepted(path):
    clip = load_clip(path)
    problems = {problem(kp) for kp in clip.keypoints}
    assert problems == {None}


@pytest.mark.parametrize("scale", SCALES)
def test_scaled_hands_are_accepted(scale):
    hand = HumanHandModel(scale=scale)
    clip = generate_clip("demo", rate_hz=10.0, seed=1, hand=hand)  # every kind of motion
    assert {problem(kp) for kp in clip.keypoints} == {None}
    rng = np.random.default_rng(0)
    poses = np.vstack([JOINT_LOWER, JOINT_UPPER, rng.uniform(JOINT_LOWER, JOINT_UPPER, (50, 20))])
    assert {problem(kp) for kp in hand.keypoints(poses)} == {None}


def test_device_hands_are_accepted():
    for grasp in (0.0, 0.5, 1.0):  # the Quest's hand closed by the trigger
        assert problem(grasp_keypoints(grasp)) is None


def test_every_kind_of_clip_is_bundled():
    assert sorted(p.stem for p in CLIPS_DIR.glob("*.npz")) == sorted(CLIP_KINDS)


# ---------------------------------------------------------------------------- session


def test_session_refuses_implausible_hands_by_reason_and_holds(tmp_path):
    from teleop_app.session import Session, SessionConfig

    rate_hz = 25.0
    clip = generate_clip("open_close", duration_s=3.0, rate_hz=rate_hz, seed=2)
    kp = clip.keypoints.copy()
    bad = {
        "hand_all_zero": range(15, 25),
        "hand_bone_too_short": range(35, 45),
        "hand_bone_too_long": range(55, 65),
    }
    for i in bad["hand_all_zero"]:
        kp[i] = 0.0
    for i in bad["hand_bone_too_short"]:
        kp[i] = collapse(kp[i], (7, 8))  # index tip on the DIP
    for i in bad["hand_bone_too_long"]:
        kp[i] = stretch(kp[i], (0, 1), 3.0)  # the thumb's CMC 12 cm from the wrist
    path = tmp_path / "glitches.npz"
    save_clip(dataclasses.replace(clip, keypoints=kp), path)

    # Ticks at twice the clip's rate: every frame is seen (each bad one counted once).
    config = SessionConfig(
        fast=True, rate_hz=2 * rate_hz, device="replay", device_options={"path": str(path)}
    )
    session = Session(config, clock=SimClock())
    records = []
    session.subscribe(records.append)
    with session:
        session.run(ticks=2 * len(clip) - 4)  # one pass, no loop
    report = session.report()

    assert report["device"]["frames_refused"] == {reason: 10 for reason in bad}
    for reason in bad:
        assert report["safety_events"][reason] >= 10
    for reason, frames in bad.items():
        held = [r for r in records if reason in r.events]
        assert len(held) >= len(frames)
        for r in held:
            assert r.frame is None  # not used
            np.testing.assert_array_equal(r.sent, r.state.target)  # the hand holds
    used = {r.frame.seq for r in records if r.frame is not None}
    assert used.isdisjoint(set().union(*bad.values()))
    assert max(used) > 65  # and it follows the good frames after the bad ones
    assert report["limit_violations"] == 0
