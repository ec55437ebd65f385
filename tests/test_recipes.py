"""ARCHITECTURE.md's recipes, done from this module: a toy input device, controller, hand
backend, arm backend and training task, each one class plus one registration, driven
through a real session tick (and a recording, and the 3D view) or a real environment
step."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from assets import CLIPS_DIR
from assets.hands import load_hand
from controllers.base import CONTROLLERS, Controller, ControllerConfig, live
from devices.arms.base import ARMS, Arm, ArmLimitsConfig, ArmState
from devices.clock import SimClock
from devices.inputs.base import DEVICES, Device
from devices.inputs.clips import load_clip
from devices.robots.base import ROBOTS, Robot
from devices.tick import Command, HandState, HumanFrame
from teleop_app.session import Session, SessionConfig

# -- recipe 1: an input device -------------------------------------------------------------


@dataclass
class ToyDeviceConfig:
    path: str = str(CLIPS_DIR / "open_close.npz")


class ToyDevice(Device):
    """Replays a clip, one frame per read (a real device publishes from its own thread)."""

    Config = ToyDeviceConfig

    def __init__(self, config: ToyDeviceConfig) -> None:
        super().__init__()
        self.clip = load_clip(config.path)
        self.i = 0

    def _start(self) -> None:
        self.i = 0

    def _stop(self) -> None:
        pass

    def latest(self) -> HumanFrame | None:
        k = self.i % len(self.clip)
        self.i += 1
        self._publish(HumanFrame(self.clip.keypoints[k], self.clip.wrist[k], self.clock.now(), k))
        return super().latest()


# -- recipe 2: a controller ----------------------------------------------------------------


@dataclass
class ToyControllerConfig(ControllerConfig):
    gain: float = live(0.5, "float", label="gain", low=0.0, high=1.0)


class ToyController(Controller):
    """Moves part of the way from the measured joints to the retargeted ones."""

    Config = ToyControllerConfig
    command_fields = frozenset({"joints"})

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict]:
        if command.joints is None:
            return state.target.copy(), {"holding": 1.0}
        g = self.config.gain
        return (1 - g) * state.q + g * np.asarray(command.joints), {"gain": g}


# -- recipe 3: a hand backend --------------------------------------------------------------


@dataclass
class ToyHandConfig:
    hand: str = "leap"
    rate_hz: float = 20.0
    lag: float = 0.5


class ToyHand(Robot):
    """A hand without a simulator: each joint moves ``1 - lag`` of the way to its target
    per tick (a first-order servo), its keypoints from the hand spec's kinematics. It moves
    no hardware, so it may run on a virtual clock (a real backend keeps the default True)."""

    Config = ToyHandConfig
    drives_hardware = False

    def __init__(self, config: ToyHandConfig) -> None:
        super().__init__(load_hand(config.hand), config.rate_hz)
        self.config = config
        self.q = self.hand.default_open.copy()
        self.target = self.q.copy()
        self.t = 0.0
        self.written: list[np.ndarray] = []

    def _read(self) -> HandState:
        return HandState(
            t=self.t,
            q=self.q.copy(),
            dq=np.zeros_like(self.q),
            target=self.target.copy(),
            keypoints=self.hand.keypoints(self.q),
            wrist=np.eye(4),
        )

    def _write(self, target: np.ndarray) -> None:
        self.written.append(target.copy())
        self.target = target.copy()
        self.q = self.config.lag * self.q + (1 - self.config.lag) * target
        self.t += 1.0 / self.rate_hz


@pytest.fixture
def toys():
    DEVICES.register("toy_device")(ToyDevice)
    CONTROLLERS.register("toy_controller")(ToyController)
    ROBOTS.register("toy_hand")(ToyHand)
    yield
    DEVICES.unregister("toy_device")
    CONTROLLERS.unregister("toy_controller")
    ROBOTS.unregister("toy_hand")


def toy_session(**kw) -> Session:
    config = SessionConfig(
        robot="toy_hand", device="toy_device", controller="toy_controller", fast=True, **kw
    )
    return Session(config, clock=SimClock())


def run_ticks(session: Session, n: int) -> list:
    """``n`` ticks on the session's virtual clock (as ``Session.run`` paces them)."""
    records: list = []
    listener = records.append
    session.subscribe(listener)
    session.run(ticks=n)
    session.unsubscribe(listener)
    return records


