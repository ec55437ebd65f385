"""The dexteleop command line, end to end in subprocesses."""

import json

import numpy as np
import pytest
from conftest import REPO, dexteleop


def test_allegro_replay_20s_fast(tmp_path):
    out = tmp_path / "r.json"
    p = dexteleop(
        "run", "--hand", "allegro", "--device", "replay", "--controller", "retarget",
        "--duration", "20", "--fast", "--report", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rep = json.loads(out.read_text())
    assert rep["ticks"] == 400
    assert rep["limit_violations"] == 0
    for key in ("rate_hz", "missed_deadlines", "latency_ms", "safety_events", "tracking_error_mm"):
        assert key in rep
    for stage in ("frame_age", "retarget", "controller", "hand_write"):
        assert set(rep["latency_ms"][stage]) >= {"p50", "p99"}
    assert set(rep["tracking_error_mm"]) >= {"mean", "p95"}
    assert rep["tracking_error_mm"]["mean"] < 40.0


def test_video_and_object(tmp_path):
    out, video = tmp_path / "r.json", tmp_path / "v.mp4"
    p = dexteleop(
        "run", "--hand", "leap", "--duration", "1", "--fast", "--object", "cube",
        "--report", str(out), "--video", str(video),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["object_dropped"] is False
    import imageio.v2 as imageio

    frames = [f for f in imageio.get_reader(str(video))]
    assert len(frames) == 20
    assert frames[-1].mean() > 20  # something was rendered, not a black frame


T5 = np.arange(5.0)
EYE5 = np.tile(np.eye(4), (5, 1, 1))
KP5 = np.zeros((5, 21, 3))


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"t": T5, "wrist": EYE5}, "keypoints"),  # missing key
        ({"t": T5, "keypoints": np.zeros((5, 21)), "wrist": EYE5}, "keypoints"),  # shape
        ({"t": T5[::-1].copy(), "keypoints": KP5, "wrist": EYE5}, "t"),  # time backwards
        ({"t": T5, "keypoints": KP5[:4], "wrist": EYE5}, "keypoints"),  # length mismatch
        ({"t": T5, "keypoints": KP5 + np.nan, "wrist": EYE5}, "keypoints"),  # NaN
    ],
)
def test_malformed_input_file_is_one_line_and_nonzero(tmp_path, arrays, needle):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    p = dexteleop("run", "--device", f"replay:{bad}", "--duration", "1", "--fast")
    assert p.returncode != 0
    err = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(err) == 1, p.stderr
    assert "Traceback" not in p.stderr and needle in err[0]


def test_garbage_file_unknown_hand_and_list(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00not a zip at all")
    p = dexteleop("run", "--device", f"replay:{junk}", "--duration", "1", "--fast")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    p = dexteleop("run", "--hand", "robonaut", "--duration", "1", "--fast")
    assert p.returncode == 2 and "robonaut" in p.stderr and "Traceback" not in p.stderr
    p = dexteleop("list")
    assert p.returncode == 0 and "retarget" in p.stdout and "allegro" in p.stdout


def test_bad_arguments_fail_before_running(tmp_path):
    for args, needle in [
        (["--report", str(tmp_path)], "directory"),
        (["--rate", "10", "--duration", "0.01"], "shorter than one tick"),
        (["--rate", "inf"], "finite"),
        (["--scale", "50"], "scale"),
    ]:
        p = dexteleop("run", "--fast", "--duration", "1", *args)
        assert p.returncode == 2, (args, p.stderr)
        assert needle in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)


def test_calibrate_then_run_with_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("DEXTELEOP_HOME", str(tmp_path))
    clip = REPO / "assets" / "clips" / "open_close.npz"
    p = dexteleop("calibrate", "--device", f"replay:{clip}", "--operator", "ada", "--seconds", "1")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "operators" / "ada.json").exists()
    out = tmp_path / "r.json"
    p = dexteleop("run", "--fast", "--duration", "1", "--operator", "ada", "--report", str(out))
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["config"]["wrist_alignment"] is not None
    p = dexteleop("run", "--fast", "--duration", "1", "--operator", "nobody")
    assert p.returncode == 2 and "dexteleop calibrate" in p.stderr
