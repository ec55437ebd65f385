"""``dexteleop train modex``: from nothing to loadable checkpoints and a report; bad options
and inputs end with one clear line."""

import json

import pytest

from controllers.modex.models import checkpoint_paths, load_model
from teleop_app.cli import main as cli
from training.modex.data import ExplorationData, collect


@pytest.mark.parametrize("setting", ["quasi-static", "sequential"])
def test_train_writes_checkpoints_and_a_report(tmp_path, setting):
    samples = "300" if setting == "quasi-static" else "400"
    rc = cli(["train", "modex", "--hand", "allegro", "--setting", setting, "--samples", samples,
              "--steps", "60", "--hidden", "32,32", "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0
    paths = checkpoint_paths("allegro", setting, tmp_path)
    report = json.loads(paths["report"].read_text())
    assert report["hand"] == "allegro" and report["setting"] == setting
    assert report["train_samples"] + report["held_out_samples"] == int(samples)
    assert report["forward_loss"]["last"] < report["forward_loss"]["first"]
    assert report["data"]["seconds"] > 0 and report["held_out"]["forward_error_cm"] > 0
    quasi = setting == "quasi-static"
    fwd = load_model(paths["forward"], kind="qs_forward" if quasi else "forward", hand="allegro")
    assert fwd.config.hidden == (32, 32)
    load_model(paths["inverse"], kind="qs_inverse" if quasi else "inverse", hand="allegro")


def test_train_from_saved_data(tmp_path):
    data = collect("allegro", "quasi-static", samples=220, seed=3)
    ExplorationData(tmp_path / "qs").save(data)
    rc = cli(["train", "modex", "--hand", "allegro", "--data", str(tmp_path / "qs"),
              "--steps", "20", "--hidden", "16", "--out", str(tmp_path / "ck")])  # fmt: skip
    assert rc == 0
    report = json.loads(checkpoint_paths("allegro", "quasi-static", tmp_path / "ck")["report"]
                        .read_text())  # fmt: skip
    assert report["data"]["seed"] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--samples", "5"], "--samples must be >= 22"),
        (["--setting", "sequential", "--samples", "100"], "--samples must be >= 220"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--hidden", "a,b"], "--hidden"),
        (["--data", "/nonexistent/qs"], "no /nonexistent/qs.npz"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, extra, message):
    rc = cli(["train", "modex", "--hand", "allegro", "--out", str(tmp_path), *extra])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
