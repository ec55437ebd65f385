"""Every registered controller on every hand can be created and stepped."""

import numpy as np
import pytest

import controllers
from assets.hands import HAND_SPECS
from assets.registry import Registry, UnknownPluginError
from devices.inputs.clips import generate_clip
from devices.retargeting import Retargeter
from devices.robots import ROBOTS

#: The simulated backends (a real hand's backend needs its bus: tests/test_dynamixel_hand.py,
#: tests/test_allegro_hand.py run every controller path on the emulated ones).
SIMULATED = [n for n in ROBOTS.names() if not ROBOTS.get(n).drives_hardware]


@pytest.mark.parametrize("backend", SIMULATED)
@pytest.mark.parametrize("hand", sorted(HAND_SPECS))
@pytest.mark.parametrize("name", controllers.CONTROLLERS.names())
def test_every_controller_on_every_hand(name, hand, backend):
    reason = controllers.CONTROLLERS.get(name).availability(hand)
    if reason is not None:
        pytest.skip(f"{name} unavailable on {hand}: {reason}")
    robot = ROBOTS.make(backend, hand=hand)
    ctrl = controllers.CONTROLLERS.make(name, hand=hand)
    rt = Retargeter(robot.hand)
    clip = generate_clip("tripod", duration_s=1.0, rate_hz=20.0, seed=0)
    with robot:
        ctrl.reset(robot.read())
        for i in range(len(clip)):
            state = robot.read()
            target, info = ctrl.step(state, rt(clip.frame(i)))
            assert np.asarray(target).shape == (robot.hand.n_joints,)
            assert isinstance(info, dict)
            robot.send(target)
    assert robot.limit_violations == 0


def test_registry_errors():
    reg = Registry("widget")
    with pytest.raises(UnknownPluginError, match="available"):
        reg.get("nope")
    with pytest.raises(TypeError, match="Config"):
        reg.register("bad")(type("Bad", (), {}))
    with pytest.raises(ValueError, match="no setting"):
        controllers.CONTROLLERS.config("retarget", hand="leap", guidance=1.0)
