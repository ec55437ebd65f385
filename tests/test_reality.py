"""The stand-in real hand (``--robot sim:dynamics=reality``) and the report's object meter."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from assets.hands import load_hand
from assets.rotations import axis_angle_quat, quat_mul
from devices.robots.base import ROBOTS
from devices.robots.reality import DEXNDM_KP, Backlash, reality_gap
from devices.robots.sim import SimHand, SimHandConfig
from teleop_app.metrics import ObjectMeter

ROOT = Path(__file__).resolve().parents[1]


def test_stand_in_differs_from_training_physics_as_documented():
    nominal = SimHand(SimHandConfig(hand="leap"))
    real = SimHand(SimHandConfig(hand="leap", dynamics="reality"))
    pn, pr = nominal.physics(), real.physics()
    assert pn["timestep_s"] == pytest.approx(0.01) and pr["timestep_s"] == pytest.approx(0.002)
    assert real.substeps == 25 and real.model.opt.impratio == pytest.approx(100.0)
    # Table 16's index finger (the first group) on our index finger, the thumb's (second
    # group) on our thumb
    assert pr["kp"][:4] == pytest.approx(DEXNDM_KP[:4])
    assert pr["kp"][12:16] == pytest.approx(DEXNDM_KP[4:8])
    assert set(np.round(pn["kp"], 6)) == {3.0}
    assert min(pr["frictionloss"]) >= 0.02 and max(pn["frictionloss"]) == pytest.approx(0.01)
    m = real.model
    assert m.body("hand/palm").mass[0] == pytest.approx(0.257)
    assert m.body("hand/th_bs").mass[0] == pytest.approx(0.003)
    rep = real.hand_report()
    assert rep["reality"]["seed"] == 0 and "reality" not in nominal.hand_report()


def test_stand_in_is_seeded():
    hand = load_hand("leap")
    a, b, c = reality_gap(hand, 0), reality_gap(hand, 0), reality_gap(hand, 1)
    assert a == b
    assert a.frictionloss != c.frictionloss and a.kp == c.kp  # the table is not drawn
    allegro = reality_gap(load_hand("allegro"), 0)
    assert allegro.kp != reality_gap(load_hand("allegro"), 1).kp


def test_robot_spec_selects_the_stand_in():
    robot = ROBOTS.make("sim", hand="leap", dynamics="reality", reality_seed=3)
    assert robot.reality is not None and robot.reality.seed == 3
    with pytest.raises(ValueError, match="unknown dynamics"):
        SimHand(SimHandConfig(hand="leap", dynamics="realty"))


def test_stand_in_target_takes_effect_one_step_late():
    real = SimHand(SimHandConfig(hand="leap", dynamics="reality"))
    nominal = SimHand(SimHandConfig(hand="leap"))
    j = 2  # if_pip: free to close from the open pose
    for robot in (real, nominal):
        q0 = robot.read().q
        target = q0.copy()
        target[j] += 0.2
        robot.send(target)
        moved_first = robot.read().q[j] - q0[j]
        robot.send(target)
        moved_second = robot.read().q[j] - q0[j]
        if robot is real:
            assert abs(moved_first) < 2e-3 and moved_second > 0.02
        else:
            assert moved_first > 0.02


def test_a_part_of_the_gap_set_back_to_the_nominal_physics():
    hand = load_hand("leap")
    nominal_physics = hand.physics()
    gap = reality_gap(hand, 0)
    g = gap.reverted("gains+latency", nominal_physics)
    assert set(g.kp) == {3.0} and set(g.kv) == {0.1} and g.latency_steps == 0
    # everything else is the stand-in's
    assert (g.frictionloss, g.backlash_rad, g.body_mass_kg, g.solver) == (
        gap.frictionloss,
        gap.backlash_rad,
        gap.body_mass_kg,
        gap.solver,
    )
    s = gap.reverted(("solver", "mass", "friction", "backlash", "kp"), nominal_physics)
    assert s.solver == nominal_physics.solver and s.body_mass_kg == {}
    assert set(s.frictionloss) == {0.01} and set(s.backlash_rad) == {0.0}
    assert set(s.kp) == {3.0} and s.kv == gap.kv and s.latency_steps == 1
    with pytest.raises(ValueError, match="unknown gap components"):
        gap.reverted("gains+latncy", nominal_physics)
    # through the robot spec: without its latency the target acts at once
    robot = ROBOTS.make("sim", hand="leap", dynamics="reality", reality_revert="latency")
    assert robot.reality.latency_steps == 0 and robot.physics()["kp"][:4] == pytest.approx(
        DEXNDM_KP[:4]
    )
    q0 = robot.read().q
    target = q0.copy()
    target[2] += 0.2
    robot.send(target)
    assert robot.read().q[2] - q0[2] > 0.02
    with pytest.raises(ValueError, match="reality_revert is for dynamics=reality"):
        SimHand(SimHandConfig(hand="leap", reality_revert="gains"))


def test_backlash_holds_within_the_play_and_lags_outside():
    b = Backlash(np.array([0.02]))
    b.reset(np.array([0.0]))
    assert b(np.array([0.009]))[0] == pytest.approx(0.0)  # inside the band: no motion
    assert b(np.array([0.05]))[0] == pytest.approx(0.04)  # dragged, lagging by half the play
    assert b(np.array([0.045]))[0] == pytest.approx(0.04)  # a reversal inside the play: lost
    assert b(np.array([0.0]))[0] == pytest.approx(0.01)


def test_no_trainer_or_controller_reads_the_stand_in():
    """Models learn about the stand-in hand only from data collected on it."""
    offenders = []
    for top in ("training", "controllers"):
        for path in (ROOT / top).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                if any("reality" in n for n in names):
                    offenders.append(str(path.relative_to(ROOT)))
                if isinstance(node, ast.Constant) and node.value == "reality":
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _state(t, quat_world, wrist_rot, dropped=False):
    wrist = np.eye(4)
    wrist[:3, :3] = wrist_rot
    return SimpleNamespace(
        t=t,
        object_pose=np.concatenate([np.zeros(3), quat_world]),
        wrist=wrist,
        object_dropped=dropped,
    )


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_object_meter_projects_the_turn_on_the_commanded_axis(sign):
    # the palm turned 90 deg about world x: palm z = world -y
    r = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    k_world = r @ np.array([0.0, 0.0, 1.0])
    meter = ObjectMeter()
    q = np.array([1.0, 0, 0, 0])
    step = axis_angle_quat(k_world, np.array(0.05))
    for i in range(21):
        meter.add(_state(0.05 * i, q, r), np.array([0.0, 0.0, sign]))
        q = quat_mul(step[None], q[None])[0]
    rep = meter.report()
    assert rep["rotation_about_command_axis_rad"] == pytest.approx(sign * 1.0, abs=1e-6)
    assert rep["off_axis_rad"] == pytest.approx(0.0, abs=1e-6)
    assert rep["dropped"] is False and rep["time_to_drop_s"] is None


def test_object_meter_counts_off_axis_and_stops_at_the_drop():
    meter = ObjectMeter()
    q = np.array([1.0, 0, 0, 0])
    step = axis_angle_quat(np.array([1.0, 0, 0]), np.array(0.1))  # about x; command is z
    for i in range(10):
        meter.add(_state(1.0 + 0.05 * i, q, np.eye(3), dropped=i >= 6), np.array([0, 0, 1.0]))
        q = quat_mul(step[None], q[None])[0]
    rep = meter.report()
    assert rep["rotation_about_command_axis_rad"] == pytest.approx(0.0, abs=1e-9)
    assert rep["off_axis_rad"] == pytest.approx(0.6, abs=1e-6)  # ticks 1..6; none after
    assert rep["dropped"] is True and rep["time_to_drop_s"] == pytest.approx(0.3)
    assert ObjectMeter().report() is None
