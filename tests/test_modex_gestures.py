"""Gestures: each built-in gesture, planned by MoDex through the learned quasi-static models
and executed on the simulated hand, ends at a lower cost than the open hand (LEAP and
Allegro); user cost files are checked before use."""

import mujoco
import numpy as np
import pytest
import torch

from controllers.modex.gestures import (
    GESTURES,
    CostFunctionError,
    gesture_cost,
    load_cost_file,
)
from controllers.modex.hand import exploration_hand, initial_state
from controllers.modex.planners import MoDexPlanner, quasi_static_predict
from training.modex.data import collect
from training.modex.train import TrainConfig, train_qs_forward, train_qs_inverse


def settle(h, action):
    """Run the action on the simulated hand from the reset for 0.5 s; the fingertips."""
    m = h.model
    d = mujoco.MjData(m)
    mujoco.mj_setState(m, d, initial_state(h), mujoco.mjtState.mjSTATE_FULLPHYSICS)
    d.ctrl[:] = action
    mujoco.mj_step(m, d, nstep=round(0.5 / m.opt.timestep))
    mujoco.mj_forward(m, d)
    return d.sensordata[h.tip_index].copy()


@pytest.mark.slow
@pytest.mark.parametrize("hand", ["leap", "allegro"])
def test_every_gesture_beats_the_open_hand_on_the_simulated_hand(hand):
    torch.set_num_threads(2)
    h = exploration_hand(hand)
    data = collect(hand, "quasi-static", samples=1500, seed=0)
    tc = TrainConfig(steps=800, hidden=(128, 128), seed=0)
    fwd, _ = train_qs_forward(data, tc)
    inv, _ = train_qs_inverse(data, tc)
    open_tips = settle(h, h.default_ctrl)

    def propose(s, target):
        return torch.as_tensor(h.default_ctrl, dtype=torch.float32), inv.sigma * 3

    planner = MoDexPlanner(h.ctrl_low, h.ctrl_high, propose, samples=300, iterations=6, seed=0)
    for name in GESTURES:
        cost = gesture_cost(name, h.fingers, open_tips.reshape(-1, 3))
        plan = planner.plan(None, None, quasi_static_predict(fwd), cost)
        tips = settle(h, plan.actions[0].numpy())
        reached = float(cost(torch.as_tensor(tips, dtype=torch.float32)[None, None]))
        at_open = float(cost(torch.as_tensor(open_tips, dtype=torch.float32)[None, None]))
        assert reached < 0.5 * at_open, (hand, name, reached, at_open)


def test_gesture_costs_are_zero_where_they_should_be():
    fingers = ("index", "middle", "ring", "thumb")
    open_tips = np.array(
        [[0.10, 0.03, 0.0], [0.11, 0.0, 0.0], [0.10, -0.03, 0.0], [0.05, 0.07, 0.0]]
    )
    point = open_tips.copy()
    point[1:3] = [[0.02, 0.0, -0.03], [0.02, -0.02, -0.03]]  # middle, ring curled
    point[3] = [0.02, 0.03, -0.03]  # thumb curled
    cost = gesture_cost("point", fingers, open_tips)
    assert float(cost(torch.as_tensor(point, dtype=torch.float32)[None, None])) < 1e-9
    assert float(cost(torch.as_tensor(open_tips, dtype=torch.float32)[None, None])) > 1e-4
    with pytest.raises(ValueError, match="unknown gesture"):
        gesture_cost("wave", fingers, open_tips)


def test_user_cost_files_are_checked(tmp_path):
    fingers = ("index", "middle", "ring", "thumb")
    good = tmp_path / "pinch.py"
    good.write_text("def cost(tips):\n    return ((tips[:, 0] - tips[:, 3]) ** 2).sum(-1)\n")
    fn = load_cost_file(good, fingers)
    states = torch.zeros(3, 1, 12)
    assert fn(states).shape == (3,)
    cases = {
        "syntax.py": ("def cost(tips) return 1\n", "SyntaxError"),
        "none.py": ("x = 1\n", "no callable"),
        "shape.py": ("def cost(tips):\n    return tips.sum()\n", "one number per sample"),
        "nan.py": ("import math\ndef cost(tips):\n    return tips[:, 0, 0] * math.nan\n", "NaN"),
        "raises.py": ("def cost(tips):\n    raise RuntimeError('boom')\n", "boom"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(CostFunctionError, match=message):
            load_cost_file(path, fingers)
    with pytest.raises(CostFunctionError, match="no cost file"):
        load_cost_file(tmp_path / "missing.py", fingers)
