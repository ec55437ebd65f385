"""MoDex exploration data: shapes, determinism, the hand frame, settling, rate limits."""

import mujoco
import numpy as np
import pytest

from controllers.modex.hand import initial_state
from training.modex.data import (
    MODEX_HANDS,
    ExplorationData,
    collect,
    exploration_hand,
)


@pytest.mark.parametrize("hand", MODEX_HANDS)
def test_shapes_and_manifest(hand):
    h = exploration_hand(hand)
    qs = collect(hand, "quasi-static", samples=12, seed=1, batch=5)
    assert qs["actions"].shape == (12, h.action_dim)
    assert qs["next_tips"].shape == (12, h.state_dim)
    assert np.all(qs["actions"] >= h.ctrl_low - 1e-6) and np.all(
        qs["actions"] <= h.ctrl_high + 1e-6
    )
    seq = collect(hand, "sequential", samples=30, steps=10, seed=1)
    assert seq["actions"].shape == (3, 10, h.action_dim)
    assert seq["tips"].shape == (3, 11, h.state_dim)
    m = seq["manifest"]
    assert m["hand"] == hand and m["samples"] == 30 and m["seconds"] > 0 and m["bytes"] > 0
    assert m["physics_steps"] == 3 * 10 * h.substeps
    assert {"leap": 16, "allegro": 16, "shadow": 20}[hand] == h.action_dim
    assert {"leap": 12, "allegro": 12, "shadow": 15}[hand] == h.state_dim
    tips = qs["next_tips"].reshape(12, -1, 3)
    assert np.all(np.linalg.norm(tips, axis=2) < 0.3)  # fingertips within reach of the palm
    assert tips.std(axis=0).mean() > 0.005  # random actions move them


def test_deterministic_and_independent_of_threads_and_batches():
    a = collect("allegro", "quasi-static", samples=20, seed=3, nthread=1, batch=20)
    b = collect("allegro", "quasi-static", samples=20, seed=3, nthread=2, batch=7)
    np.testing.assert_array_equal(a["actions"], b["actions"])
    np.testing.assert_array_equal(a["next_tips"], b["next_tips"])
    c = collect("allegro", "quasi-static", samples=20, seed=4)
    assert not np.array_equal(a["actions"], c["actions"])


def test_rollout_tips_match_a_plain_simulation_in_the_palm_frame():
    """The batched rollout and its sensors agree with stepping one world by hand and
    expressing the fingertip sites in the palm frame."""
    h = exploration_hand("leap")
    data = collect("leap", "quasi-static", samples=3, seed=5)
    m = h.model
    d = mujoco.MjData(m)
    palm = m.site("palm_frame").id
    for i in range(3):
        mujoco.mj_setState(m, d, initial_state(h), mujoco.mjtState.mjSTATE_FULLPHYSICS)
        d.ctrl[:] = data["actions"][i]
        for _ in range(round(0.5 / m.opt.timestep)):
            mujoco.mj_step(m, d)
        mujoco.mj_forward(m, d)
        rot = d.site_xmat[palm].reshape(3, 3)
        tips = [
            rot.T @ (d.site_xpos[m.site(f"kp_{f}_tip").id] - d.site_xpos[palm])
            for f in ("index", "middle", "ring", "thumb")
        ]
        np.testing.assert_allclose(data["next_tips"][i], np.concatenate(tips), atol=2e-3)


def test_sequential_tips_are_measured_at_the_end_of_each_period():
    """Each recorded state is the fingertips at the control period's boundary, exactly what
    the app's simulated hand (and the reach task) read then: not one physics step before."""
    h = exploration_hand("allegro")
    data = collect("allegro", "sequential", samples=10, steps=5, seed=2)
    m = h.model
    d = mujoco.MjData(m)
    for ep in range(2):
        mujoco.mj_setState(m, d, initial_state(h), mujoco.mjtState.mjSTATE_FULLPHYSICS)
        for t in range(5):
            d.ctrl[:] = data["actions"][ep, t]
            mujoco.mj_step(m, d, nstep=h.substeps)
            mujoco.mj_forward(m, d)
            tips = d.sensordata[h.tip_index]
            np.testing.assert_allclose(data["tips"][ep, t + 1], tips, atol=2e-5)


def test_the_default_pose_matches_the_apps_simulated_hand():
    """Same palm frame and fingertip keypoints as the app's simulated hand at rest."""
    from devices.robots import ROBOTS

    h = exploration_hand("allegro")
    d = mujoco.MjData(h.model)
    mujoco.mj_setState(h.model, d, initial_state(h), mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mujoco.mj_forward(h.model, d)
    tips = d.sensordata[h.tip_index].reshape(4, 3)
    robot = ROBOTS.make("sim", hand="allegro")
    with robot:
        for _ in range(20):
            robot.send(robot.hand.default_open)
        kp = robot.read().keypoints  # pip, tip per finger
    np.testing.assert_allclose(tips, kp[1::2], atol=0.01)


def test_quasi_static_samples_have_settled():
    a = collect("shadow", "quasi-static", samples=8, seed=2, settle_s=0.5)
    b = collect("shadow", "quasi-static", samples=8, seed=2, settle_s=0.8)
    moved = np.abs(a["next_tips"] - b["next_tips"]).max()
    assert moved < 0.003, moved  # under 3 mm more motion after another 0.3 s


def test_sequential_actions_respect_the_speed_limit():
    h = exploration_hand("leap")
    seq = collect("leap", "sequential", samples=100, steps=20, seed=0)
    a = seq["actions"]
    steps = np.abs(
        np.diff(np.concatenate([np.repeat(h.default_ctrl[None, None], 5, 0), a], 1), axis=1)
    )
    assert steps.max() <= h.max_step + 1e-5
    assert np.all(a >= h.ctrl_low - 1e-6) and np.all(a <= h.ctrl_high + 1e-6)


def test_save_and_load(tmp_path):
    data = collect("allegro", "sequential", samples=20, steps=10, seed=0)
    store = ExplorationData(tmp_path / "allegro_seq")
    path = store.save(data)
    assert path.exists() and (tmp_path / "allegro_seq.json").exists()
    back = store.load()
    np.testing.assert_array_equal(back["tips"], data["tips"])
    assert back["manifest"]["setting"] == "sequential"


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown hand"):
        exploration_hand("myo")
    with pytest.raises(ValueError, match="unknown setting"):
        collect("leap", "online", samples=1)
