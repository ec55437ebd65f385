"""MuJoCo Warp physics behind the env's Backend surface (Warp's CPU device here; a GPU
runs the same kernels)."""

import mujoco
import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_warp")

from training.envs import make_env
from training.envs.base import BatchBackend
from training.envs.warp_backend import WarpBackend

BOX = """<mujoco><option timestep="0.002"/><worldbody>
<body name="box" pos="0 0 1"><freejoint/><geom type="box" size=".05 .05 .05" mass="1"/>
<site name="corner" pos=".05 .05 .05"/></body>
<geom type="plane" size="2 2 .1"/></worldbody></mujoco>"""


@pytest.fixture(scope="module")
def box():
    return mujoco.MjModel.from_xml_string(BOX)


def _fall(backend, steps=100):
    """Two worlds: world 0 under gravity, world 1 without; returns their box heights."""
    g = backend.model_field("opt.gravity")
    g[0] = [0, 0, -9.81]
    g[1] = [0, 0, 0]
    backend.reset(np.arange(2))
    backend.forward(np.arange(2))
    backend.step(steps)
    return backend.state("qpos")[:, 2].copy()


def test_per_world_gravity_reaches_the_device_and_matches_mujoco(box):
    warp_z = _fall(WarpBackend(box, 2, device="cpu"))
    batch_z = _fall(BatchBackend(box, 2, 1))
    t = 100 * 0.002
    assert warp_z[0] == pytest.approx(1 - 0.5 * 9.81 * t**2, abs=2e-3)  # free fall
    assert warp_z[1] == pytest.approx(1.0, abs=1e-6)  # no gravity, no motion
    np.testing.assert_allclose(warp_z, batch_z, atol=1e-3)


def test_sites_are_current_after_a_step_as_with_mujoco_batch(box):
    """After step(n) the derived fields describe the new positions (mujoco.batch ends at the
    velocity stage), not the state before the last substep."""
    b = WarpBackend(box, 2, device="cpu")
    b.state("qvel")[:, 3:6] = [[2.0, 0.0, 0.0], [0.0, 3.0, 1.0]]  # spinning boxes
    b.forward(np.arange(2))
    b.step(20)
    d = mujoco.MjData(box)
    for i in range(2):
        d.qpos[:] = b.state("qpos")[i]
        mujoco.mj_kinematics(box, d)
        np.testing.assert_allclose(b.state("site_xpos")[i], d.site_xpos, atol=1e-5)


def test_divergence_resets_only_that_world_and_is_reported(box):
    b = WarpBackend(box, 3, device="cpu")
    b.forward(np.arange(3))
    b.state("qvel")[1, 0] = np.nan
    b.state("qvel")[2, 0] = 1.0  # a moving world that stays finite
    bad = b.step(5)
    assert bad.tolist() == [False, True, False]
    np.testing.assert_allclose(b.state("qpos")[1], box.qpos0)  # back to the defaults
    assert np.all(np.isfinite(b.state("qpos"))) and b.state("qpos")[2, 0] > 0.005


def test_model_fields_per_world_only_where_warp_batches_them(box):
    b = WarpBackend(box, 2, device="cpu")
    mass = b.model_field("body_mass")
    mass[1, 1] = 3.0
    b.set_const(np.array([1]))
    m1, _ = b.world(1)
    m0, _ = b.world(0)
    assert m1.body_mass[1] == pytest.approx(3.0) and m0.body_mass[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one per model"):
        b.model_field("geom_type")


def _smoke(physics, tmp_path, **kw):
    over = dict(num_envs=3, nthread=1, seed=0, families=("cube",), grasps_base=3,
                grasps_rrt=20, grasp_cache=str(tmp_path / "g"), physics=physics)  # fmt: skip
    return make_env("anygrasp", **{**over, **kw})


def test_anygrasp_on_warp_follows_the_batch_physics(tmp_path):
    """The same task, seed and actions on both backends, on the hands' actuator model
    (``servo``: armature, friction loss, torque limits, 10 ms, elliptic cone): the hand's
    keypoints stay within 2 mm of each other over 0.5 s of grasping (float32 and MuJoCo
    Warp's own collision code against float64 MuJoCo), the same worlds drop their cube at
    the same steps (and reset alike), observations have the same layout."""
    from assets.physics import SERVO_PHYSICS

    kps, obs, dones = {}, {}, {}
    for physics in ("batch", "warp"):
        env = _smoke(physics, tmp_path, physics_model=SERVO_PHYSICS)
        assert env.physics()["name"] == SERVO_PHYSICS
        zeros = torch.zeros(3, env.num_actions)
        traj, done_t = [], []
        for _ in range(10):
            o, _, done, _ = env.step(zeros)
            done_t.append(done.numpy().copy())
            traj.append(env.keypoints().copy())
        kps[physics], obs[physics], dones[physics] = np.array(traj), o, np.array(done_t)
    np.testing.assert_array_equal(dones["batch"], dones["warp"])
    assert not dones["warp"].any(axis=0).all()  # some world kept its cube throughout
    assert np.abs(kps["batch"] - kps["warp"]).max() < 2e-3
    for group in ("policy", "critic"):
        assert obs["batch"][group].shape == obs["warp"][group].shape
        assert torch.isfinite(obs["warp"][group]).all()


def test_anygrasp_on_warp_refuses_mixed_shapes(tmp_path):
    with pytest.raises(ValueError, match="one geom type per model"):
        _smoke("warp", tmp_path, families=("cube", "sphere"))
    with pytest.raises(ValueError, match="physics must be one of"):
        _smoke("mjx", tmp_path)


def test_ppo_and_data_generation_run_on_warp_physics(tmp_path):
    """The CLI's --physics warp: a PPO iteration and a small dataset, end to end."""
    from teleop_app.cli import main
    from training.datagen.dataset import DatasetReader

    common = ["--task", "anygrasp", "--scale", "smoke", "--envs", "4", "--physics", "warp",
              "--physics-device", "cpu", "--families", "cube", "--grasp-cache",
              str(tmp_path / "g")]  # fmt: skip
    run = tmp_path / "run"
    assert main(["train", "rl", *common, "--iterations", "1", "--out", str(run)]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["meta"]["env"]["physics"] == "warp"
    assert main(["data", "generate", *common, "--policy", str(run / "policy.pt"),
                 "--transitions", "40", "--out", str(tmp_path / "ds")]) == 0  # fmt: skip
    r = DatasetReader(tmp_path / "ds")
    assert len(r) >= 40 and r.manifest["meta"]["env"]["physics"] == "warp"
    b = r.get(np.arange(8))
    assert np.all(np.isfinite(b.keypoints)) and np.all(np.isfinite(b.action))