def test_toy_device_controller_and_backend_drive_a_session(toys):
    session = toy_session()
    with session:
        records = run_ticks(session, 30)
    robot = session.robot
    assert isinstance(robot, ToyHand) and len(robot.written) == 30
    moving = [r for r in records if r.target is not None]
    assert len(moving) >= 25 and all(r.info.get("gain") == 0.5 for r in moving)
    assert records[-1].sim_state is None  # not a simulated backend
    # every write passed the safety filter: inside the limits, within the rate limit
    sent = np.array(robot.written)
    assert np.all(sent >= robot.hand.lower - 1e-12) and np.all(sent <= robot.hand.upper + 1e-12)
    step = np.abs(np.diff(sent, axis=0)).max()
    assert step <= robot.hand.spec.max_joint_speed_rad_s / 20.0 + 1e-9
    assert np.abs(sent[-1] - sent[0]).max() > 0.05  # the hand followed the operator
    rep = session.report()
    assert rep["ticks"] == 30 and rep["limit_violations"] == 0
    assert rep["config"]["robot"] == "toy_hand"


def test_toy_controller_settings_are_checked_and_live(toys):
    with pytest.raises(ValueError, match="gain"):
        CONTROLLERS.make("toy_controller", hand="leap").update(gain=2.0)
    session = toy_session()
    with session:
        run_ticks(session, 1)
        session.update_controller(gain=0.9)
        rec = run_ticks(session, 3)[-1]
    assert rec.settings["gain"] == 0.9


def test_toy_backend_records_and_is_listed(toys, tmp_path):
    """A backend without a simulator records like any other (no simulator state column)."""
    from teleop_app.recording.reader import RecordedDataset
    from teleop_app.recording.recorder import Recorder

    session = toy_session()
    rec = Recorder.for_session(tmp_path / "ds", session)
    session.subscribe(rec)
    with session:
        rec.start("toy").result(timeout=10)
        session.run(ticks=20)
        assert rec.stop().result(timeout=30) == 0
    rec.close()
    ds = RecordedDataset(tmp_path / "ds")
    assert ds.num_episodes == 1 and ds.episodes[0]["length"] == 20 and ds.validate() == []
    assert "sim.state" not in ds.features
    assert "toy_hand" in ROBOTS.names() and ROBOTS.get("toy_hand").availability() is None


def test_the_3d_view_draws_a_backend_without_simulator(toys):
    """The 3D view renders any backend from its measured joints."""
    from teleop_app.runner import SceneFrame
    from teleop_app.ui.scene_view import SceneRenderer

    session = toy_session()
    with session:
        records = run_ticks(session, 10)

    class Runner:
        def scene(self):
            r = records[-1]
            return SceneFrame(session.robot, r.tick, r.state.q, None, None)

    renderer = SceneRenderer(Runner(), width=160, height=120)  # type: ignore[arg-type]
    renderer.start()
    try:
        import time

        deadline = time.monotonic() + 20
        while renderer.image()[0] is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        renderer.stop()
    image, _ = renderer.image()
    assert image is not None, renderer.message
    assert image.shape == (120, 160, 3) and image.std() > 5  # a hand, not a blank frame


class ToyRealHand(ToyHand):
    """The same, declared as driving real hardware (the default for a backend)."""

    drives_hardware = True


def test_a_hardware_backend_never_runs_on_a_virtual_clock(toys, tmp_path):
    """--fast (and counterfactual replay, which runs fast) would let real joints move at any
    speed: refused; a replay of a recording made on real hardware runs on the simulator."""
    from teleop_app.cli import main
    from teleop_app.recording.replay import _replay_robot

    ROBOTS.register("toy_real_hand")(ToyRealHand)
    try:
        with pytest.raises(ValueError, match="real time only"):
            Session(
                SessionConfig(robot="toy_real_hand", device="toy_device", fast=True),
                clock=SimClock(),
            )
        real = Session(SessionConfig(robot="toy_real_hand", device="toy_device"))
        assert real.robot.drives_hardware  # real time: allowed
        name, _ = _replay_robot({"robot": "toy_real_hand", "robot_options": {}}, None)
        assert name == "sim"
        assert _replay_robot({"robot": "sim", "robot_options": {"wrist": "follow"}}, None) == (
            "sim",
            {"wrist": "follow"},
        )
        # --video renders a simulator's states: refused up front for other backends
        args = ["run", "--robot", "toy_hand", "--device", "toy_device", "--duration", "1"]
        assert main([*args, "--fast", "--video", str(tmp_path / "v.mp4")]) == 2
    finally:
        ROBOTS.unregister("toy_real_hand")


