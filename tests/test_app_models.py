"""The app's Qt-free models: live-setting specs, tick history, runner, persisted settings."""

import dataclasses
import json
import time

import numpy as np
import pytest

from controllers.base import CONTROLLERS, LiveSetting, live
from controllers.retarget import RetargetController, RetargetControllerConfig
from teleop_app.app_settings import (
    AppSettings,
    controller_options,
    load_settings,
    save_settings,
    session_config,
)
from teleop_app.history import TickHistory
from teleop_app.runner import SessionRunner
from teleop_app.session import Session, SessionConfig


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEXTELEOP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# -- live settings ------------------------------------------------------------------------
def test_live_settings_come_from_the_config_fields():
    specs = RetargetController.setting_specs()
    assert [s.name for s in specs] == ["smoothing"]
    (s,) = specs
    assert (s.kind, s.low, s.high, s.plot) == ("float", 0.0, 0.95, True)
    assert RetargetController.live_settings() == ("smoothing",)


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        (
            LiveSetting("g", "float", low=0, high=10),
            [0, 2.5, 10],
            [-0.1, 10.5, float("nan"), "1", True],
        ),
        (LiveSetting("n", "int", low=1, high=20), [1, 20, 8.0], [0, 21, 2.5, "3"]),
        (LiveSetting("b", "bool"), [True, False], [0, 1, "yes"]),
        (LiveSetting("m", "choice", choices=("a", "b")), ["a", "b"], ["c", 1]),
        (LiveSetting("x", "axis", choices=("+x", "-x")), ["+x"], ["x", "+y"]),
        (LiveSetting("t", "text"), ["", "def cost(x): ..."], [3, None]),
    ],
)
def test_live_setting_check(spec, good, bad):
    for v in good:
        spec.check(v)
    for v in bad:
        with pytest.raises(ValueError, match=spec.name):
            spec.check(v)


def test_update_is_all_or_nothing_and_the_axis_kind_gets_six_axes():
    @dataclasses.dataclass
    class Cfg(RetargetControllerConfig):
        axis: str = live("+z", "axis")
        steps: int = live(10, "int", low=8, high=12)

    class C(RetargetController):
        Config = Cfg

    c = C(Cfg())
    axis = next(s for s in C.setting_specs() if s.name == "axis")
    assert axis.choices == ("+x", "-x", "+y", "-y", "+z", "-z", "free")
    with pytest.raises(ValueError, match="steps"):
        c.update(axis="-x", steps=13)
    assert c.config.axis == "+z" and c.config.steps == 10  # nothing applied
    c.update(axis="free", steps=9.0)
    assert c.config.axis == "free" and c.config.steps == 9 and isinstance(c.config.steps, int)


def test_smoothing_slows_the_retarget_controller():
    from devices.tick import Command

    c = RetargetController(RetargetControllerConfig())
    session = Session(SessionConfig(fast=True))
    with session:
        state = session.robot.read()
    c.reset(state)
    goal = state.target + 0.3
    cmd = Command(t=0.0, seq=0, keypoints=np.zeros((8, 3)), joints=goal)
    t0, _ = c.step(state, cmd)
    np.testing.assert_allclose(t0, goal)  # pass-through by default
    c.update(smoothing=0.5)
    c.reset(state)
    t1, _ = c.step(state, cmd)
    np.testing.assert_allclose(t1, 0.5 * state.target + 0.5 * goal)


# -- history ------------------------------------------------------------------------------
def test_history_keeps_the_last_ticks_in_order_and_measures_intervention():
    session = Session(SessionConfig(fast=True))
    hist = TickHistory(16, capacity=50, missed_deadlines=lambda: session.metrics.missed_deadlines)
    records = []
    session.subscribe(hist)
    session.subscribe(records.append)
    with session:
        session.run(ticks=80)
    v = hist.view()
    assert len(v) == 50
    np.testing.assert_array_equal(v.tick, np.arange(30, 80))
    assert np.all(np.diff(v.t) > 0)
    last = records[-1]
    np.testing.assert_array_equal(v.sent[-1], last.sent)
    np.testing.assert_array_equal(v.measured[-1], last.state.q)
    np.testing.assert_allclose(v.commanded[-1], last.command.keypoints)
    # intervention = hand keypoints now vs the command of the previous tick (mm)
    expect = 1e3 * np.linalg.norm(last.state.keypoints - records[-2].command.keypoints, axis=1)
    assert v.intervention_mm[-1] == pytest.approx(expect.mean())
    assert v.settings["smoothing"][-1] == 0.0
    assert set(v.latency_ms) >= {"retarget", "tick"}
    assert hist.view(last=5).tick.tolist() == list(range(75, 80))
    assert v.rate_hz() == pytest.approx(20.0, rel=1e-6)  # virtual clock: exactly 20 Hz


