"""The simulated hand: substeps, wrist orientations, objects, position control."""

import numpy as np
import pytest
from conftest import HANDS

from assets import OBJECTS
from assets.physics import substeps as substeps_for
from devices.robots import ROBOTS, WRIST_ORIENTATIONS

GRAVITY = np.array([0.0, 0.0, -1.0])


def test_substeps():
    assert substeps_for(20.0, 0.002) == 25
    assert substeps_for(20.0, 0.01) == 5
    with pytest.raises(ValueError, match="whole number"):
        substeps_for(30.0, 0.002 * 1.7)


@pytest.mark.parametrize("name", HANDS)
def test_position_control_reaches_targets(name):
    robot = ROBOTS.make("sim", hand=name)
    with robot:
        hand = robot.hand
        goal = hand.clip(hand.default_open + 0.4)
        for _ in range(40):  # 2 s; the rate limit needs 0.4 / 0.3 = 2 ticks
            sent, _ = robot.send(goal)
        state = robot.read()
        np.testing.assert_allclose(sent, goal)
        # Position servos without gravity compensation settle close to, not on, the target.
        assert np.abs(state.q - goal).max() < 0.15
        assert np.abs(state.dq).max() < 0.5
    assert robot.limit_violations == 0


@pytest.mark.parametrize("wrist", sorted(WRIST_ORIENTATIONS))
def test_wrist_orientations(wrist):
    robot = ROBOTS.make("sim", hand="leap", wrist=wrist)
    with robot:
        r = robot.read().wrist[:3, :3]
    np.testing.assert_allclose(r, WRIST_ORIENTATIONS[wrist], atol=1e-9)
    # Where the palm normal (-z of the palm frame) points in the world:
    palm_normal = -r[:, 2]
    expected = {"palm_up": 1.0, "palm_down": -1.0}.get(wrist)
    if expected is not None:
        assert palm_normal @ -GRAVITY == pytest.approx(expected)
    if wrist in ("base_up", "base_down"):
        assert r[:, 0] @ -GRAVITY == pytest.approx(-1.0 if wrist == "base_up" else 1.0)
    if wrist in ("thumb_up", "thumb_down"):
        assert r[:, 1] @ -GRAVITY == pytest.approx(1.0 if wrist == "thumb_up" else -1.0)


@pytest.mark.parametrize("name", HANDS)
@pytest.mark.parametrize("obj", sorted(OBJECTS))
def test_objects_rest_in_the_open_palm_up_hand(name, obj):
    robot = ROBOTS.make("sim", hand=name, object=obj, wrist="palm_up")
    with robot:
        start = robot.read().object_pose[:3].copy()
        for _ in range(40):
            robot.send(robot.hand.default_open)
        state = robot.read()
    assert state.object_dropped is False
    assert np.linalg.norm(state.object_pose[:3] - start) < 0.02


def test_object_falls_from_a_palm_down_hand_and_mass_friction_apply():
    robot = ROBOTS.make("sim", hand="allegro", object="cube", wrist="palm_down")
    with robot:
        for _ in range(20):
            robot.send(robot.hand.default_open)
        assert robot.read().object_dropped is True
    heavy = ROBOTS.make("sim", hand="leap", object="cube", object_mass_kg=0.3, object_friction=0.3)
    gid = heavy.model.geom("object_geom").id
    assert heavy.model.body_mass[heavy.model.geom_bodyid[gid]] == pytest.approx(0.3)
    assert heavy.model.geom_friction[gid][0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="unknown object"):
        ROBOTS.make("sim", hand="leap", object="teapot")
    with pytest.raises(ValueError, match="wrist"):
        ROBOTS.make("sim", hand="leap", wrist="sideways")


def test_state_round_trip_for_rendering():
    robot = ROBOTS.make("sim", hand="leap", object="sphere")
    with robot:
        for _ in range(5):
            robot.send(robot.hand.default_open + 0.2)
        snap = robot.sim_state()
        kp = robot.read().keypoints
        robot.reset()
        robot.load_state(snap)
        np.testing.assert_allclose(robot.read().keypoints, kp, atol=1e-12)