# -- recipe 4: an arm backend ---------------------------------------------------------------


@dataclass
class ToyArmConfig(ArmLimitsConfig):
    rate_hz: float = 20.0


class ToyArm(Arm):
    """An arm that puts the palm wherever it is told, one tick later (kinematic)."""

    Config = ToyArmConfig
    drives_hardware = False

    def __init__(self, config: ToyArmConfig) -> None:
        from assets.arms import PANDA

        super().__init__(PANDA, config.rate_hz, config)
        self.palm = np.eye(4)
        self.palm[:3, 3] = [0.3, 0.0, 0.4]
        self.written: list[np.ndarray] = []

    def _read(self) -> ArmState:
        return ArmState(0.0, np.zeros(7), np.zeros(7), self.palm.copy(), mode="toy")

    def _write_palm(self, target: np.ndarray) -> None:
        self.written.append(target.copy())
        self.palm = target.copy()


def test_toy_arm_carries_the_hand_in_a_session(toys, tmp_path):
    """The toy arm, registered from here, follows the operator's wrist in a session within
    its box, and the toy hand (a real hand's stand-in) reads its wrist from the arm."""
    ARMS.register("toy_arm")(ToyArm)
    try:
        session = toy_session(arm="toy_arm", arm_options={"max_speed_m_s": 0.2})
        with session:
            records = run_ticks(session, 30)
        arm = session.arm
        assert isinstance(arm, ToyArm) and len(arm.written) >= 25
        steps = np.linalg.norm(np.diff([w[:3, 3] for w in arm.written], axis=0), axis=1)
        assert steps.max() <= 0.2 / 20 + 1e-9
        assert np.allclose(records[-1].state.wrist, records[-1].arm.palm)  # from the arm
        rep = session.report()["arm"]
        assert rep["backend"] == "toy_arm" and rep["workspace_violations"] == 0
        # the app's 3D view draws the hand on the arm, from both measured joint sets
        from teleop_app.runner import SessionRunner

        runner = SessionRunner()
        runner.session = session
        runner._keep_scene(session, records[-1])
        frame = runner.scene()
        assert frame.arm == "panda" and np.array_equal(frame.arm_q, records[-1].arm.q)
    finally:
        ARMS.unregister("toy_arm")


# -- recipe 5: a training task -------------------------------------------------------------


def test_toy_training_task_steps(monkeypatch):
    """A task is a HandEnv subclass and one entry in training.envs.TASKS."""
    import training.envs as envs

    monkeypatch.setitem(envs.TASKS, "toy_open", ("test_recipes", "ToyEnv", "ToyEnvConfig"))
    env = envs.make_env("toy_open", num_envs=3, nthread=1, episode_s=0.5)
    obs, _ = env.reset()
    import torch

    actions = torch.zeros(3, env.num_actions)
    obs, reward, _done, _extras = env.step(actions)
    assert reward.shape == (3,) and torch.isfinite(reward).all()
    assert obs["policy"].shape[0] == 3


def _toy_env_classes():
    from training.envs.base import EnvConfig, HandEnv

    @dataclass
    class ToyEnvConfig(EnvConfig):
        """Keep the hand open."""

    class ToyEnv(HandEnv):
        name = "toy_open"

        def _scene(self):
            return self.scene()

        def _reset_task(self, ids):
            qpos, ctrl = self.backend.state("qpos"), self.backend.state("ctrl")
            for w in ids:
                qpos[w, self.qadr] = self.hand.default_open
                ctrl[w, self.act] = self.hand.default_open

        def reference_targets(self):
            return np.tile(self.hand.default_open, (self.num_envs, 1))

        def _task_obs(self):
            return np.zeros((self.num_envs, 1)), np.zeros((self.num_envs, 1))

        def _reward(self):
            err = np.abs(self.q - self.hand.default_open).mean(axis=1)
            return -err, np.zeros(self.num_envs, dtype=bool), {"open_error": err}

    return ToyEnvConfig, ToyEnv


def __getattr__(name: str):  # the task's classes, built on first use (torch, mujoco)
    if name in ("ToyEnv", "ToyEnvConfig"):
        cfg, env = _toy_env_classes()
        globals().update(ToyEnvConfig=cfg, ToyEnv=env)
        return globals()[name]
    raise AttributeError(name)


assert dataclasses  # used by the dataclass decorator above
