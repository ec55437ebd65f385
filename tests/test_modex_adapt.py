"""Adaptation (MoDex Fig. 7): after an actuator fails or fatigues, fine-tuning the shipped
forward model on 1000 samples of the changed hand brings its prediction error back down."""

import numpy as np
import pytest
import torch

from controllers.modex.models import checkpoint_paths, load_model
from training.modex.adapt import adapt
from training.modex.data import Actuation, collect
from training.modex.reach import ReachTask, reach_error_cm


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def test_actuation_changes_what_the_hand_does_not_what_is_recorded():
    act = Actuation(failed=(1,), fatigue=0.5)
    a = np.ones((2, 4))
    np.testing.assert_allclose(act(a), [[0.5, 0.0, 0.5, 0.5]] * 2)
    data = collect("allegro", "quasi-static", samples=3, seed=4, actuation=act)
    assert data["manifest"]["actuation"] == "failed actuators [1], fatigue x0.5"
    task = ReachTask("allegro")
    for sent, tips in zip(data["actions"], data["next_tips"], strict=True):
        task.reset()
        task.hold(act(sent), task.settle_steps)  # what the changed hand received
        assert reach_error_cm(task.tips(), tips) < 0.01  # (actions are stored as float32)
        task.reset()
        task.hold(sent, task.settle_steps)  # what the healthy hand would have done
        assert reach_error_cm(task.tips(), tips) > 0.5


@pytest.mark.parametrize(
    "change", [Actuation(fatigue=0.6), Actuation(failed=(1,))], ids=["fatigue", "failure"]
)
def test_fine_tuning_recovers_the_forward_model(change):
    model = load_model(checkpoint_paths("allegro", "quasi-static")["forward"], kind="qs_forward")
    res = adapt(model, change, steps=(0, 600))
    before, after = res.errors_cm[0], res.errors_cm[600]
    assert before > 3 * res.healthy_cm  # the change really hurts the model
    assert after < 0.3 * before, res
    assert after < 2.5 * res.healthy_cm, res  # near the healthy hand's error
