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
