"""Periodic finger gaits: the formula, the file, the rotate task's reference with a gait, and
the search's common random numbers."""

import json

import numpy as np
import pytest
import torch

from training.envs import make_env
from training.envs.gait import Gait, gait_path
from training.rl.gait_search import (
    GaitSearchSettings,
    fit_gait,
    policy_gait,
    reversed_gait,
    rollout,
    search,
)


def _gait(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return Gait(0.8, rng.uniform(0, 0.2, n), rng.uniform(0, 6, n), rng.uniform(-0.1, 0.1, n))


def test_offsets_ramp_in_and_repeat_with_the_period():
    g = _gait()
    np.testing.assert_allclose(g.offsets(0.0), 0.0)  # starts from the grasp
    half = g.offsets(0.25)  # half-way up the 0.5 s ramp
    full = g.bias + g.amplitude * np.sin(2 * np.pi * 0.25 / 0.8 + g.phase)
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-12)
    np.testing.assert_allclose(g.offsets(1.0), g.offsets(1.0 + 3 * 0.8), atol=1e-9)
    # batched: one row per time
    np.testing.assert_allclose(g.offsets(np.array([1.0, 2.0]))[1], g.offsets(2.0))
    # played backwards: the same joint path in the opposite direction
    r = reversed_gait(g)
    for t in (0.7, 1.3, 2.9):
        np.testing.assert_allclose(r.offsets(t), _no_ramp(g, -t), atol=1e-12)


def _no_ramp(g, t):
    return g.bias + g.amplitude * np.sin(2 * np.pi * t / g.period_s + g.phase)


def test_gait_file_round_trip_and_bad_files(tmp_path):
    g = _gait()
    p = g.save(tmp_path / "leap" / "grasp_palm_up_z+.json")
    back = Gait.load(p)
    np.testing.assert_allclose(back.offsets(1.1), g.offsets(1.1), atol=1e-5)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read gait"):
        Gait.load(bad)
    d = g.to_dict()
    d["amplitude"] = d["amplitude"][:3]
    bad.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="one length"):
        Gait.load(bad)
    with pytest.raises(ValueError, match="period"):
        Gait(0.0, np.zeros(2), np.zeros(2), np.zeros(2))


def _env(tmp_path, **kw):
    over = dict(num_envs=3, nthread=1, seed=0, families=("cube",), per_family=1,
                grasps_base=3, grasps_rrt=20, grasp_cache=str(tmp_path / "g"),
                axes=("z+",), wrists=("palm_up",))  # fmt: skip
    return make_env("rotate", **{**over, **kw})


def test_rotate_with_a_gait_adds_it_to_the_start_grasp(tmp_path):
    g = Gait.load(_gait().save(gait_path("leap", "palm_up", "z+", tmp_path / "gaits")))
    plain = _env(tmp_path)
    env = _env(tmp_path, gait=True, gait_dir=str(tmp_path / "gaits"))
    # the actor also sees the gait's phase
    assert (
        env.get_observations()["policy"].shape[1] == plain.get_observations()["policy"].shape[1] + 2
    )
    env.reset()
    zeros = torch.zeros(env.num_envs, env.n)
    for _ in range(12):
        t = env.gait_time()
        np.testing.assert_allclose(
            env.reference_targets(), env.goal_q_target + g.offsets(t), atol=1e-9
        )
        env.step(zeros)
    # a world without a gait for its (wrist, axis) is refused, naming the search command
    with pytest.raises(ValueError, match="no leap gait for: palm_up/z-"):
        _env(tmp_path, axes=("z-",), gait=True, gait_dir=str(tmp_path / "gaits"))
    with pytest.raises(ValueError, match="action_mode='reference'"):
        _env(tmp_path, gait=True, gait_dir=str(tmp_path / "gaits"), action_mode="delta")


