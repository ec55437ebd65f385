"""The wrist's own filter: workspace box, speed limits, hold, on the single path to the mount."""

from __future__ import annotations

import numpy as np
import pytest
from test_session import ScriptedDevice, good_frames, step

from devices.clock import SimClock
from devices.robots.wrist import WristFilter, WristLimits
from teleop_app.session import Session, SessionConfig

PERIOD = 0.05


def pose(pos=(0.0, 0.0, 0.0), angle_z=0.0):
    c, s = np.cos(angle_z), np.sin(angle_z)
    out = np.eye(4)
    out[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    out[:3, 3] = pos
    return out


def angle_between(a, b):
    return float(np.arccos(np.clip((np.trace(a[:3, :3].T @ b[:3, :3]) - 1) / 2, -1, 1)))


def test_relative_to_the_first_pose_and_boxed():
    f = WristFilter(WristLimits(workspace_m=0.2, max_speed_m_s=100.0), PERIOD)
    out, ev = f(pose((1.0, 2.0, 3.0)))
    np.testing.assert_allclose(out[:3, 3], 0.0)
    out, ev = f(pose((1.1, 2.0, 3.0)))
    np.testing.assert_allclose(out[:3, 3], [0.1, 0, 0], atol=1e-12)
    assert ev == []
    out, ev = f(pose((1.5, 1.0, 3.0)))
    np.testing.assert_allclose(out[:3, 3], [0.2, -0.2, 0.0], atol=1e-12)
    assert ev == ["wrist_workspace"]


def test_speed_limits_translation_and_rotation():
    lim = WristLimits(workspace_m=1.0, max_speed_m_s=1.0, max_rot_speed_rad_s=2.0)
    f = WristFilter(lim, PERIOD)
    f(pose())
    out, ev = f(pose((0.5, 0, 0), angle_z=1.0))
    assert np.linalg.norm(out[:3, 3]) == pytest.approx(0.05)  # 1 m/s x 50 ms
    assert angle_between(out, pose()) == pytest.approx(0.1)  # 2 rad/s x 50 ms
    assert "wrist_rate_limited" in ev
    np.testing.assert_allclose(out[:3, :3].T @ out[:3, :3], np.eye(3), atol=1e-12)
    # a late frame after a gap moves no faster: steps are over min(dt, period)
    out2, _ = f(pose((0.5, 0, 0), angle_z=1.0), dt_s=1.0)
    assert np.linalg.norm(out2[:3, 3] - out[:3, 3]) == pytest.approx(0.05)
    # a half turn is limited too (the axis is undefined from the skew part alone)
    g = WristFilter(lim, PERIOD)
    g(pose())
    out, _ = g(pose(angle_z=np.pi))
    assert angle_between(out, pose()) == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize(
    "bad",
    [np.full((4, 4), np.nan), np.eye(3), "x", np.diag([2.0, 1.0, 1.0, 1.0]), -np.eye(4)],
)
def test_invalid_or_held_poses_keep_the_last_safe_one(bad):
    f = WristFilter(WristLimits(), PERIOD)
    assert f(bad) == (None, ["invalid_wrist"])  # nothing to hold yet
    first, _ = f(pose((0.1, 0, 0)))
    out, ev = f(bad)
    np.testing.assert_array_equal(out, first)
    assert ev == ["invalid_wrist"]
    out, ev = f(pose((0.3, 0, 0)), hold="stale_input")
    np.testing.assert_array_equal(out, first)
    assert ev == ["stale_input"] and f.counts["invalid_wrist"] == 2


def test_property_never_leaves_the_box_or_exceeds_the_speed():
    lim = WristLimits(workspace_m=0.3, max_speed_m_s=0.5, max_rot_speed_rad_s=1.0)
    f = WristFilter(lim, PERIOD)
    rng = np.random.default_rng(0)
    last = None
    for _ in range(500):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        p = np.eye(4)
        p[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
        p[:3, 3] = rng.normal(scale=1.0, size=3)
        out, _ = f(p, dt_s=float(rng.uniform(0, 0.2)))
        assert np.all(np.abs(out[:3, 3]) <= 0.3 + 1e-12)
        if last is not None:
            assert np.linalg.norm(out[:3, 3] - last[:3, 3]) <= 0.5 * PERIOD + 1e-9
            assert angle_between(out, last) <= 1.0 * PERIOD + 1e-6
        last = out


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="workspace_m"):
        WristLimits(workspace_m=0.0)
    with pytest.raises(ValueError, match="max_speed_m_s"):
        WristLimits(max_speed_m_s=float("nan"))


def test_session_sends_the_wrist_through_the_filter():
    """A wrist that jumps 1 m between two frames moves the mount by at most one period at
    the speed limit; the report counts the event; a fixed wrist never moves."""
    frames = good_frames(12)
    jumped = []
    for i, f in enumerate(frames):
        w = np.array(f.wrist, dtype=float)
        if i >= 6:
            w[:3, 3] += [1.0, 0.0, 0.0]
        jumped.append(type(f)(**{**f.__dict__, "wrist": w}))
    session = Session(
        SessionConfig(fast=True, robot_options={"wrist": "follow"}),
        clock=SimClock(),
        device=ScriptedDevice(jumped),
    )
    with session:
        mounts = []
        for _ in range(12):
            step(session)
            mounts.append(session.robot.data.mocap_pos[0].copy())
        rep = session.report()
    moves = np.linalg.norm(np.diff(mounts, axis=0), axis=1)
    assert moves.max() <= session.robot.wrist_filter.limits.max_speed_m_s * 0.05 + 1e-9
    assert moves.max() > 0.09  # it did move toward the jump
    assert rep["wrist_events"]["wrist_rate_limited"] >= 1


def test_a_fixed_mount_takes_no_wrist_poses():
    """Only a following mount moves: with a fixed wrist the filter sees nothing, the report
    has no wrist events however the operator's wrist jumps."""
    frames = good_frames(8)
    for f in frames[4:]:
        f.wrist[:3, 3] += [1.0, 0.0, 0.0]
    session = Session(
        SessionConfig(fast=True, robot_options={"wrist": "palm_down"}),
        clock=SimClock(),
        device=ScriptedDevice(frames),
    )
    assert not session.robot.supports_wrist_pose
    with session:
        for _ in range(8):
            step(session)
        rep = session.report()
    assert "wrist_events" not in rep and not session.robot.wrist_filter.counts


def test_asymmetric_box_and_tilt_limit():
    lim = WristLimits(box_min_m=(-0.1, -0.2, -0.05), box_max_m=(0.3, 0.2, 0.4),
                      max_speed_m_s=100.0, max_tilt_rad=0.5)  # fmt: skip
    f = WristFilter(lim, PERIOD)
    f(pose((0.0, 0.0, 1.0), angle_z=0.2))
    out, ev = f(pose((-1.0, 0.0, 0.0), angle_z=0.2))
    np.testing.assert_allclose(out[:3, 3], [-0.1, 0.0, -0.05])
    assert ev == ["wrist_workspace"]
    # 1.2 rad from the first orientation: held at 0.5 rad from it, on the same side
    out, ev = f(pose((0.0, 0.0, 1.0), angle_z=1.4))
    assert "wrist_tilt_limited" in ev
    assert angle_between(out, pose(angle_z=0.2)) == pytest.approx(0.5, abs=1e-9)
    assert angle_between(out, pose(angle_z=0.7)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="hold the origin"):
        WristLimits(box_min_m=(0.1, 0, 0), box_max_m=(0.2, 1, 1))
    with pytest.raises(ValueError, match="both"):
        WristLimits(box_min_m=(0, 0, 0))


def test_acceleration_limit_ramps_up_and_stops_without_overshoot():
    """A 0.4 m jump: the speed grows by at most a * dt per step, never above the speed
    limit, and the pose arrives without passing the target; then a hold resets the speed."""
    a, vmax = 2.0, 0.5
    f = WristFilter(WristLimits(max_speed_m_s=vmax, max_accel_m_s2=a), PERIOD)
    f(pose())
    xs, evs = [0.0], []
    for _ in range(60):
        out, ev = f(pose((0.4, 0.0, 0.0)))
        xs.append(out[0, 3])
        evs += ev
    v = np.diff(xs) / PERIOD
    assert np.all(np.diff(v) <= a * PERIOD + 1e-9) and np.all(v <= vmax + 1e-9)
    assert np.all(np.diff(v)[:3] > 0)  # ramping, not jumping
    assert max(xs) <= 0.4 + 1e-12 and xs[-1] == pytest.approx(0.4)
    assert "wrist_accel_limited" in evs and "wrist_rate_limited" in evs
    f(pose((0.4, 0.0, 0.0)), hold="stale_input")
    out, _ = f(pose((0.0, 0.0, 0.0)))
    assert 0.4 - out[0, 3] <= a * PERIOD * PERIOD + 1e-12  # from rest again


def test_no_time_means_no_motion():
    f = WristFilter(WristLimits(), PERIOD)
    f(pose())
    out, ev = f(pose((0.1, 0, 0), angle_z=0.3), dt_s=0.0)
    np.testing.assert_allclose(out, np.eye(4), atol=1e-12)
    assert ev.count("wrist_rate_limited") == 2
