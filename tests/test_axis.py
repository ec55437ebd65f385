"""Rotation-axis selection from buttons and controller orientation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.retargeting.axis import AxisConfig, AxisSelector, rotation_vector
from devices.tick import HumanFrame


def rot(axis, deg):
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    a = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def frame(buttons=None, left=None):
    controllers = {}
    if left is not None:
        pose = np.eye(4)
        pose[:3, :3] = left
        controllers["left"] = pose
    return HumanFrame(
        np.zeros((21, 3)), np.eye(4), 0.0, buttons=buttons or {}, controllers=controllers
    )


def test_button_mode_defaults_like_dexndm():
    sel = AxisSelector(AxisConfig(mode="buttons"))
    assert sel(frame()).axis is None
    np.testing.assert_allclose(sel(frame({"X": 1.0})).axis, [0, 0, 1])
    np.testing.assert_allclose(sel(frame({"Y": 1.0})).axis, [0, 0, -1])
    np.testing.assert_allclose(sel(frame({"LG": 1.0})).axis, [0, -1, 0])
    custom = AxisSelector(AxisConfig(mode="buttons", buttons={"A": (1.0, 1.0, 0.0)}))
    np.testing.assert_allclose(custom(frame({"A": 1.0})).axis, np.array([1, 1, 0]) / np.sqrt(2))
    with pytest.raises(ValueError):
        AxisSelector(AxisConfig(buttons={"A": (0.0, 0.0, 0.0)}))


def test_orientation_mode_axis_deadband_recentre_and_short_axis():
    assert AxisConfig().short_axis == 1  # the Quest grip's thin axis (y, left)
    with pytest.raises(ValueError, match="short_axis"):
        AxisSelector(AxisConfig(short_axis=3))
    sel = AxisSelector(AxisConfig(mode="orientation", short_axis=0, short_axis_weight=0.3))
    rest = rot([0, 0, 1], 30)  # any rest pose: axes are relative to it
    assert sel(frame(left=rest)).axis is None  # latched, no rotation yet
    assert sel(frame(left=rest @ rot([0, 1, 0], 10))).axis is None  # inside the dead band
    np.testing.assert_allclose(
        sel(frame(left=rest @ rot([0, 1, 0], 40))).axis, [0, 1, 0], atol=1e-9
    )
    np.testing.assert_allclose(
        sel(frame(left=rest @ rot([0, 0, -1], 40))).axis, [0, 0, -1], atol=1e-9
    )
    # a rotation about both y and the short x axis leans toward y
    a = sel(frame(left=rest @ rot([1, 1, 0], 40))).axis
    assert a[1] > 3 * a[0] > 0 and np.isclose(np.linalg.norm(a), 1)
    # re-centre: the current pose becomes the rest pose
    turned = rest @ rot([0, 1, 0], 60)
    assert sel(frame({"LJ": 1.0}, left=turned)).axis is None
    assert sel(frame(left=turned)).axis is None
    assert sel(frame()).axis is None  # controller lost: no axis


@settings(max_examples=300, deadline=None)
@given(
    axis=st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda v: np.linalg.norm(v) > 0.1),
    deg=st.floats(0.5, 179.5),
)
def test_rotation_vector_inverts_axis_angle(axis, deg):
    axis = np.array(axis) / np.linalg.norm(axis)
    np.testing.assert_allclose(rotation_vector(rot(axis, deg)), np.radians(deg) * axis, atol=1e-6)


def test_the_app_choice_overrides_the_device_until_device_again():
    sel = AxisSelector(AxisConfig(mode="buttons"))
    sel.choose("-y")
    np.testing.assert_allclose(sel(frame({"X": 1.0})).axis, [0, -1, 0])
    assert sel(frame()).source == "app -y"
    sel.choose("device")
    np.testing.assert_allclose(sel(frame({"X": 1.0})).axis, [0, 0, 1])
    with pytest.raises(ValueError, match="rotation axis"):
        sel.choose("sideways")
    assert sel.chosen == "device"


def test_session_set_axis_reaches_the_command():
    from test_session import ScriptedDevice, good_frames, step

    from devices.clock import SimClock
    from teleop_app.session import Session, SessionConfig

    session = Session(
        SessionConfig(fast=True), clock=SimClock(), device=ScriptedDevice(good_frames(10))
    )
    with session:
        assert step(session).command.axis is None
        session.set_axis("+z")
        np.testing.assert_allclose(step(session).command.axis, [0, 0, 1])
        bad = session.set_axis("up")
        step(session)
        assert isinstance(bad.exception(), ValueError)
        session.set_axis("device")
        step(session)
        assert step(session).command.axis is None