def test_gaits_for_some_axes_and_gaitless_specialists_beside_them(tmp_path):
    """``gait_axes``: worlds about +z keep the start grasp as reference, worlds about -z
    follow the gait; a gait-less specialist's view of that env is the plain env's
    observation (the phase columns removed), step after step."""
    from training.rl.distill import _SpecialistView

    g = Gait.load(_gait().save(gait_path("leap", "palm_up", "z-", tmp_path / "gaits")))
    kw = dict(num_envs=4, axes=("z+", "z-"))
    plain = _env(tmp_path, **kw)
    env = _env(tmp_path, **kw, gait=True, gait_dir=str(tmp_path / "gaits"), gait_axes=("z-",))
    assert plain.gait_phase_columns() is None and env.gait_phase_columns() == slice(-6, -4)
    view = _SpecialistView(env, strip_phase=True, blind=False)
    plain.reset()
    env.reset()
    about_zm = env.axis_name == 1
    assert about_zm.any() and not about_zm.all()
    np.testing.assert_array_equal(plain.axis_name, env.axis_name)
    rng = np.random.default_rng(0)
    for _ in range(6):
        np.testing.assert_allclose(  # float32 observations of float64 states
            view.get_observations()["policy"], plain.get_observations()["policy"], atol=1e-5
        )
        off = env.reference_targets() - env.goal_q_target
        np.testing.assert_allclose(off[about_zm], g.offsets(env.gait_time())[about_zm], atol=1e-9)
        assert np.all(off[~about_zm] == 0)
        targets = env.target + rng.normal(0, 0.02, env.target.shape)
        env.step_targets(targets)
        plain.step_targets(targets)
    env.set_axis(np.flatnonzero(about_zm), "z+")  # switched away from the gait's axis
    assert np.all(env.reference_targets() == env.goal_q_target)
    with pytest.raises(ValueError, match=r"gait_axes \['x\+'\] are not among"):
        _env(tmp_path, gait=True, gait_dir=str(tmp_path / "gaits"), gait_axes=("x+",))


@pytest.mark.parametrize("from_switch", [False, True])
def test_a_switch_to_a_gaits_axis_starts_the_gait_there_when_asked(tmp_path, from_switch):
    """``gait_from_switch``: a world switched to the gait's axis mid-episode follows the gait
    from its start (ramp, phase) at the switch, and its actor's phase features restart too;
    without it, the gait runs on the episode's clock (full amplitude at once). A reset
    starts the clock at the episode again."""
    g = Gait.load(_gait().save(gait_path("leap", "palm_up", "z-", tmp_path / "gaits")))
    env = _env(tmp_path, num_envs=2, axes=("z+", "z-"), gait=True, gait_axes=("z-",),
               gait_dir=str(tmp_path / "gaits"), gait_from_switch=from_switch)  # fmt: skip
    env.reset()
    ids = np.arange(2)
    env.set_axis(ids, "z+")
    zeros = torch.zeros(env.num_envs, env.n)
    for _ in range(15):
        env.step(zeros)
    steps = env.episode_length_buf.cpu().numpy().copy()
    assert np.all(steps == 15)  # nothing dropped: 15 steps into the episode
    env.set_axis(ids, "z-")
    want_t = (1 if from_switch else 16) * env.dt
    np.testing.assert_allclose(env.gait_time(), want_t)
    off = env.reference_targets() - env.goal_q_target
    np.testing.assert_allclose(off, g.offsets(np.full(2, want_t)), atol=1e-9)
    ramp = min(want_t / g.ramp_s, 1.0)
    assert ramp < 1.0 if from_switch else ramp == 1.0
    phase = env.get_observations()["policy"][:, env.gait_phase_columns()].numpy()
    w = 2 * np.pi * want_t / g.period_s
    np.testing.assert_allclose(phase, [[np.sin(w), np.cos(w)]] * 2, atol=1e-6)
    env.reset()
    np.testing.assert_allclose(env.gait_time(), env.dt)


