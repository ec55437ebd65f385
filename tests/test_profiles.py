"""Operator profiles and calibration."""

import dataclasses

import numpy as np
import pytest

from devices.inputs.clips import generate_clip
from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
from teleop_app.profiles import (
    OperatorProfile,
    ProfileError,
    calibrate,
    load_profile,
    profiles_dir,
    save_profile,
)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEXTELEOP_HOME", str(tmp_path))
    return tmp_path


def rot_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_calibration_measures_hand_size_and_neutral_wrist():
    clip = generate_clip("wrist_rotation", duration_s=1.0, seed=0)
    big = DEFAULT_HAND.keypoints(OPEN_POSE) * 1.15  # a 15 % larger hand
    neutral = rot_z(30)
    frames = []
    for i in range(len(clip)):
        f = clip.frame(i)
        w = np.eye(4)
        w[:3, :3] = neutral
        frames.append(dataclasses.replace(f, keypoints=big, wrist=w))
    p = calibrate(frames, "ada")
    assert p.scale == pytest.approx(1 / 1.15, rel=1e-3)
    np.testing.assert_allclose(neutral @ p.alignment_matrix(), np.eye(3), atol=1e-9)
    path = save_profile(p)
    assert path.parent == profiles_dir() and path.exists()
    assert load_profile("ada") == dataclasses.replace(p, wrist_alignment=tuple(p.wrist_alignment))


def test_bad_calibration_and_profiles_give_clear_errors(home):
    with pytest.raises(ProfileError, match="valid frames"):
        calibrate([], "bob")
    with pytest.raises(ProfileError, match="no profile"):
        load_profile("nobody")
    with pytest.raises(ProfileError, match="operator name"):
        save_profile(OperatorProfile(name="../evil"))
    folder = profiles_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eve.json").write_text("{not json")
    with pytest.raises(ProfileError, match="unreadable"):
        load_profile("eve")
    (folder / "eve.json").write_text('{"name": "eve", "scale": 99}')
    with pytest.raises(ProfileError, match="scale"):
        load_profile("eve")
    (folder / "eve.json").write_text('{"name": "eve", "wrist_alignment": [2,0,0,0,1,0,0,0,1]}')
    with pytest.raises(ProfileError, match="rotation"):
        load_profile("eve")
    (folder / "eve.json").write_text('{"name": "eve", "wrist_alignment": [1,0,0,0,1,0,0,0,-1]}')
    with pytest.raises(ProfileError, match="proper rotation"):  # a mirror image
        load_profile("eve")
    (folder / "eve.json").write_text('{"name": "eve", "scale": "1.2"}')  # numeric string: fine
    assert load_profile("eve").scale == 1.2
    (folder / "eve.json").write_text('{"name": "eve", "middle_finger_m": "x"}')
    with pytest.raises(ProfileError, match="invalid"):
        load_profile("eve")
