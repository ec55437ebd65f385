"""Hand specs against their Menagerie models, and sim/pinocchio kinematics agreement."""

import mujoco
import numpy as np
import pytest
from conftest import HANDS

from assets import ROBOT_KEYPOINT_NAMES, load_hand
from assets.hands import HAND_SPECS, HandModelError
from devices.retargeting.kinematics import HandKinematics
from devices.robots import ROBOTS


@pytest.mark.parametrize("name", HANDS)
def test_spec_matches_model(name):
    hand = load_hand(name)
    model = hand.mjspec().compile()
    assert hand.n_joints == 16
    assert len(ROBOT_KEYPOINT_NAMES) == 8
    for i, j in enumerate(hand.joint_names):
        np.testing.assert_allclose(model.joint(j).range, [hand.lower[i], hand.upper[i]])
    assert np.all(hand.lower < hand.upper)
    assert np.all((hand.default_open >= hand.lower) & (hand.default_open <= hand.upper))
    assert np.all(hand.kp > 0)
    for n in ROBOT_KEYPOINT_NAMES:
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, f"kp_{n}") >= 0


@pytest.mark.parametrize("name", HANDS)
def test_palm_frame_axes(name):
    """x along the fingers, y toward the thumb, z dorsal: flexing moves tips toward -z."""
    hand = load_hand(name)
    kin = HandKinematics(hand)
    straight = kin.keypoints(np.zeros(hand.n_joints))
    mid_tip = straight[ROBOT_KEYPOINT_NAMES.index("middle_tip")]
    assert mid_tip[0] > 0.15 and abs(mid_tip[1]) < 0.01 and abs(mid_tip[2]) < 0.01
    assert straight[ROBOT_KEYPOINT_NAMES.index("thumb_tip")][1] > 0.05  # thumb on +y
    assert (
        straight[ROBOT_KEYPOINT_NAMES.index("index_tip")][1]
        > straight[ROBOT_KEYPOINT_NAMES.index("ring_tip")][1]
    )
    q = hand.clip(np.full(hand.n_joints, 0.8))
    curled = kin.keypoints(q)
    assert curled[ROBOT_KEYPOINT_NAMES.index("middle_tip")][2] < -0.03


@pytest.mark.parametrize("name", HANDS)
def test_pinocchio_and_mujoco_agree(name):
    """Retargeting kinematics and the simulator are built from one MJCF: same keypoints."""
    hand = load_hand(name)
    kin = HandKinematics(hand)
    robot = ROBOTS.make("sim", hand=name, wrist="thumb_up")
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = rng.uniform(hand.lower, hand.upper)
        robot.reset(q)
        np.testing.assert_allclose(kin.keypoints(q), robot.read().keypoints, atol=1e-6)


def test_unknown_hand_and_missing_models(monkeypatch, tmp_path):
    with pytest.raises(KeyError, match="available"):
        load_hand("nope")
    load_hand.cache_clear()
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    try:
        with pytest.raises(HandModelError, match="MENAGERIE_ROOT"):
            load_hand("leap")
    finally:
        load_hand.cache_clear()
    assert set(HAND_SPECS) >= set(HANDS)


@pytest.mark.parametrize("name", HANDS)
def test_hardware_map_round_trip(name):
    """Spec joints -> bus positions -> spec joints is the identity, every bus ID is used once."""
    spec = HAND_SPECS[name]
    hw = spec.hardware
    assert hw is not None and len(hw.motor_ids) == len(spec.joint_names)
    hand = load_hand(name)
    q = np.random.default_rng(0).uniform(hand.lower, hand.upper, (50, hand.n_joints))
    np.testing.assert_allclose(hw.from_hardware(hw.to_hardware(q)), q, atol=1e-12)
    np.testing.assert_allclose(hw.to_hardware(hw.from_hardware(q)), q, atol=1e-12)


def test_leap_hardware_map_facts():
    """LEAP: real = sim + pi; motor 0 is index MCP-side (if_rot), motor 1 index MCP-forward."""
    hw = HAND_SPECS["leap"].hardware
    names = HAND_SPECS["leap"].joint_names
    q = np.zeros(16)
    q[names.index("if_rot")] = 0.3
    q[names.index("th_ipl")] = -0.2
    real = hw.to_hardware(q)
    assert real[0] == pytest.approx(np.pi + 0.3)
    assert real[1] == pytest.approx(np.pi)
    assert real[15] == pytest.approx(np.pi - 0.2)
    with pytest.raises(ValueError, match="permutation"):
        type(hw)(motor_ids=(0, 0), offset_rad=(0, 0), sign=(1, 1), source="")


@pytest.mark.parametrize("name", HANDS)
def test_keypoints_from_joints_match_the_simulator(name):
    """Hand.keypoints (MuJoCo kinematics of the spec's MJCF) equals what the simulated hand
    reports for the same joints, and matches the retargeter's pinocchio kinematics."""
    from devices.retargeting.kinematics import hand_kinematics

    hand = load_hand(name)
    robot = ROBOTS.make("sim", hand=name)
    rng = np.random.default_rng(1)
    for _ in range(5):
        q = rng.uniform(hand.lower, hand.upper)
        robot.reset(q)
        np.testing.assert_allclose(hand.keypoints(q), robot.read().keypoints, atol=1e-9)
        np.testing.assert_allclose(hand.keypoints(q), hand_kinematics(name).keypoints(q), atol=1e-6)
    batch = rng.uniform(hand.lower, hand.upper, (2, 3, hand.n_joints))
    assert hand.keypoints(batch).shape == (2, 3, 8, 3)
    with pytest.raises(ValueError, match="joints"):
        hand.keypoints(np.zeros(3))
