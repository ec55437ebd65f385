"""The app's Qt-free models: live-setting specs, tick history, runner, persisted settings,
and what the panels show and decide (teleop_app.app_models)."""

import dataclasses
import json
import time
from concurrent.futures import Future
from types import SimpleNamespace

import numpy as np
import pytest

from controllers.base import CONTROLLERS, LiveSetting, live
from controllers.retarget import RetargetController, RetargetControllerConfig
from devices.robots import ROBOTS
from teleop_app import app_models
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
        (LiveSetting("t", "text"), ["", "def cost(x): ..."], [3, None]),
    ],
)
def test_live_setting_check(spec, good, bad):
    for v in good:
        spec.check(v)
    for v in bad:
        with pytest.raises(ValueError, match=spec.name):
            spec.check(v)


def test_update_is_all_or_nothing():
    @dataclasses.dataclass
    class Cfg(RetargetControllerConfig):
        mode: str = live("a", "choice", choices=("a", "b"))
        steps: int = live(10, "int", low=8, high=12)

    class C(RetargetController):
        Config = Cfg

    c = C(Cfg())
    with pytest.raises(ValueError, match="steps"):
        c.update(mode="b", steps=13)
    assert c.config.mode == "a" and c.config.steps == 10  # nothing applied
    c.update(mode="b", steps=9.0)
    assert c.config.mode == "b" and c.config.steps == 9 and isinstance(c.config.steps, int)


def test_the_axis_is_not_a_setting_kind():
    """A rotation axis arrives in Command.axis (controllers list it in command_fields)."""
    with pytest.raises(ValueError, match="kind"):
        LiveSetting("x", "axis", choices=("+x",))
    with pytest.raises(ValueError, match="kind"):
        live("+x", "axis")


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
    s.robot = "dynamixel:port=/dev/ttyUSB0"
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
    assert AppSettings().robot == "sim" and c.robot == "sim"
    with pytest.raises(ProfileError):
        session_config(AppSettings(operator="nobody"))
    with pytest.raises(Exception, match="no_such_robot"):
        session_config(AppSettings(robot="no_such_robot"))
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


# -- what the panels show and decide ------------------------------------------------------
@dataclasses.dataclass
class _NoConfig:
    pass


class _Unplugged:
    """A hand backend that cannot be used here."""

    Config = _NoConfig

    @classmethod
    def availability(cls):
        return "no USB adapter found"


class _Unprobed:
    """A backend written before backends declared their availability."""

    Config = _NoConfig


class _BrokenProbe:
    Config = _NoConfig

    @classmethod
    def availability(cls):
        raise RuntimeError("driver crashed")


@pytest.fixture
def test_robots():
    names = {"unplugged_test": _Unplugged, "unprobed_test": _Unprobed, "broken_test": _BrokenProbe}
    for name, cls in names.items():
        ROBOTS.register(name)(cls)
    yield
    for name in names:
        ROBOTS._classes.pop(name, None)


def test_robot_choices_say_why_a_backend_cannot_be_used(test_robots):
    choices = {c.name: c for c in app_models.robot_choices()}
    assert list(choices) == ROBOTS.names()
    assert choices["sim"].available and choices["sim"].tooltip == "available"
    assert choices["unprobed_test"].available  # no availability(): counts as available
    assert choices["unplugged_test"].reason == "no USB adapter found"
    assert not choices["unplugged_test"].available
    assert choices["broken_test"].reason == "RuntimeError: driver crashed"
    assert app_models.spec_name(" dynamixel:port=/dev/ttyUSB0") == "dynamixel"
    assert {c.name for c in app_models.device_choices()} >= {"replay"}
    assert "retarget" in {c.name for c in app_models.controller_choices("leap") if c.available}


def test_connect_settings_apply_the_choices_to_a_copy(test_robots):
    s = AppSettings(controller="not_registered")
    out, note = app_models.connect_settings(s, {"hand": "allegro", "robot": "sim"})
    assert out.hand == "allegro" and s.hand == "leap"  # a copy: saved once it connected
    assert out.controller == "retarget" and s.controller == "not_registered"
    assert note == "controller not_registered unavailable (not registered); using retarget"
    out, note = app_models.connect_settings(AppSettings(), {"robot": "sim"})
    assert note == "" and out.controller == "retarget"
    with pytest.raises(ValueError, match="robot unplugged_test is unavailable: no USB adapter"):
        app_models.connect_settings(AppSettings(), {"robot": "unplugged_test:port=/dev/x"})