# -- runner -------------------------------------------------------------------------------
def test_runner_runs_the_loop_on_its_own_thread_and_keeps_estop_across_reconnects():
    runner = SessionRunner()
    config = SessionConfig(robot_options={"object": "cube"})
    session = runner.connect(config)
    try:
        deadline = time.monotonic() + 10
        while runner.scene() is None or runner.scene().tick < 5:
            assert time.monotonic() < deadline and runner.state == "running", runner.error
            time.sleep(0.02)
        scene = runner.scene()
        assert scene.sim_state is not None and scene.sim_state.size > 16
        assert runner.device_status().connected
        runner.set_estop(True).result(timeout=2)
        assert session.estop
        second = runner.connect(config)  # reconnect: a new session, still stopped
        assert second is not session and not session.robot.connected
        deadline = time.monotonic() + 10
        while not second.estop:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        runner.set_estop(False).result(timeout=2)
    finally:
        runner.disconnect()
    assert runner.state == "stopped" and runner.session is None
    assert runner.last_report["ticks"] > 0
    # pressed with nothing running: remembered, and the next session starts stopped
    assert runner.set_estop(True).result(timeout=0) is None and runner.estop
    third = runner.connect(config)
    try:
        deadline = time.monotonic() + 10
        while not third.estop:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        runner.close()
    assert not third.robot.connected
    with pytest.raises(RuntimeError, match="closing"):
        runner.connect(config)


def test_runner_reports_a_failed_connect():
    runner = SessionRunner()
    with pytest.raises(Exception, match="no_such_hand"):
        runner.connect(SessionConfig(hand="no_such_hand"))
    assert runner.state == "error" and "no_such_hand" in runner.error
    future = runner.connect_async(SessionConfig(device="no_such_device"))
    assert "no_such_device" in str(future.exception(timeout=10))


# -- persisted settings -------------------------------------------------------------------
def test_settings_round_trip(home):
    s = AppSettings(hand="allegro", object="sphere", task="rotate", operator="ann")
    s.controller_settings["retarget"] = {"smoothing": 0.3}
    save_settings(s)
    back, msg = load_settings()
    assert back == s and msg == ""


def test_damaged_settings_are_set_aside_not_fatal(home):
    home.mkdir(parents=True)
    (home / "app.json").write_text("{not json")
    s, msg = load_settings()
    assert s == AppSettings() and "using defaults" in msg
    assert (home / "app.json.bad").exists()
    (home / "app.json").write_text(json.dumps({"hand": 3, "object": "cylinder", "bogus": 1}))
    s, msg = load_settings()
    assert s.hand == "leap" and s.object == "cylinder" and msg == ""


def test_saved_controller_settings_are_checked_against_the_specs():
    s = AppSettings()
    s.controller_settings["retarget"] = {"smoothing": 5.0, "gone": 1}
    assert controller_options(s, "retarget") == {}
    s.controller_settings["retarget"] = {"smoothing": 0.2}
    assert controller_options(s, "retarget") == {"smoothing": 0.2}
    assert controller_options(s, "not_registered") == {}


def test_session_config_from_settings(home):
    from teleop_app.profiles import OperatorProfile, ProfileError, save_profile

    save_profile(OperatorProfile("ann", scale=1.1))
    s = AppSettings(device="replay:speed=2", object="none", wrist="palm_down", operator="ann")
    c = session_config(s)
    assert c.device == "replay" and c.device_options == {"speed": 2.0}
    assert "object" not in c.robot_options and c.robot_options["wrist"] == "palm_down"
    assert c.retarget.scale == pytest.approx(1.1)
    with pytest.raises(ProfileError):
        session_config(AppSettings(operator="nobody"))
    assert "retarget" in CONTROLLERS


def test_collecting_frames_ends_with_the_session():
    runner = SessionRunner()
    runner.connect(SessionConfig())
    try:
        done = runner.collect_frames(0.5)
        frames = done.result(timeout=10)
        assert len(frames) >= 5 and all(f.seq is not None for f in frames)
        cut = runner.collect_frames(60.0)
    finally:
        runner.disconnect()
    with pytest.raises(RuntimeError, match="stopped"):
        cut.result(timeout=1)
