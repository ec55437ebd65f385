"""Grasp generation (DexterityGen Appendix B): geometry, force analysis, validity in physics."""

from pathlib import Path

import numpy as np
import pytest

from assets.hands import load_hand
from assets.objects import FAMILIES, make_instance
from training.grasps.generate import GraspGenerator, GraspSet, hold_test
from training.grasps.geometry import SHAPES, closest_surface, net_force_residual, sample_surface

SIZES = {
    "box": (0.02, 0.03, 0.04),
    "sphere": (0.03,),
    "cylinder": (0.02, 0.035),
    "capsule": (0.015, 0.03),
}
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "grasps" / "leap"


@pytest.mark.parametrize("shape", SHAPES)
def test_surface_points_round_trip_through_the_closest_point(shape):
    rng = np.random.default_rng(0)
    size = np.array(SIZES[shape])
    p, n = sample_surface(shape, size, 400, rng)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-9)
    surf, _, d = closest_surface(shape, size, p)
    np.testing.assert_allclose(d, 0.0, atol=1e-9)
    np.testing.assert_allclose(surf, p, atol=1e-9)
    # off the surface along the normal: same closest point, the signed distance is the offset
    for off in (0.01, -0.002):
        surf2, _, d2 = closest_surface(shape, size, p + off * n)
        keep = np.ones(len(p), bool)
        if off < 0 and shape in ("box", "cylinder"):  # near edges an inward step changes face
            keep = np.abs(d2 - off) < 1e-9
            assert keep.mean() > 0.8
        np.testing.assert_allclose(d2[keep], off, atol=1e-9)
        np.testing.assert_allclose(surf2[keep], p[keep], atol=1e-9)
    # the surface samples are spread over the whole object (all octants)
    assert len({tuple(s) for s in np.sign(p).astype(int)}) == 8


def test_net_force_analysis():
    x = np.array([1.0, 0, 0])
    assert net_force_residual(np.array([x, -x])) < 1e-9  # an antipodal pinch balances
    assert net_force_residual(np.array([x, x])) == pytest.approx(1.0)  # two pushes one way
    tri = np.array([[np.cos(a), np.sin(a), 0] for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)])
    assert net_force_residual(tri) < 1e-9  # three at 120 degrees
    # a perpendicular pair leaves an unopposed force
    assert net_force_residual(np.array([x, [0, 1.0, 0]])) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        net_force_residual(np.array([x]))


@pytest.fixture(scope="module")
def cube_grasps():
    gen = GraspGenerator(load_hand("leap"), make_instance("cube", 1.0), seed=3)
    return gen, gen.generate(3, 25, max_seconds=60)


def test_generated_grasps_are_valid(cube_grasps, tmp_path):
    gen, gs = cube_grasps
    hand = gen.hand
    assert len(gs) == 28 and gs.meta["heuristic"] == 3 and gs.meta["rrt"] == 25
    assert gs.meta["heuristic_tries"] >= 3 and gs.meta["heuristic_s"] > 0
    assert np.all(gs.q >= hand.lower - 1e-9) and np.all(gs.q <= hand.upper + 1e-9)
    assert np.all(gs.q_target >= hand.lower - 1e-9) and np.all(gs.q_target <= hand.upper + 1e-9)
    np.testing.assert_allclose(np.linalg.norm(gs.obj_quat, axis=1), 1.0, atol=1e-6)
    assert np.all(gs.contacts.sum(1) >= 2)
    assert np.all(gs.contacts[gs.source == 0, 3])  # heuristic grasps oppose with the thumb
    for i in range(len(gs)):  # re-check: collision-free, every touching fingertip on the object
        assert gen.collision_free(gs.q[i], gs.obj_pos[i], gs.obj_quat[i], gs.contacts[i])
    # the RRT spreads the set: object poses differ from the heuristic seeds
    assert len({tuple(np.round(p, 3)) for p in gs.obj_pos}) == len(gs)
    p = tmp_path / "g.npz"
    gs.save(p)
    back = GraspSet.load(p)
    np.testing.assert_allclose(back.q, gs.q, atol=1e-6)
    assert back.meta == gs.meta and np.array_equal(back.contacts, gs.contacts)
    p.write_bytes(b"not a grasp cache")
    with pytest.raises(ValueError, match="unreadable"):
        GraspSet.load(p)