class _FakeControl:
    """A RecordingControl stand-in: futures the test finishes by hand."""

    def __init__(self):
        self.recorder = None
        self.state = "idle"
        self.refuse = None

    def start(self, root, task, operator):
        if self.refuse:
            raise RuntimeError(self.refuse)
        self.recorder, self.state = object(), "recording"
        self.future = Future()
        return self.future

    def stop(self):
        self.future = Future()
        return self.future

    discard = stop

    @property
    def recording(self):
        return self.state == "recording"

    def status(self):
        if self.recorder is None:
            return {"state": "idle", "episodes": None, "frames": 0, "bytes": 0, "message": ""}
        msg = "the disk is full" if self.state == "failed" else ""
        return {"state": self.state, "episodes": 1, "frames": 12, "bytes": 2.5e6, "message": msg}


def test_recording_model_buttons_messages_and_counts():
    control, runner = _FakeControl(), SimpleNamespace(running=False)
    m = app_models.RecordingModel(control, runner)
    assert m.buttons() == app_models.RecordingButtons(False, False, False, True)
    runner.running = True
    m.poll()
    assert m.buttons().start and m.counts == "episodes: -" and m.message == ""
    control.refuse = "connect a device and a hand first"
    m.start("/tmp/demos", "spin", "")
    assert (m.message, m.error) == ("cannot record: connect a device and a hand first", True)
    control.refuse = None
    m.start("/tmp/demos", "spin", "")
    assert m.buttons() == app_models.RecordingButtons(False, False, False, False)  # busy
    control.future.set_result(3)
    m.poll()
    assert (m.message, m.error) == ("recording episode 3", False)
    assert m.buttons() == app_models.RecordingButtons(False, True, True, False)
    assert m.counts == "episodes: 1   recording: 12 frames, 2.50 MB"
    m.stop()
    assert m.message == "saving the episode..." and not m.buttons().stop
    control.state = "idle"
    control.future.set_result(3)
    m.poll()
    assert m.message == "saved episode 3" and m.buttons().start and m.counts == "episodes: 1"
    control.state = "failed"
    m.poll()
    assert (m.message, m.error) == ("the disk is full", True)


def test_calibration_refuses_bad_names_and_ends_when_no_ticks_come(home):
    runner = SimpleNamespace(collect_frames=lambda seconds: Future())
    cal = app_models.Calibration(runner, seconds=3.0, grace_s=5.0)
    with pytest.raises(ValueError, match="type an operator id first"):
        cal.start(app_models.NO_OPERATOR)
    from teleop_app.profiles import ProfileError

    with pytest.raises(ProfileError, match="bad name!"):
        cal.start("bad name!")
    assert not cal.running and cal.poll() is None
    cal.start("ann")
    now = time.monotonic()
    assert cal.running and cal.poll(now) is None
    done = cal.poll(now + 9.0)  # past 3 s + 5 s of grace: the session sent nothing
    assert done == app_models.CalibrationResult("ann", error="the session stopped or sent no ticks")
    assert not cal.running
    assert app_models.calibration_text("") == ("none (scale 1.0); run 'dexteleop calibrate'", False)
    text, problem = app_models.calibration_text("nobody")
    assert problem and "nobody" in text


def test_status_texts():
    from devices.inputs.base import DeviceStatus

    assert app_models.device_texts(None) == ("not connected", "device: not connected")
    st = DeviceStatus(connected=True, rate_hz=30.2, frame_age_s=0.012, frames=90, errors=0)
    panel, bar = app_models.device_texts(st)
    assert "connected</span>, 30 Hz, frame age 12 ms, 90 frames" in panel
    assert bar == "device connected, 30 Hz, frame age 12 ms, 90 frames"
    st = DeviceStatus(False, 0.0, None, 90, 2, message="cable")
    panel, bar = app_models.device_texts(st)
    assert "disconnected" in panel and panel.endswith("2 rejected<br>cable")
    assert bar.startswith("device DISCONNECTED")
    assert app_models.safety_text({}) == "safety events 0"
    counts = {"rate": 5, "limit": 9, "stale_input": 1, "nan": 2}
    assert app_models.safety_text(counts) == "safety events 17 (limit 9, rate 5, nan 2)"
    snap = SimpleNamespace(target=None, events=("switching_controller",))
    runner = SimpleNamespace(state="running", error="", estop=False, snapshot=lambda: snap)
    assert app_models.state_text(runner, recording=False) == (
        "running (holding: switching_controller)"
    )
    runner.estop = True
    assert "● REC" in app_models.state_text(runner, recording=True)
    runner.state, runner.error = "error", "hand unplugged"
    assert "error: hand unplugged" in app_models.state_text(runner, recording=False)


def test_the_settings_plot_range_is_shared_or_automatic():
    a = LiveSetting("a", "float", low=0.0, high=10.0, plot=True)
    b = LiveSetting("b", "int", low=0, high=10, plot=True)
    c = LiveSetting("c", "float", low=0.0, high=1.0, plot=True)
    hidden = LiveSetting("d", "float", low=-5.0, high=5.0)
    assert app_models.setting_range([a, b, hidden]) == (0.0, 10.0)
    assert app_models.setting_range([a, c]) == (None, None)
    assert app_models.plotted_settings([a, hidden, c]) == ("a", "c")
