"""The in-hand rotation task: registered, its wrists and axes, the rotation it measures, the
waypoint that moves on, the off-axis curriculum, and a PPO iteration through the CLI."""

import numpy as np
import pytest
import torch

from assets.rotations import axis_angle_quat, quat_angle, quat_mul, quat_rotate
from devices.tick import AXES, axis_vector
from training.envs import TASKS, make_env
from training.envs.base import Randomization
from training.envs.rotate import LEAP_CUPPED_POSE, RotateEnv, wrist_gravity

CUPPED = LEAP_CUPPED_POSE


def _env(tmp_path, **kw):
    over = dict(num_envs=4, nthread=1, seed=0, families=("cube",), per_family=1,
                grasps_base=3, grasps_rrt=20, grasp_cache=str(tmp_path / "g"))  # fmt: skip
    return make_env("rotate", **{**over, **kw})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return _env(tmp_path_factory.mktemp("rotate"), axes=("z+", "x-"),
                wrists=("palm_up", "thumb_down"))  # fmt: skip


def test_registered_and_its_observations(env):
    assert TASKS["rotate"][1] == "RotateEnv" and isinstance(env, RotateEnv)
    obs = env.get_observations()
    H, n = env.cfg.history, env.n
    # proprioception history, the axis, the oracle's object state (position, orientation,
    # velocities, waypoint) and fingertips, the wrist (gravity), one style
    assert obs["policy"].shape == (4, H * 2 * n + 3 + 17 + 12 + 3 + 1)
    policy = obs["policy"].numpy()
    np.testing.assert_allclose(policy[:, H * 2 * n : H * 2 * n + 3], env.axis, atol=1e-6)
    assert obs["critic"].shape[1] > obs["policy"].shape[1]
    assert torch.isfinite(obs["critic"]).all()


def test_wrists_are_dexndms_six_and_stay_put(env):
    assert wrist_gravity("palm_up") == pytest.approx([0, 0, 1])  # pressed into the palm
    assert wrist_gravity("palm_down") == pytest.approx([0, 0, -1])
    assert wrist_gravity("base_up") == pytest.approx([1, 0, 0])  # fingers point down
    with pytest.raises(ValueError, match="unknown wrist"):
        wrist_gravity("sideways")
    allowed = {tuple(wrist_gravity(w)) for w in ("palm_up", "thumb_down")}
    axes = {AXES["z+"], AXES["x-"]}
    before = env.gravity.copy()
    zeros = torch.zeros(env.num_envs, env.num_actions)
    for _ in range(30):  # randomization on: gravity would drift for a random wrist
        env.step(zeros)
    for w in range(env.num_envs):
        assert tuple(np.round(env.gravity[w], 9)) in allowed
        assert tuple(env.axis[w]) in axes
    fresh = env.episode_length_buf.numpy() == 30
    np.testing.assert_allclose(env.gravity[fresh], before[fresh], atol=1e-12)


