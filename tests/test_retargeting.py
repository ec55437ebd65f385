"""Retargeting: round trips through forward kinematics, modes, filtering, scale."""

import numpy as np
import pytest
from conftest import HANDS

from assets import ROBOT_KEYPOINT_NAMES, load_hand
from devices.inputs.clips import generate_clip
from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
from devices.retargeting import RETARGET_MODES, RetargetConfig, Retargeter, default_scale
from devices.tick import HumanFrame


def human_from_robot(rt: Retargeter, kp_robot: np.ndarray) -> np.ndarray:
    """Robot keypoints (palm frame) -> a human hand that maps onto them."""
    return rt.map.inverse(kp_robot, DEFAULT_HAND.keypoints(OPEN_POSE))


@pytest.mark.parametrize("name", HANDS)
def test_position_round_trip_under_1cm(name):
    """Random joints -> FK -> human-scaled keypoints -> retarget -> FK: mean error < 1 cm.

    Joints are drawn from the range retargeting commands (the limits, PIP/DIP without
    hyperextension).
    """
    hand = load_hand(name)
    # no wall-clock cap: the accuracy of a solve, not its real-time budget, is under test (with
    # the cap, a loaded machine cut solves short: 10.3 mm on a fresh clone's full suite)
    rt = Retargeter(hand, RetargetConfig(mode="position", lowpass_alpha=1.0, max_solve_s=None))
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(25):
        q = rng.uniform(hand.retarget_lower, hand.upper)
        kp = rt.kin.keypoints(q)
        rt.reset()
        cmd = rt(HumanFrame(human_from_robot(rt, kp), np.eye(4), 0.0))
        np.testing.assert_allclose(cmd.keypoints, kp, atol=1e-9)  # the map inverts exactly
        errors.append(np.linalg.norm(rt.kin.keypoints(cmd.joints) - kp, axis=1).mean())
    assert np.mean(errors) < 0.010, f"mean keypoint error {np.mean(errors) * 1e3:.1f} mm"


@pytest.mark.parametrize("name", HANDS)
@pytest.mark.parametrize("mode", RETARGET_MODES)
def test_modes_track_a_clip_within_limits(name, mode):
    """On a generated pinch clip every mode stays in the limits and tracks the fingertips."""
    hand = load_hand(name)
    rt = Retargeter(hand, RetargetConfig(mode=mode))
    clip = generate_clip("pinch_index", duration_s=3.0, rate_hz=20.0, seed=1)
    open_err, errs, pinch_gap = [], [], []
    tips = [ROBOT_KEYPOINT_NAMES.index("thumb_tip"), ROBOT_KEYPOINT_NAMES.index("index_tip")]
    for i in range(len(clip)):
        cmd = rt(clip.frame(i))
        assert np.all(cmd.joints >= hand.lower) and np.all(cmd.joints <= hand.upper)
        kp = rt.kin.keypoints(cmd.joints)
        errs.append(np.linalg.norm(kp - cmd.keypoints, axis=1).mean())
        open_err.append(
            np.linalg.norm(rt.kin.keypoints(hand.default_open) - cmd.keypoints, axis=1).mean()
        )
        pinch_gap.append(np.linalg.norm(kp[tips[0]] - kp[tips[1]]))
    # Retargeting follows the command far better than standing still would.
    assert np.mean(errs) < 0.5 * np.mean(open_err)
    # The pinch closes: where the human's tips meet, the robot's come together too.
    human_gap = np.linalg.norm(clip.keypoints[:, 4] - clip.keypoints[:, 8], axis=1)
    closed, opened = int(np.argmin(human_gap)), int(np.argmax(human_gap))
    assert pinch_gap[closed] < 0.5 * pinch_gap[opened]


def test_lowpass_filter_smooths_steps():
    hand = load_hand("leap")
    raw = Retargeter(hand, RetargetConfig(lowpass_alpha=1.0))
    smooth = Retargeter(hand, RetargetConfig(lowpass_alpha=0.3))
    clip = generate_clip("open_close", duration_s=2.0, rate_hz=20.0, seed=0)
    a = np.array([raw(clip.frame(i)).joints for i in range(len(clip))])
    b = np.array([smooth(clip.frame(i)).joints for i in range(len(clip))])
    assert np.abs(np.diff(b, axis=0)).sum() < np.abs(np.diff(a, axis=0)).sum()


def test_operator_scale_scales_each_digit_about_its_base():
    hand = load_hand("allegro")
    clip = generate_clip("open_close", duration_s=3.0, seed=0)
    spread = np.linalg.norm(clip.keypoints[:, [8, 12, 16]] - clip.keypoints[:, [4]], axis=2)
    frame = clip.frame(int(np.argmax(spread.min(axis=1))))  # the most open: no pinch blend
    ra = Retargeter(hand, RetargetConfig(scale=1.0))
    rb = Retargeter(hand, RetargetConfig(scale=1.2))
    a, b = ra(frame).keypoints, rb(frame).keypoints
    bases = np.repeat(ra.map.bases, 2, axis=0)  # each keypoint's digit base (8, 3)
    np.testing.assert_allclose(b - bases, 1.2 * (a - bases), atol=1e-9)
    assert 1.0 < default_scale("leap") < 2.0 and 1.0 < default_scale("allegro") < 2.0


def test_pinch_asks_the_robot_to_pinch():
    """Where the human thumb and index tips touch, the commanded robot tips coincide."""
    for name in HANDS:
        rt = Retargeter(name)
        clip = generate_clip("pinch_index", duration_s=3.0, rate_hz=20.0, seed=0)
        gap = np.linalg.norm(clip.keypoints[:, 4] - clip.keypoints[:, 8], axis=1)
        touching = rt.map_keypoints(clip.keypoints[int(np.argmin(gap))])
        apart = rt.map_keypoints(clip.keypoints[int(np.argmax(gap))])
        assert np.linalg.norm(touching[4] - touching[8]) < 1e-9
        assert np.linalg.norm(apart[4] - apart[8]) > 0.05


def test_open_human_hand_gives_open_robot_fingers():
    """A flat human hand asks for nearly straight robot fingers, not a zig-zag."""
    for name in HANDS:
        hand = load_hand(name)
        rt = Retargeter(hand, RetargetConfig(lowpass_alpha=1.0))
        flat = DEFAULT_HAND.keypoints(OPEN_POSE)
        for _ in range(3):
            cmd = rt(HumanFrame(flat, np.eye(4), 0.0))
        base = hand.finger_base_palm[:3]
        commanded = np.linalg.norm(cmd.keypoints[1:6:2] - base, axis=1)
        straight = np.linalg.norm(rt.kin.keypoints(np.zeros(hand.n_joints))[1:6:2] - base, axis=1)
        np.testing.assert_allclose(commanded, straight, rtol=0.1)  # finger lengths kept
        flex = cmd.joints.reshape(4, 4)[:3, 2:]  # PIP, DIP of index, middle, ring
        assert flex.min() >= 0.0 and flex.max() < 0.5, (name, flex)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        Retargeter("leap", RetargetConfig(mode="telepathy"))
    with pytest.raises(ValueError, match="scale"):
        Retargeter("leap", RetargetConfig(scale=0.0))
