"""The actuator model and solver settings (``assets.physics``): applied in every scene the
project builds, the control period a whole number of steps, checkpoints on other physics
reported."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from assets.hands import HAND_SPECS, load_hand
from assets.physics import (
    BASELINE_PHYSICS,
    DEFAULT_PHYSICS,
    PHYSICS_NAMES,
    SERVO_PHYSICS,
    ActuatorModel,
    Param,
    differences,
    model_values,
    substeps,
)

HANDS = sorted(HAND_SPECS)


def _expected(hand_name: str) -> dict[str, np.ndarray]:
    spec = HAND_SPECS[hand_name]
    return spec.actuators.arrays(len(spec.joint_names))


def _check_model(model, hand_name: str, prefix: str, where: str) -> None:
    """The compiled ``model`` carries the hand's actuator model and solver settings."""
    hand = load_hand(hand_name)
    jids = [model.joint(prefix + j).id for j in hand.joint_names]
    got = model_values(model, jids)
    for name, want in _expected(hand_name).items():
        np.testing.assert_allclose(got[name], want, rtol=1e-12, err_msg=f"{where}: {name}")
    solver = hand.spec.solver
    assert got["timestep_s"] == solver.timestep_s, where
    assert got["integrator"] == solver.integrator, where


@pytest.mark.parametrize("hand_name", HANDS)
def test_every_scene_runs_the_actuator_model(hand_name, tmp_path):
    """The app's simulated hand, the RL environments, grasp generation and MoDex's
    exploration hand all build their models through assets.physics.apply."""
    from assets.objects import make_instance
    from controllers.modex.hand import exploration_hand
    from devices.robots.sim import SimHand, SimHandConfig
    from training.envs import make_env
    from training.grasps.generate import GraspGenerator

    hand = load_hand(hand_name)
    app = SimHand(SimHandConfig(hand=hand_name, object="cube", physics_model=SERVO_PHYSICS))
    _check_model(app.model, hand_name, "hand/", "app")
    from training.envs.base import Randomization

    # gains are randomised per episode (around the model's): compare without randomisation
    env = make_env("free_finger", hand=hand_name, num_envs=2, nthread=1,
                   dr=Randomization(enabled=False), physics_model=SERVO_PHYSICS)  # fmt: skip
    _check_model(env.model, hand_name, "hand/", "env")
    # and every world of the batch, not only the template model
    wm, _ = env.backend.world(1)
    _check_model(wm, hand_name, "hand/", "env world 1")
    gen = GraspGenerator(hand, make_instance("cube", 1.0), physics=SERVO_PHYSICS)
    _check_model(gen.model, hand_name, "hand/", "grasps")
    xhand = exploration_hand(hand_name, SERVO_PHYSICS)
    _check_model(xhand.model, hand_name, "", "modex")
    # what each records for trained models agrees
    assert not differences(env.physics(), app.physics())
    assert not differences(xhand.physics(), app.physics())
    # and without being told, every scene runs the default physics
    plain = SimHand(SimHandConfig(hand=hand_name)).physics()
    assert plain["name"] == DEFAULT_PHYSICS
    assert not differences(make_env("free_finger", hand=hand_name, num_envs=1, nthread=1,
                                    dr=Randomization(enabled=False)).physics(), plain)  # fmt: skip
    assert not differences(exploration_hand(hand_name).physics(), plain)
    m = GraspGenerator(hand, make_instance("cube", 1.0)).model
    jids = [m.joint("hand/" + j).id for j in hand.joint_names]
    assert not differences(hand.physics().describe(m, jids, substeps=plain["substeps"]), plain)


@pytest.mark.parametrize("hand_name", HANDS)
def test_baseline_physics_is_the_menagerie_model(hand_name):
    import mujoco_menagerie

    spec = HAND_SPECS[hand_name]
    raw = mujoco_menagerie.get(spec.menagerie).spec(spec.entry).compile()
    ours = load_hand(hand_name).mjspec(BASELINE_PHYSICS).compile()
    jids = [raw.joint(j).id for j in spec.joint_names]
    assert model_values(raw, jids) == model_values(ours, jids)


@pytest.mark.parametrize("hand_name", HANDS)
def test_the_control_period_is_a_whole_number_of_steps(hand_name):
    from devices.robots.sim import SimHand, SimHandConfig

    for name in (SERVO_PHYSICS, BASELINE_PHYSICS):
        app = SimHand(SimHandConfig(hand=hand_name, physics_model=name))
        assert app.substeps * app.model.opt.timestep == pytest.approx(0.05, rel=1e-9)
    assert substeps(20.0, HAND_SPECS[hand_name].solver.timestep_s) == 5
    with pytest.raises(ValueError, match="whole number"):
        substeps(20.0, 0.003)
    with pytest.raises(ValueError, match="whole number"):
        SimHand(SimHandConfig(hand=hand_name, timestep_s=0.003))


