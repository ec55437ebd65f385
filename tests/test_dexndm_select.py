"""`dexteleop train dexndm-select`: residuals chosen by running them on the hand."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from controllers.dexndm import DexNDMController, DexNDMControllerConfig
from controllers.dexndm.controller import residual_path
from controllers.dexndm.residual import ResidualPolicy, load_residual, save_residual
from training.dexndm.evaluate import evaluate_axes, rotation_robot
from training.dexndm.select import SelectConfig, score, select_residual


def test_score_is_the_geometric_mean_over_axes_with_a_floor():
    recs = [{"rot_rad_per_s": 0.1}, {"rot_rad_per_s": 0.4}]
    assert score(recs) == pytest.approx(0.2)
    # one axis that does not turn (or turns backwards) scores low, not -inf
    recs = [{"rot_rad_per_s": -0.3}, {"rot_rad_per_s": 1.0}]
    assert score(recs, floor=1e-2) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        score([])


@pytest.fixture(scope="module")
def candidates(tmp_path_factory):
    """The shipped residual, and the same file made harmful: every correction at -0.6 rad
    (the fingers opened), which must not be chosen."""
    d = tmp_path_factory.mktemp("sel")
    model, meta = load_residual(residual_path("leap"), hand="leap")
    bad = ResidualPolicy(replace(model.cfg, max_rad=0.6))
    bad.load_state_dict(model.state_dict())
    with torch.no_grad():
        bad.net[-1].weight.zero_()
        bad.net[-1].bias.fill_(-10.0)
    save_residual(d / "opened.pt", bad, meta)
    return str(residual_path("leap")), str(d / "opened.pt")


def test_the_candidate_that_turns_the_cube_is_chosen_on_paired_episodes(candidates, tmp_path):
    from teleop_app.cli import main

    shipped, opened = candidates
    out, rep = tmp_path / "chosen.pt", tmp_path / "report.json"
    args = ["--episodes", "2", "--episode-s", "1.5", "--seed", "3"]
    rc = main(["train", "dexndm-select", opened, shipped, "--axes", "z-", "z+", *args,
               "--out", str(out), "--json", str(rep)])  # fmt: skip
    assert rc == 0
    report = json.loads(rep.read_text())
    rows = {r["residual"]: r for r in report["candidates"]}
    assert set(rows) == {"direct", shipped, opened}
    assert [r["score"] for r in report["candidates"]] == sorted(
        (r["score"] for r in report["candidates"]), reverse=True
    )
    assert (report["chosen"] or "direct") == report["candidates"][0]["residual"] != opened
    assert rows[opened]["score"] < rows[shipped]["score"]
    for row in report["candidates"]:
        assert [r["axis"] for r in row["records"]] == ["-z", "+z"]
        assert row["score"] == pytest.approx(score(row["records"]), abs=1e-4)
    # the records are the episodes bench/dexndm_eval.py runs for that controller, same draw
    ctrl = DexNDMController(DexNDMControllerConfig(hand="leap", residual=shipped, ndm="none"))
    robot = rotation_robot(ctrl, "sim:dynamics=reality", "leap")
    again = evaluate_axes(robot, ctrl, ["-z"], 2, 3, 1.5)[0][1]
    assert again["rotr"] == rows[shipped]["records"][0]["rotr"]
    assert (report["chosen"] is None) == (not out.exists())  # direct won: nothing written
    # without the generalist alone competing, the better residual is written with the report
    rc = main(["train", "dexndm-select", opened, shipped, "--axes", "z-", *args, "--no-direct",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    model, meta = load_residual(out, hand="leap")
    src, _ = load_residual(shipped, hand="leap")
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert meta["selection"]["chosen"] == shipped and meta["selection"]["config"]["seed"] == 3
    assert meta["selection"]["candidates"][0]["records"][0]["rotr"] == again["rotr"]


def test_a_chosen_scale_is_baked_into_the_written_cap(candidates, tmp_path):
    """`--scales 0.5 1`: each residual also runs at half its corrections; the file written
    sends the chosen scale's corrections at the controller's scale 1 (its cap scaled)."""
    from teleop_app.cli import main

    shipped, _ = candidates
    model, _ = load_residual(shipped, hand="leap")
    half = model.scaled(0.5)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(5, model.cfg.obs_dim - model.cfg.n, generator=g)
    step = 0.05 * torch.randn(5, model.cfg.n, generator=g)
    torch.testing.assert_close(half(obs, step), 0.5 * model(obs, step))
    out, rep = tmp_path / "chosen.pt", tmp_path / "report.json"
    rc = main(["train", "dexndm-select", shipped, "--axes", "z-", "--episodes", "1",
               "--episode-s", "1.0", "--seed", "4", "--scales", "0.5", "1", "--no-direct",
               "--out", str(out), "--json", str(rep)])  # fmt: skip
    assert rc == 0
    report = json.loads(rep.read_text())
    assert sorted(r["scale"] for r in report["candidates"]) == [0.5, 1.0]
    chosen, meta = load_residual(out, hand="leap")
    assert meta["selection"]["scale"] == report["scale"] == report["candidates"][0]["scale"]
    assert chosen.cfg.max_rad == pytest.approx(model.cfg.max_rad * report["scale"])
    torch.testing.assert_close(chosen(obs, step), report["scale"] * model(obs, step))
    with pytest.raises(ValueError, match="scales"):
        select_residual([shipped], SelectConfig(scales=(0.0,), episodes=1))


def test_without_direct_a_residual_is_always_chosen_and_bad_lists_are_refused(candidates):
    shipped, opened = candidates
    cfg = SelectConfig(axes=("-z",), episodes=1, episode_s=0.5, seed=5, direct=False)
    report = select_residual([opened], cfg)
    assert report["chosen"] == opened and len(report["candidates"]) == 1
    assert math.isfinite(report["candidates"][0]["score"])
    with pytest.raises(ValueError, match="twice"):
        select_residual([shipped, shipped], cfg)
    with pytest.raises(ValueError, match="at least one"):
        select_residual([], cfg)
    # a residual trained for another generalist does not compete (the six-axis one has none)
    with pytest.raises(ValueError, match="another generalist"):
        select_residual([shipped], replace(cfg, generalist="six_axes"))