def test_a_tilted_wrist_lies_between_two_and_its_curriculum_tilts_it(tmp_path):
    """``A>B:DEG``: gravity turned DEG degrees from wrist A's toward B's on the great circle
    (unit, at the right angle from both); the tilt curriculum starts episodes at A and
    tilts them linearly to DEG between its two reset counts; bad tilts are refused."""
    assert wrist_gravity("palm_up>base_up:90") == pytest.approx(wrist_gravity("base_up"))
    assert wrist_gravity("palm_up>base_up:0") == pytest.approx(wrist_gravity("palm_up"))
    h = np.sqrt(0.5)
    assert wrist_gravity("palm_up>base_up:45") == pytest.approx([h, 0, h])
    assert wrist_gravity("palm_up>base_up:90", 0.5) == pytest.approx([h, 0, h])
    g = wrist_gravity("palm_up>thumb_down:30")
    assert np.linalg.norm(g) == pytest.approx(1.0)
    assert np.degrees(np.arccos(g @ wrist_gravity("palm_up"))) == pytest.approx(30)
    assert np.degrees(np.arccos(g @ wrist_gravity("thumb_down"))) == pytest.approx(60)
    for bad, why in (("palm_up>base_up:120", "0-90 degrees"), ("palm_up>base_up:-5", "0-90"),
                     ("palm_up>palm_down:10", "opposite"), ("palm_up>base_up", "A>B:DEG"),
                     ("palm_up>sideways:10", "unknown wrist")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            wrist_gravity(bad)
    env = _env(tmp_path, axes=("z-",), wrists=("palm_up>base_up:90",), start="palm",
               rest_q=CUPPED, tilt_resets=(2.0, 4.0), dr=Randomization(enabled=False))  # fmt: skip
    env.reset()
    assert env.tilt_share() == 0.0
    np.testing.assert_allclose(env.gravity, np.tile([0, 0, 1.0], (4, 1)), atol=1e-12)
    zeros = torch.zeros(env.num_envs, env.n)
    env.resets = 3 * env.num_envs  # halfway up the ramp: the next episodes start at 45
    env.episode_length_buf[:] = env.max_episode_length  # every world's episode ends now
    env.step(zeros)
    np.testing.assert_allclose(env.gravity, np.tile([h, 0, h], (4, 1)), atol=1e-9)
    grav = env.backend.model_field("opt.gravity")[0]  # written to the model, world frame
    assert np.linalg.norm(grav) == pytest.approx(9.81)
    np.testing.assert_allclose(grav / 9.81, env.palm_rot @ [h, 0, h], atol=1e-9)
    assert _env(tmp_path, wrists=("palm_up>base_up:45",)).tilt_share() == 1.0  # no ramp


def test_the_adaptive_tilt_climbs_with_kept_episodes_and_falls_with_drops(tmp_path):
    """tilt_keep: an episode kept to its end raises the tilt by tilt_step, a drop lowers it
    by tilt_step * keep / (1 - keep) (at keep 0.75: three kept per drop hold it still); the
    level is the next episodes' tilt, logged, clipped to [0, 1], and kept on resume."""
    env = _env(tmp_path, axes=("z-",), wrists=("palm_up>base_up:90",), tilt_keep=0.75,
               tilt_step=0.1, dr=Randomization(enabled=False))  # fmt: skip
    env.reset()
    assert env.tilt_share() == 0.0
    T = env.max_episode_length
    env.episode_length_buf[:] = torch.tensor([T, T, T, 5])  # three worlds end by time
    env._adapt_tilt(np.array([False, False, False, False]))
    assert env.tilt_share() == pytest.approx(0.3)
    env._adapt_tilt(np.array([True, False, False, False]))  # world 0 dropped: 1 drop, 2 kept
    assert env.tilt_share() == pytest.approx(0.3 - 0.3 + 0.2)
    env._adapt_tilt(np.array([True, True, True, True]))  # four drops: 1.2 down, clipped at 0
    assert env.tilt_share() == 0.0
    env.tilt_level = 0.5
    env.episode_length_buf[:] = T  # every world's episode ends, kept: the next start at 0.9
    _, _, metrics = env._reward()
    assert metrics["tilt_share"] == pytest.approx(np.full(4, 0.9))
    env._reset_worlds(np.arange(4))
    want = wrist_gravity("palm_up>base_up:90", 0.9)
    np.testing.assert_allclose(env.gravity, np.tile(want, (4, 1)), atol=1e-12)
    other = _env(tmp_path, axes=("z-",), wrists=("palm_up>base_up:90",), tilt_keep=0.75)
    other.load_curriculum_state(env.curriculum_state())
    assert other.tilt_share() == pytest.approx(0.9)
    with pytest.raises(ValueError, match="tilt_keep must be in"):
        _env(tmp_path, tilt_keep=1.0)


def test_tilt_replay_starts_some_episodes_below_the_level_and_only_those_at_it_count(tmp_path):
    """tilt_replay=R: about R of the episodes start at a tilt drawn between 0 and the level
    (their gravity at that tilt), the rest at the level; only those at the level move it."""
    env = _env(tmp_path, num_envs=64, axes=("z-",), wrists=("palm_up>base_up:90",),
               tilt_keep=0.5, tilt_step=0.005, tilt_start=0.7, tilt_replay=0.5,
               dr=Randomization(enabled=False))  # fmt: skip
    env.reset()
    replayed = ~env.tilt_at_level
    assert 16 <= replayed.sum() <= 48  # about half of 64
    assert np.all(env.tilt[~replayed] == 0.7)
    assert np.all((env.tilt[replayed] >= 0.0) & (env.tilt[replayed] < 0.7))
    assert np.ptp(env.tilt[replayed]) > 0.3  # spread over [0, 0.7), not one value
    for w in range(64):
        want = wrist_gravity("palm_up>base_up:90", env.tilt[w])
        np.testing.assert_allclose(env.gravity[w], want, atol=1e-12)
    T = env.max_episode_length
    env.episode_length_buf[:] = T  # every episode ends kept
    env._adapt_tilt(np.zeros(64, dtype=bool))
    assert env.tilt_share() == pytest.approx(0.7 + 0.005 * (~replayed).sum())  # replays: none
    with pytest.raises(ValueError, match="tilt_replay must be in"):
        _env(tmp_path, tilt_replay=1.5)
    with pytest.raises(ValueError, match="needs tilt_keep > 0"):  # it would do nothing
        _env(tmp_path, tilt_replay=0.25)
    plain = _env(tmp_path, num_envs=8, axes=("z-",), wrists=("palm_up>base_up:90",),
                 tilt_keep=0.5, tilt_start=0.3)  # fmt: skip
    plain.reset()  # no replay: every episode at the level
    assert plain.tilt_at_level.all() and np.all(plain.tilt == 0.3)


def test_a_tilted_axis_turns_with_the_curriculum_that_counts_only_turning_episodes(tmp_path):
    """``A>B:DEG`` for axes: the axis turned DEG degrees from A toward B (x->y-:90 is -y);
    the adaptive curriculum turns it as it tilts wrists, and with ``tilt_rate`` an episode
    kept without turning that fast counts as a drop; ``tilt_start`` is where a run begins;
    a tilted axis takes the gait of the axis it tilts from."""
    h = np.sqrt(0.5)
    assert axis_vector("x->y-:90") == pytest.approx(AXES["y-"])
    assert axis_vector("x->y-:45") == pytest.approx([-h, -h, 0])
    assert axis_vector("z->y-:90", 0.5) == pytest.approx([0, -h, -h])
    for bad, why in (("x+>x-:10", "opposite"), ("x->y-:100", "0-90 degrees"),
                     ("x->y-", "A>B:DEG"), ("x->w+:10", "unknown axis")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            axis_vector(bad)
    env = _env(tmp_path, axes=("x->y-:90",), tilt_keep=0.5, tilt_step=0.1, tilt_rate=0.2,
               tilt_start=0.5, dr=Randomization(enabled=False))  # fmt: skip
    env.reset()
    assert env.tilt_share() == 0.5
    want = axis_vector("x->y-:90", 0.5)
    np.testing.assert_allclose(env.axis, np.tile(want, (4, 1)), atol=1e-12)
    T = env.max_episode_length
    env.episode_length_buf[:] = T  # every episode ends kept; two turned 0.2 rad/s or more
    env.rotated_rad[:] = np.array([0.25, 0.2, 0.19, 0.0]) * T * env.dt
    env._adapt_tilt(np.zeros(4, dtype=bool))
    assert env.tilt_share() == pytest.approx(0.5 + 2 * 0.1 - 2 * 0.1)
    env.rotated_rad[:] = 1.0 * T * env.dt  # all four turned
    _, _, metrics = env._reward()
    assert metrics["tilt_share"] == pytest.approx(np.full(4, 0.9))
    env._reset_worlds(np.arange(4))  # the next episodes' axis: 0.9 of the way
    np.testing.assert_allclose(env.axis, np.tile(axis_vector("x->y-:90", 0.9), (4, 1)), atol=1e-12)
    env.set_axis(np.array([1]), "x->y-:90")  # a switch takes the level too
    np.testing.assert_allclose(env.axis[1], axis_vector("x->y-:90", 0.9), atol=1e-12)
    for bad in (dict(tilt_start=1.5), dict(tilt_rate=-0.1)):
        with pytest.raises(ValueError, match="tilt_start must be in"):
            _env(tmp_path, **bad)
    gait = _env(tmp_path, axes=("x->y-:30",), start="palm", rest_q=CUPPED, gait=True,
                action_mode="reference", scale_range=(1.4, 1.4))  # fmt: skip
    assert gait.gaits[("palm_up", "x->y-:30")].period_s > 0  # x-'s, shipped


def test_rotation_is_measured_about_the_axis_and_the_waypoint_moves_on(tmp_path):
    env = _env(tmp_path, axes=("z+",), dr=Randomization(enabled=False))
    env.reset()
    w = 0
    quat = env.obj_pose()[1][w]
    # the waypoint is 90 degrees ahead about the axis
    assert quat_angle(env.goal_quat[w], quat) == pytest.approx(np.pi / 2, abs=1e-6)
    # turn the object 0.05 rad about +z within one control step: 1 rad/s about the axis
    qp = env.backend.state("qpos")
    env.quat_prev[:] = env.obj_pose()[1]
    turned = quat_mul(axis_angle_quat(np.array([0.0, 0, 1]), np.array(0.05)), quat)
    qp[w, env.obj_qadr + 3 : env.obj_qadr + 7] = turned
    env._update_omega()
    np.testing.assert_allclose(env.omega[w], [0, 0, 1.0], atol=1e-6)
    # put it on the waypoint: the reward counts it and sets the next one, 90 degrees on
    env.quat_prev[w] = env.goal_quat[w]
    qp[w, env.obj_qadr + 3 : env.obj_qadr + 7] = env.goal_quat[w]
    goal = env.goal_quat[w].copy()
    env.backend.forward(np.arange(env.num_envs))
    _, _, metrics = env._reward()
    assert metrics["waypoints"][w] == 1.0 and env.waypoints[w] == 1
    assert quat_angle(env.goal_quat[w], goal) == pytest.approx(np.pi / 2, abs=1e-6)


def test_the_off_axis_penalty_follows_dexndms_curriculum(env):
    env.resets = 0
    assert env.rotp_weight() == 0.0
    env.resets = 10 * env.num_envs
    assert env.rotp_weight() == 0.0
    env.resets = 55 * env.num_envs
    assert env.rotp_weight() == pytest.approx(0.05)
    env.resets = 1000 * env.num_envs
    assert env.rotp_weight() == pytest.approx(0.1)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown axis"):
        _env(tmp_path, axes=("+w",))
    with pytest.raises(ValueError, match="unknown object families"):
        _env(tmp_path, families=("teapot",))


def test_ppo_runs_on_rotate(tmp_path):
    from teleop_app.cli import main

    run = tmp_path / "run"
    assert main(["train", "rl", "--task", "rotate", "--scale", "smoke", "--iterations", "1",
                 "--axes", "z+", "z-", "--wrists", "palm_up", "palm_down",
                 "--grasp-cache", str(tmp_path / "g"), "--out", str(run)]) == 0  # fmt: skip
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["meta"]["task"] == "rotate"
    env = ckpt["meta"]["env"]
    assert env["axes"] == ["z+", "z-"] and env["wrists"] == ["palm_up", "palm_down"]
    assert env["grasp_cache"] == str(tmp_path / "g") and any((tmp_path / "g").rglob("*.npz"))
    assert env["dr"]["enabled"] and env["dr"]["force_scale"] > 0  # every randomization on
    # the rollouts without the random pushes (--randomization no-force), and tilted wrists
    # whose tilt climbs with the episodes kept (the adaptive curriculum, logged per iteration)
    nf = tmp_path / "nf"
    assert main(["train", "rl", "--task", "rotate", "--scale", "smoke", "--iterations", "2",
                 "--axes", "z-", "--wrists", "palm_up>base_up:90", "--randomization", "no-force",
                 "--set", "tilt_keep=0.5", "--grasp-cache", str(tmp_path / "g"),
                 "--out", str(nf)]) == 0  # fmt: skip
    ckpt = torch.load(nf / "checkpoint.pt", weights_only=False)
    env = ckpt["meta"]["env"]
    assert env["dr"]["enabled"] and env["dr"]["force_scale"] == 0.0
    assert env["wrists"] == ["palm_up>base_up:90"] and env["tilt_keep"] == 0.5
    assert all(0.0 <= r["task_tilt_share"] <= 1.0 for r in ckpt["curve"])
    assert "tilt_level" in ckpt["env_curriculum"]


def test_rotation_settings_are_refused_for_other_tasks(tmp_path, capsys):
    from teleop_app.cli import main

    assert main(["train", "rl", "--task", "anygrasp", "--scale", "smoke", "--axes", "z+",
                 "--out", str(tmp_path / "no")]) != 0  # fmt: skip
    assert "--axes is for the rotate task" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_rotation_eval_bench_writes_dexndms_metrics(tmp_path, capsys):
    """The hold floor on a palm-up cube: the records carry the paper's metrics; holding
    still turns the object by almost nothing."""
    import json

    from bench.rotation_eval import main

    out = tmp_path / "rot.json"
    assert main(["--hold", "--episodes", "3", "--episode-s", "1", "--axis", "z+", "z-",
                 "--object", "cube", "--json", str(out)]) == 0  # fmt: skip
    recs = json.loads(out.read_text())
    assert [(r["axis"], r["object"], r["wrist"]) for r in recs] == [
        ("z+", "cube", "palm_up"), ("z-", "cube", "palm_up")]  # fmt: skip
    for r in recs:
        assert {"episodes", "rot_rad_per_s", "rotr", "ttf", "rotp", "drops"} <= set(r)
        assert r["episodes"] == 3 and 0.0 <= r["ttf"] <= 1.0 and 0 <= r["drops"] <= 3
        assert abs(r["rot_rad_per_s"]) < 0.1 and r["rotp"] >= 0.0
        assert r["rot_rad_per_s"] == pytest.approx(r["rotr"] / r["episode_s"])
    assert "| z+ | cube | 0.85-1.15 | palm_up | 3 |" in capsys.readouterr().out
    assert main(["--hold", "--episodes", "1", "--axis", "q+"]) == 2  # a clear refusal


def test_task_settings_from_the_command_line(tmp_path, capsys):
    """`--set KEY=VALUE` sets fields of the task's config, typed; unknown ones are refused."""
    from teleop_app.cli import main

    run = tmp_path / "run"
    assert main(["train", "rl", "--task", "rotate", "--scale", "smoke", "--iterations", "1",
                 "--set", "penalty_scale=0.25", "residual_scale_rad=0.4", "--init-std", "0.2",
                 "--grasp-cache", str(tmp_path / "g"), "--out", str(run)]) == 0  # fmt: skip
    meta = torch.load(run / "checkpoint.pt", weights_only=False)["meta"]
    assert meta["env"]["penalty_scale"] == 0.25 and meta["env"]["residual_scale_rad"] == 0.4
    assert meta["ppo"]["init_std"] == 0.2
    capsys.readouterr()
    # a palm start from a given pose: what the policy needs travels with it
    from training.rl.distill import rotation_trained_settings
    from training.rl.ppo import Policy

    pose = ",".join(str(v) for v in CUPPED)
    assert main(["train", "rl", "--task", "rotate", "--scale", "smoke", "--iterations", "1",
                 "--set", "start=palm", f"rest_q={pose}", "scale_range=1.2,1.2", "lie=1",
                 "--grasp-cache", str(tmp_path / "g"),
                 "--out", str(tmp_path / "cup")]) == 0  # fmt: skip
    policy = tmp_path / "cup" / "policy.pt"
    assert Policy.env_overrides(policy)["rest_q"] == CUPPED
    assert Policy.env_overrides(policy)["lie"] is True  # the object lies as it learned
    assert "lie" not in Policy.env_overrides(run / "policy.pt")  # off: as older files
    trained = rotation_trained_settings(policy)
    assert trained["start"] == "palm" and trained["scale_range"] == (1.2, 1.2)
    assert main(["train", "rl", "--task", "rotate", "--scale", "smoke", "--set", "nosuch=1",
                 "--out", str(tmp_path / "no")]) != 0  # fmt: skip
    assert "has no setting 'nosuch'" in capsys.readouterr().err
    assert main(["train", "rl", "--task", "rotate", "--scale", "smoke", "--set",
                 "penalty_scale=lots", "--out", str(tmp_path / "no")]) != 0  # fmt: skip
    assert "penalty_scale must be a float" in capsys.readouterr().err


def test_a_new_run_starts_from_another_policy(tmp_path, capsys):
    """--init: a new run's actor is the given policy's (its start pose travels with it, the
    axis is the run's own) and its record names it; one that does not fit is refused."""
    from teleop_app.cli import main

    rl = ["train", "rl", "--task", "rotate", "--scale", "smoke", "--grasp-cache",
          str(tmp_path / "g")]  # fmt: skip
    pose = ",".join(str(v) for v in CUPPED)
    assert main([*rl, "--iterations", "1", "--axes", "x+", "--set", "start=palm",
                 f"rest_q={pose}", "scale_range=1.4,1.4",
                 "--out", str(tmp_path / "xp")]) == 0  # fmt: skip
    src = tmp_path / "xp" / "policy.pt"
    assert main([*rl, "--iterations", "0", "--axes", "x-", "--set", "start=palm",
                 "scale_range=1.4,1.4", "--init", str(src),
                 "--out", str(tmp_path / "xm")]) == 0  # fmt: skip
    a = torch.load(src, weights_only=False)
    b = torch.load(tmp_path / "xm" / "policy.pt", weights_only=False)
    assert a["actor_state_dict"].keys() == b["actor_state_dict"].keys()
    for k, v in a["actor_state_dict"].items():
        assert torch.equal(v, b["actor_state_dict"][k]), k
    head = [v for k, v in a["actor_state_dict"].items() if k.endswith("weight")][-1]
    assert head.abs().sum() > 0  # a trained head, not the zero head a new run starts from
    assert b["meta"]["env"]["rest_q"] == list(CUPPED) and b["meta"]["env"]["axes"] == ["x-"]
    assert b["meta"]["init"] == str(src)
    c0 = torch.load(tmp_path / "xm" / "checkpoint.pt", weights_only=False)
    # resumed with the same command: its weights from its checkpoint, the record kept
    assert main([*rl, "--iterations", "1", "--axes", "x-", "--set", "start=palm",
                 "scale_range=1.4,1.4", "--init", str(src),
                 "--out", str(tmp_path / "xm")]) == 0  # fmt: skip
    c = torch.load(tmp_path / "xm" / "checkpoint.pt", weights_only=False)
    assert c["iteration"] == 1 and c["meta"]["init"] == str(src)
    # that iteration was the critic's warm-up: the actor's weights and noise held, the
    # critic trained, the learning rate where it started
    params = [k for k in a["actor_state_dict"] if not k.startswith("obs_normalizer")]
    for k in params:
        assert torch.equal(a["actor_state_dict"][k], c["alg"]["actor_state_dict"][k]), k
    assert c["curve"][0]["critic_warmup"] == 1.0
    assert any(
        not torch.equal(v, c0["alg"]["critic_state_dict"][k])
        for k, v in c["alg"]["critic_state_dict"].items()
    )
    assert c["alg"]["optimizer_state_dict"]["param_groups"][0]["lr"] == pytest.approx(
        c0["alg"]["optimizer_state_dict"]["param_groups"][0]["lr"]
    )
    # without the warm-up the first iteration moves the actor
    assert main([*rl, "--iterations", "1", "--axes", "x-", "--set", "start=palm",
                 "scale_range=1.4,1.4", "--init", str(src), "--critic-warmup", "0",
                 "--out", str(tmp_path / "xm_now")]) == 0  # fmt: skip
    d = torch.load(tmp_path / "xm_now" / "checkpoint.pt", weights_only=False)
    assert any(
        not torch.equal(a["actor_state_dict"][k], d["alg"]["actor_state_dict"][k]) for k in params
    )
    capsys.readouterr()
    # without the object in its observations the policy's inputs do not fit: refused
    assert main([*rl, "--iterations", "0", "--set", "oracle=false", "--init", str(src),
                 "--out", str(tmp_path / "no")]) != 0  # fmt: skip
    assert "weights do not fit" in capsys.readouterr().err
    # blind: the same inputs with the object's slots empty, so the policy's weights fit, and
    # the file says so (its evaluations and distillations build the blind env from it)
    from training.rl.ppo import Policy

    assert main([*rl, "--iterations", "0", "--axes", "x-", "--set", "start=palm", "blind=1",
                 "scale_range=1.4,1.4", "--init", str(src),
                 "--out", str(tmp_path / "blind")]) == 0  # fmt: skip
    blind = tmp_path / "blind" / "policy.pt"
    assert Policy.env_overrides(blind)["blind"] is True
    assert "blind" not in Policy.env_overrides(src)
    # it joins a seeing specialist in one (oracle) environment, seeing it blind
    from training.rl.distill import SpecialistTeam, _group_settings, _ViewedSpecialist

    over = _group_settings([src, blind])
    assert over["axes"] == ("x+", "x-") and "blind" not in over
    small = {"num_envs": 2, "nthread": 1, "seed": 0, "per_family": 1, "grasps_base": 3,
             "grasps_rrt": 20, "grasp_cache": str(tmp_path / "g")}  # fmt: skip
    env = make_env("rotate", **{**over, **small})
    team = SpecialistTeam([src, blind], env)
    assert isinstance(team.by_axis[1], _ViewedSpecialist) and team.by_axis[1].view.empty
    assert isinstance(team.by_axis[0], Policy)


def test_blind_empties_the_objects_slots_of_the_actors_observation(tmp_path):
    """``blind``: the oracle actor's object slots (pose, velocities, waypoint) are zeros,
    everything else as the oracle's (the fingertips included); the critic still sees the
    object in its privileged part."""
    kw = dict(axes=("z+",), dr=Randomization(enabled=False), seed=2, start="palm",
              rest_q=CUPPED, scale_range=(1.4, 1.4))  # fmt: skip
    seeing, blind = _env(tmp_path, **kw), _env(tmp_path, blind=True, **kw)
    rng = np.random.default_rng(0)
    for x in torch.as_tensor(rng.uniform(-1, 1, (3, 4, seeing.n)), dtype=torch.float32):
        a, b = seeing.step(x)[0], blind.step(x)[0]
    H, n = seeing.cfg.history, seeing.n
    obj = slice(H * 2 * n + 3, H * 2 * n + 3 + 17)
    assert a["policy"].shape == b["policy"].shape
    assert torch.count_nonzero(a["policy"][:, obj]) > 0 and not b["policy"][:, obj].any()
    rest = np.r_[0 : obj.start, obj.stop : a["policy"].shape[1]]
    torch.testing.assert_close(a["policy"][:, rest], b["policy"][:, rest])
    width = a["policy"].shape[1]  # the critic: the actor's observation, then the object's
    torch.testing.assert_close(a["critic"][:, width:], b["critic"][:, width:])
    # a blind specialist's view of the seeing env is the blind env's observation
    from training.rl.distill import _SpecialistView

    view = _SpecialistView(seeing, strip_phase=False, blind=True)
    torch.testing.assert_close(view.get_observations()["policy"], b["policy"])
    assert seeing.get_observations()["policy"][:, obj].any()  # the env's own untouched
    with pytest.raises(ValueError, match="needs oracle=True"):
        _env(tmp_path, axes=("z+",), oracle=False, blind=True)


def test_penalty_scale_scales_the_regularisers_only(tmp_path):
    a = _env(tmp_path, axes=("z+",), dr=Randomization(enabled=False), seed=3)
    b = _env(tmp_path, axes=("z+",), dr=Randomization(enabled=False), seed=3, penalty_scale=0.0)
    rng = np.random.default_rng(0)
    acts = torch.as_tensor(rng.uniform(-1, 1, (5, 4, a.n)), dtype=torch.float32)
    for x in acts:
        a.step(x)
        b.step(x)
    np.testing.assert_allclose(
        a.q, b.q, atol=1e-6
    )  # the setting changes the reward, not the motion
    assert a.rotp_weight() == b.rotp_weight() == 0.0  # the off-axis curriculum not begun
    pa, pb = a._reward()[2]["penalty"], b._reward()[2]["penalty"]
    assert np.all(pa > 0) and np.all(pb == 0)


def test_palm_start_drops_the_object_into_the_palm(tmp_path):
    """start=palm: the object settles on the palm (not a fingertip grasp) and stays there
    with the hand at its rest pose; refused where gravity would pull it out of the palm."""
    env = _env(tmp_path, axes=("z+",), start="palm", dr=Randomization(enabled=False))
    env.reset()
    rest = env.goal_q_target.copy()
    np.testing.assert_allclose(env.reference_targets(), rest)
    np.testing.assert_allclose(env.q, np.clip(rest, env.lower, env.upper), atol=1e-9)
    zeros = torch.zeros(env.num_envs, env.n)
    for _ in range(20):  # one second at rest
        env.step(zeros)
    pos, _ = env.obj_pose()
    surface = np.array(env.hand.spec.palm_surface_m)
    rb = env._fields["geom_rbound"][:, env.obj_geom]
    # lying on the palm: its centre within its bounding radius of the palm's surface
    assert np.all(pos[:, 2] < surface[2]) and np.all(surface[2] - pos[:, 2] <= rb + 0.005)
    assert not env.last_terminated.any()
    with pytest.raises(ValueError, match="do not turn the palm down"):
        _env(tmp_path, wrists=("palm_down",), start="palm")
    with pytest.raises(ValueError, match="do not turn the palm down"):
        _env(tmp_path, wrists=("base_down>palm_down:10",), start="palm")
    with pytest.raises(ValueError, match="start must be"):
        _env(tmp_path, start="table")


def test_palm_start_from_a_given_rest_pose(tmp_path):
    """rest_q: the hand starts (and is referenced) at the given joints, the object in the
    palm inside the fingers; a pose of the wrong length is refused by name."""
    env = _env(tmp_path, axes=("z+",), start="palm", rest_q=CUPPED, per_family=2,
               scale_range=(1.4, 1.4), dr=Randomization(enabled=False))  # fmt: skip
    env.reset()
    want = np.clip(CUPPED, env.lower, env.upper)
    np.testing.assert_allclose(env.goal_q_target, np.tile(want, (env.num_envs, 1)))
    np.testing.assert_allclose(env.q, np.tile(want, (env.num_envs, 1)), atol=1e-9)
    for _ in range(20):
        env.step(torch.zeros(env.num_envs, env.n))
    assert not env.last_terminated.any()
    with pytest.raises(ValueError, match="rest_q has 3 joints, the hand 16"):
        _env(tmp_path, start="palm", rest_q=(0.1, 0.2, 0.3))


def test_lie_lays_a_long_object_down_in_the_palm(tmp_path):
    """lie: a long cuboid starts with its own z axis in the palm's plane (standing on its
    end without), settles there in the cupped hand and stays in it for a second."""
    kw = dict(axes=("z+",), start="palm", rest_q=CUPPED, families=("cuboid_ar2",),
              scale_range=(1.4, 1.4), dr=Randomization(enabled=False))  # fmt: skip
    z = np.array([0.0, 0.0, 1.0])
    for lie, along_normal in ((False, 1.0), (True, 0.0)):
        env = _env(tmp_path, lie=lie, **kw)
        env.reset()
        _, quat = env.obj_pose()
        own_z = np.array([quat_rotate(q, z) for q in quat])
        np.testing.assert_allclose(np.abs(own_z @ z), along_normal, atol=1e-6)
        for _ in range(20):
            env.step(torch.zeros(env.num_envs, env.n))
        assert not env.last_terminated.any()
    _, quat = env.obj_pose()
    # still lying: its long axis within 30 degrees of the palm's plane
    assert np.all(np.abs([quat_rotate(q, z) @ z for q in quat]) < np.sin(np.radians(30)))


def test_rotation_eval_takes_task_settings(tmp_path):
    """--set reaches the task (a start and its pose); the bench's own options are refused."""
    import json

    from bench.rotation_eval import main

    out = tmp_path / "rot.json"
    pose = ",".join(str(v) for v in CUPPED)
    assert main(["--hold", "--episodes", "2", "--episode-s", "0.5", "--set", "start=palm",
                 f"rest_q={pose}", "--json", str(out)]) == 0  # fmt: skip
    rec = json.loads(out.read_text())[0]
    assert rec["episodes"] == 2 and rec["start"] == "palm"
    assert main(["--hold", "--episodes", "1", "--set", "axes=x+"]) == 2


def test_rotation_eval_sweeps_object_scales(tmp_path):
    """--scale: a record per scale, each with the objects built at it (the 5 cm cube's half
    extent times the scale); with --set scale_range as well it is refused, not guessed."""
    import json

    from bench.rotation_eval import main

    out = tmp_path / "rot.json"
    assert main(["--hold", "--episodes", "2", "--episode-s", "0.3", "--scale", "1.2", "1.6",
                 "--json", str(out)]) == 0  # fmt: skip
    recs = json.loads(out.read_text())
    assert [r["scale"] for r in recs] == [[1.2, 1.2], [1.6, 1.6]]
    assert [r["size_m"] for r in recs] == [[[0.03] * 3], [[0.04] * 3]]
    assert main(["--hold", "--episodes", "1", "--scale", "1.2",
                 "--set", "scale_range=1.3,1.3"]) == 2  # fmt: skip


def test_rotation_eval_randomization_settings(tmp_path):
    """--randomization: on (as trained), no-force (no random pushes), off (nominal); the
    record says which; an unknown name is refused."""
    import json

    from bench.rotation_eval import main, randomization

    assert randomization("on").enabled and randomization("on").force_scale > 0
    assert randomization("no-force").enabled and randomization("no-force").force_scale == 0
    assert randomization("no-force").friction == randomization("on").friction
    assert not randomization("off").enabled
    with pytest.raises(ValueError, match="one of on, no-force, off"):
        randomization("some")
    out = tmp_path / "rot.json"
    assert main(["--hold", "--episodes", "2", "--episode-s", "0.5", "--randomization", "off",
                 "--json", str(out)]) == 0  # fmt: skip
    rec = json.loads(out.read_text())[0]
    assert rec["randomization"] == "off" and rec["episodes"] == 2


def test_curriculum_continues_on_resume(tmp_path):
    """A resumed run's off-axis penalty weight continues where the saved run stopped."""
    a = _env(tmp_path, rotp_resets=(1.0, 3.0), rotp_max=0.1)
    b = _env(tmp_path, rotp_resets=(1.0, 3.0), rotp_max=0.1)
    assert a.rotp_weight() == 0.0
    a.resets = 2 * a.num_envs  # two episodes per world: halfway up the ramp
    b.load_curriculum_state(a.curriculum_state())
    assert b.rotp_weight() == pytest.approx(0.05)
    # a checkpoint saved before the state was kept: from its ended episodes
    b.load_curriculum_state({"episodes": 3 * a.num_envs})
    assert b.rotp_weight() == pytest.approx(0.1)


def test_the_axis_switches_mid_episode_as_an_operator_switches_it(tmp_path):
    """set_axis: the new axis from the next step, the waypoint restarted 90 degrees ahead
    about it; axis_flip_s: every episode starts about the first axis and switches to the
    next on schedule, the step's own axis kept in last_axis; 'any' cannot be switched."""
    env = _env(tmp_path, axes=("z+", "z-"), axis_flip_s=0.2, dr=Randomization(enabled=False))
    env.reset()
    assert (env.axis_name == 0).all()
    np.testing.assert_allclose(env.axis, np.tile([0, 0, 1.0], (4, 1)))
    hold = torch.zeros(env.num_envs, env.num_actions)
    seen, last = [], []
    for _ in range(9):
        env.step(hold)
        seen.append(env.axis[0, 2])
        last.append(env.last_axis[0, 2])
    # 4 steps at 20 Hz per axis: the step that ends a period still counts for its axis
    assert last == [1, 1, 1, 1, -1, -1, -1, -1, 1]
    assert seen == [1, 1, 1, -1, -1, -1, -1, 1, 1]
    quat = env.obj_pose()[1][1]
    env.set_axis(np.array([1]), "z+")
    assert env.axis_name[1] == 0 and env.axis[1, 2] == 1.0
    ahead = quat_mul(axis_angle_quat(np.array([0.0, 0, 1]), np.array(np.pi / 2)), quat)
    assert quat_angle(env.goal_quat[1], ahead) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="not one of this task's axes"):
        env.set_axis(np.array([0]), "x+")
    with pytest.raises(ValueError, match="not 'any'"):
        _env(tmp_path, axes=("z+", "any"), axis_flip_s=1.0)


def test_rotation_eval_plays_an_operator_switching_axes(tmp_path):
    import json

    from bench.rotation_eval import main

    out = tmp_path / "flip.json"
    assert main(["--hold", "--episodes", "2", "--episode-s", "1", "--axis", "z+", "z-",
                 "--flip-s", "0.5", "--randomization", "off", "--json", str(out)]) == 0  # fmt: skip
    (rec,) = json.loads(out.read_text())
    assert rec["axis"] == "z+,z-" and rec["flip_s"] == 0.5
    by = rec["rot_by_axis_rad"]
    assert set(by) == {"z+", "z-"}
    # the two phases add up to the turn about the commanded axis
    assert by["z+"] + by["z-"] == pytest.approx(rec["rotr"], abs=1e-9)