def test_actuator_model_values_have_sources_and_are_checked():
    for spec in HAND_SPECS.values():
        for name, source in spec.actuators.sources().items():
            assert len(source) > 20, (spec.name, name)
        assert spec.solver.source
    leap = HAND_SPECS["leap"].actuators
    bad = dataclasses.replace(leap, kp=Param((1.0, 2.0), "x"))
    with pytest.raises(ValueError, match="kp: expected one value or 16"):
        bad.arrays(16)
    with pytest.raises(ValueError, match="finite and >= 0"):
        dataclasses.replace(leap, damping=Param(-1.0, "x")).arrays(16)
    with pytest.raises(ValueError, match="positive"):
        dataclasses.replace(leap, torque_limit=Param(0.0, "x")).arrays(16)
    assert isinstance(leap, ActuatorModel)
    with pytest.raises(ValueError, match="unknown physics"):
        load_hand("leap").physics("mjx")


def test_the_torque_limit_bounds_the_actuator():
    """Pushing a joint's target far away yields at most the torque limit at the joint
    (MuJoCo clamps the actuators' force at the joint, ``actuatorfrcrange``)."""
    import mujoco

    from devices.robots.sim import SimHand, SimHandConfig

    app = SimHand(SimHandConfig(hand="leap", wrist="palm_up", physics_model=SERVO_PHYSICS))
    limit = _expected("leap")["torque_limit"]
    target = app.hand.default_open.copy()
    target[2] = app.hand.upper[2]  # a big step on if_pip
    app.data.ctrl[app._act] = target
    mujoco.mj_step(app.model, app.data)
    force = app.data.qfrc_actuator[app._vadr]
    assert abs(force[2]) == pytest.approx(limit[2], rel=1e-9)
    assert np.all(np.abs(force) <= limit + 1e-12)


def test_a_controller_trained_on_other_physics_says_so():
    """The shipped DexGen model was trained on the default physics: there the controller
    has nothing to say; on the other physics it reports the differences."""
    from controllers import CONTROLLERS
    from devices.robots.sim import SimHand, SimHandConfig

    ctrl = CONTROLLERS.make("dexgen", hand="leap")
    assert ctrl.trained_physics["name"] == DEFAULT_PHYSICS
    notes = {
        name: ctrl.check_physics(SimHand(SimHandConfig(hand="leap", physics_model=name)).physics())
        for name in PHYSICS_NAMES
    }
    assert notes[DEFAULT_PHYSICS] == ""
    for name, note in notes.items():
        if name != DEFAULT_PHYSICS:
            assert note.startswith("trained on other physics"), note
            assert f"-> {name}" in note or "kp" in note, note
    assert ctrl.check_physics(None) == ""  # a real hand: nothing to compare


def test_a_checkpoint_on_other_physics_is_kept_or_refused(tmp_path):
    """Loading for a controller keeps the differences; resuming training refuses them."""
    import torch

    from assets import checkpoint

    net = torch.nn.Linear(2, 2)
    trained = checkpoint.physics("leap", name="menagerie", timestep_s=0.002, kp=[3.0, 3.0])
    path = checkpoint.save(tmp_path / "m.pt", {"state": net.state_dict()}, format="t/1",
                           meta={"physics": trained})  # fmt: skip
    here = checkpoint.physics("leap", name="servo", timestep_s=0.01, kp=[3.0, 3.0])
    ck = checkpoint.load(path, format="t/1", what="test", physics=here, strict_physics=False)
    assert ck.physics_differences == ["name menagerie -> servo", "timestep_s 0.002 -> 0.01"]
    assert "trained on other physics (menagerie)" in ck.physics_note
    with pytest.raises(checkpoint.CheckpointError, match=r"other physics.*timestep_s"):
        checkpoint.load(path, format="t/1", what="test", physics=here)
    with pytest.raises(checkpoint.CheckpointError, match=r"other physics.*hand"):
        checkpoint.load(path, format="t/1", what="test", physics={"hand": "allegro"},
                        strict_physics=False)  # fmt: skip


def test_the_session_reports_a_controller_on_other_physics(caplog):
    """Logged once when the controller starts; every tick's info flags it."""
    import logging

    from teleop_app.configs import session_config
    from teleop_app.session import Session

    records = []
    for physics_model in (SERVO_PHYSICS, BASELINE_PHYSICS):
        cfg = session_config(hand="leap", device="replay", controller="dexgen", fast=True,
                             robot=f"sim:physics_model={physics_model}")  # fmt: skip
        caplog.clear()
        with caplog.at_level(logging.WARNING), Session(cfg) as session:
            session.subscribe(records.append)
            session.run(ticks=3)
            notice = session.controller.notice
        other = notice != ""
        logged = any("trained on other physics" in r.getMessage() for r in caplog.records)
        assert logged == other
        assert all(r.info.get("other_physics", 0.0) == float(other) for r in records[-3:])
        if physics_model == SERVO_PHYSICS:
            # the shipped model predates the actuator model, or records its physics
            trained = session.controller.trained_physics
            assert other == bool(differences(trained, session.robot.physics()))


def test_modex_exploration_runs_and_records_the_physics_asked_for():
    from training.modex.data import collect
    from training.modex.reach import ReachTask

    for name, dt in ((SERVO_PHYSICS, 0.01), (BASELINE_PHYSICS, 0.002)):
        data = collect("leap", "quasi-static", samples=4, seed=0, nthread=1, physics_model=name)
        recorded = data["manifest"]["physics"]
        assert recorded["name"] == name and recorded["timestep_s"] == dt
        assert ReachTask("leap", physics_model=name).hand.physics()["name"] == name