def test_grasps_hold_the_object_under_gravity(cube_grasps):
    """The issue's validity check, on the shipped caches: grasps hold their object for 1 s
    under gravity from a random direction. Measured when they were made: 85-95 % per
    object (assets/grasps/leap/summary.json). The bar, 75 % of 60 grasps across all six
    families, is below that with room for sampling noise and far above what a broken
    generator gives (no squeeze: the objects slide out; see the next assertion)."""
    assert SHIPPED.is_dir(), (
        "shipped grasp caches missing: python -m training.grasps --out assets/grasps"
    )
    rng = np.random.default_rng(0)
    rates, held_total, n_total = [], 0, 0
    for fam in FAMILIES:
        paths = sorted(SHIPPED.glob(f"{fam}_s*.npz"))
        assert paths, fam
        gs = GraspSet.load(paths[0])
        obj = make_instance(fam, float(paths[0].stem.split("_s")[-1]))
        gen = GraspGenerator(load_hand("leap"), obj, seed=0)
        sub = gs.subset(rng.choice(len(gs), 10, replace=False))
        held = hold_test(gen, sub, rng.normal(size=(len(sub), 3)))
        rates.append(held.mean())
        held_total += held.sum()
        n_total += len(sub)
    assert held_total / n_total >= 0.75, rates
    # without the squeeze (targets at the touching pose) far fewer hold: the test can fail
    gen, gs = cube_grasps
    loose = gs.subset(np.arange(len(gs)))
    loose.q_target = loose.q.copy()
    squeezed = hold_test(gen, gs, np.array([0.0, 0.0, -1.0])).mean()
    assert hold_test(gen, loose, np.array([0.0, 0.0, -1.0])).mean() < squeezed


def test_grasps_cli_adds_caches_to_a_folder_and_its_summary(tmp_path, capsys):
    """``python -m training.grasps`` into a folder with a summary keeps the other objects'
    rows (how a cache is added to the shipped ones) and refuses another hand's summary."""
    import json

    from training.grasps.__main__ import main

    small = ["--hand", "leap", "--per-family", "1", "--base", "2", "--rrt", "4"]
    out = ["--out", str(tmp_path)]
    assert main([*small, "--families", "cube", "--scale-range", "1.4,1.4", *out]) == 0
    assert main([*small, "--families", "sphere", "--scale-range", "1,1", *out]) == 0
    # the same object again replaces its row
    assert main([*small, "--families", "cube", "--scale-range", "1.4,1.4", *out]) == 0
    summary = json.loads((tmp_path / "leap" / "summary.json").read_text())
    assert [r["object"] for r in summary["instances"]] == ["sphere_s1.00", "cube_s1.40"]
    assert summary["grasps"] == sum(r["grasps"] for r in summary["instances"]) >= 2
    assert sorted(p.name for p in (tmp_path / "leap").glob("*.npz")) == [
        "cube_s1.40.npz",
        "sphere_s1.00.npz",
    ]
    (tmp_path / "allegro").mkdir()
    (tmp_path / "allegro" / "summary.json").write_text(json.dumps({"hand": "leap"}))
    with pytest.raises(SystemExit, match="write to another --out"):
        main(["--hand", "allegro", "--families", "cube", "--per-family", "1", "--base", "2",
              "--rrt", "4", *out])  # fmt: skip
    capsys.readouterr()


def test_object_instances_come_from_the_scale_range():
    from assets.objects import sample_instances

    one = sample_instances(("cube", "sphere"), 1, (1.4, 1.4), seed=0)
    assert [o.name for o in one] == ["cube_s1.40", "sphere_s1.40"]  # one: the range's middle
    assert sample_instances(("cube",), 1, (0.85, 1.15), seed=3)[0].name == "cube_s1.00"
    two = sample_instances(("cube",), 2, (0.85, 1.15), seed=0)
    assert two == sample_instances(("cube",), 2, (0.85, 1.15), seed=0)  # seeded
    assert all(0.85 <= float(o.name.split("_s")[-1]) <= 1.15 for o in two)
    assert one[0].size[0] == pytest.approx(1.4 * 0.025)  # the 5 cm cube at 1.4: 7 cm