def test_search_compares_candidates_on_equal_terms_and_saves_a_gait(tmp_path):
    env = _env(tmp_path, num_envs=4, episode_s=2.0)
    thetas = np.tile(np.concatenate([np.full(16, 0.1), np.linspace(0, 6, 16), np.zeros(16),
                                     [1.0]]), (4, 1))  # fmt: skip
    a = rollout(env, thetas, 0.5, seed=7)
    b = rollout(env, thetas, 0.5, seed=7)
    np.testing.assert_array_equal(a["about"], b["about"])  # same seed, same worlds
    gait, report = search(
        "leap",
        "palm_up",
        "z+",
        ("cube",),
        GaitSearchSettings(generations=2, worlds=4, horizon_s=0.5),
        threads=1,
        env_overrides=dict(
            per_family=1, grasps_base=3, grasps_rrt=20, grasp_cache=str(tmp_path / "g")
        ),
        progress=False,
    )
    assert gait.n == 16 and len(report["curve"]) == 2
    assert np.all(gait.amplitude >= 0) and 0.4 <= gait.period_s <= 3.0
    assert report["physics"]["name"] == "servo" and "rad_s" in report["final"]
    assert gait.meta["axis"] == "z+"
    # the settings a policy trained on this gait must share are kept with it
    assert gait.meta["env_overrides"]["per_family"] == 1
    assert report["env_overrides"]["grasp_cache"] == str(tmp_path / "g")


def test_a_gait_is_recovered_from_its_own_motion():
    """fit_gait finds the period, amplitudes, phases and biases of a gait from noisy
    offsets, and the fit of the motion played backwards is the reversed gait."""
    rng = np.random.default_rng(0)
    g = Gait(0.8, rng.uniform(0.1, 0.5, 16), rng.uniform(0, 2 * np.pi, 16),
             rng.uniform(-0.2, 0.2, 16), ramp_s=0.0)  # fmt: skip
    t = 1.0 + 0.05 * np.arange(200)  # past the ramp-in
    fit, explained = fit_gait(t, g.offsets(t) + rng.normal(0, 0.01, (200, 16)))
    assert fit.period_s == pytest.approx(0.8, abs=0.005) and explained > 0.99
    np.testing.assert_allclose(fit.amplitude, g.amplitude, atol=0.01)
    np.testing.assert_allclose(fit.bias, g.bias, atol=0.01)
    np.testing.assert_allclose(np.angle(np.exp(1j * (fit.phase - g.phase))), 0.0, atol=0.05)
    back, _ = fit_gait(t, g.offsets(t)[::-1])
    rev = reversed_gait(g)
    # the same motion backwards: g(c - t) = rev(t - c), c = t[0] + t[-1]
    np.testing.assert_allclose(back.offsets(t), rev.offsets(t - t[0] - t[-1]), atol=1e-6)
    with pytest.raises(ValueError, match="fit_gait needs"):
        fit_gait(t[:5], g.offsets(t[:5]))


def test_a_gait_is_fitted_to_a_shipped_specialist(tmp_path):
    """policy_gait: the +x specialist's own motion, fitted; most of it is one period."""
    gait, info = policy_gait(
        "assets/checkpoints/rl/rotate_leap_xp.pt", "leap", worlds=2, seconds=3.0, threads=1
    )
    assert info["axis"] == "x+" and info["seconds_fitted"] >= 1.0
    assert 0.4 <= gait.period_s <= 3.0 and gait.n == 16
    assert info["explained"] > 0.5, info


def test_gait_cli_fits_a_specialist_and_plays_it_backwards(tmp_path):
    """`train gait --from-policy P --mirror --generations 0`: the reversed fit, saved with
    where it came from and the settings given with --set."""
    from training.rl.gait_search import main

    out = tmp_path / "gaits" / "leap" / "palm_palm_up_x-.json"
    report = tmp_path / "report.json"
    args = ["--hand", "leap", "--start", "palm", "--axis", "x-", "--generations", "0",
            "--worlds", "2", "--horizon", "0.5", "--threads", "1", "--from-policy",
            "assets/checkpoints/rl/rotate_leap_xp.pt", "--mirror", "--set",
            "scale_range=1.4,1.4", "--out", str(out), "--report", str(report)]  # fmt: skip
    assert main(args) == 0
    g = Gait.load(out)
    rep = json.loads(report.read_text())
    assert rep["init"]["mirrored"] and rep["init"]["fitted"]["axis"] == "x+"
    assert g.meta["axis"] == "x-" and g.meta["env_overrides"]["scale_range"] == [1.4, 1.4]
    assert g.period_s == pytest.approx(rep["init"]["fitted"]["period_s"])
    with pytest.raises(ValueError, match="--mirror plays a gait backwards"):
        main(["--axis", "x-", "--generations", "0", "--mirror", "--out", str(out)])
