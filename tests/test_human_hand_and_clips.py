"""Tests of the human-hand kinematic model and of the replay clip format / generator."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from devices.inputs.clips import (
    CLIP_KINDS,
    Clip,
    ClipFormatError,
    generate_clip,
    load_clip,
    main,
    save_clip,
    validate_clip,
)
from devices.inputs.human_hand import (
    DEFAULT_HAND,
    FIST_POSE,
    JOINT_LOWER,
    JOINT_NAMES,
    JOINT_UPPER,
    OPEN_POSE,
    HumanHandModel,
    keypoints,
    solve_angles,
)
from devices.tick import wrist_frame_from_points

TIPS = {"thumb": 4, "index": 8, "middle": 12, "ring": 16, "pinky": 20}
FINGERS = ("index", "middle", "ring", "pinky")


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(JOINT_LOWER, JOINT_UPPER)


# ---------------------------------------------------------------------------- hand model
def test_joint_tables_are_consistent() -> None:
    assert len(JOINT_NAMES) == 20 == len(set(JOINT_NAMES))
    assert JOINT_LOWER.shape == JOINT_UPPER.shape == OPEN_POSE.shape == (20,)
    assert np.all(JOINT_LOWER < JOINT_UPPER)
    assert np.all((OPEN_POSE >= JOINT_LOWER) & (OPEN_POSE <= JOINT_UPPER))
    assert np.all((FIST_POSE >= JOINT_LOWER) & (FIST_POSE <= JOINT_UPPER))


def test_open_pose_is_in_the_wrist_frame() -> None:
    kp = keypoints(OPEN_POSE)
    assert kp.shape == (21, 3)
    assert np.array_equal(kp[0], np.zeros(3))
    np.testing.assert_allclose(kp[9], [0.092, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(wrist_frame_from_points(kp), np.eye(3), atol=1e-9)
    assert kp[5, 1] > 0 and kp[13, 1] < 0 and kp[17, 1] < 0  # index +y, ring/pinky -y
    assert kp[1, 1] > 0 and kp[1, 2] < 0  # thumb CMC on the thumb side, toward the palm
    np.testing.assert_allclose(kp[5:, 2], 0.0, atol=1e-12)  # flat fingers in z = 0
    for finger in FINGERS:  # straight fingers point along +x
        tip, mcp = TIPS[finger], TIPS[finger] - 3
        direction = (kp[tip] - kp[mcp]) / np.linalg.norm(kp[tip] - kp[mcp])
        assert direction[0] > 0.95
    assert 0.17 < np.linalg.norm(kp[12]) < 0.21  # plausible adult hand length


def test_wrist_frame_is_identity_for_any_pose() -> None:
    rng = np.random.default_rng(1)
    for kp in keypoints(rng.uniform(JOINT_LOWER, JOINT_UPPER, size=(10, 20))):
        np.testing.assert_allclose(wrist_frame_from_points(kp), np.eye(3), atol=1e-9)


@pytest.mark.parametrize("finger", FINGERS)
def test_flexion_curls_toward_the_palm(finger: str) -> None:
    j = JOINT_NAMES.index(f"{finger}_mcp_flex")
    tip = TIPS[finger]
    open_kp = keypoints(OPEN_POSE)
    for k in range(3):  # each of mcp, pip, dip alone
        pose = OPEN_POSE.copy()
        pose[j + k] = 0.5
        kp = keypoints(pose)
        assert kp[tip, 2] < open_kp[tip, 2] - 0.005
        assert np.linalg.norm(kp[tip]) < np.linalg.norm(open_kp[tip]) - 1e-3
        np.testing.assert_allclose(kp[: tip - 3], open_kp[: tip - 3])  # nothing else moves
    previous = open_kp
    for amount in (0.3, 0.6, 0.9, 1.2):  # curling all three shortens the reach monotonically
        pose = OPEN_POSE.copy()
        pose[j : j + 3] = amount
        kp = keypoints(pose)
        assert np.linalg.norm(kp[tip]) < np.linalg.norm(previous[tip]) - 1e-3
        previous = kp
    fist = keypoints(FIST_POSE)
    assert fist[tip, 2] < -0.01
    assert np.linalg.norm(fist[tip]) < 0.7 * np.linalg.norm(keypoints(OPEN_POSE)[tip])


def test_thumb_joints_move_the_thumb_palmward_and_across() -> None:
    open_kp = keypoints(OPEN_POSE)
    opposed = OPEN_POSE.copy()
    opposed[JOINT_NAMES.index("thumb_cmc_abd")] = 1.0
    assert keypoints(opposed)[4, 2] < open_kp[4, 2] - 0.02
    across = OPEN_POSE.copy()
    across[JOINT_NAMES.index("thumb_cmc_flex")] = 0.8
    assert keypoints(across)[4, 1] < open_kp[4, 1] - 0.02
    curled = OPEN_POSE.copy()
    curled[2:4] = 0.9
    assert np.linalg.norm(keypoints(curled)[4] - open_kp[1]) < np.linalg.norm(
        open_kp[4] - open_kp[1]
    )


def test_abduction_turns_fingers_toward_the_thumb() -> None:
    for finger in FINGERS:
        pose = OPEN_POSE.copy()
        pose[JOINT_NAMES.index(f"{finger}_abd")] = 0.2
        assert keypoints(pose)[TIPS[finger], 1] > keypoints(OPEN_POSE)[TIPS[finger], 1] + 0.01


def test_batched_equals_looped() -> None:
    rng = np.random.default_rng(2)
    angles = rng.uniform(JOINT_LOWER, JOINT_UPPER, size=(7, 20))
    batched = DEFAULT_HAND.keypoints(angles)
    assert batched.shape == (7, 21, 3)
    looped = np.stack([DEFAULT_HAND.keypoints(a) for a in angles])
    np.testing.assert_allclose(batched, looped, rtol=0, atol=1e-15)
    nested = DEFAULT_HAND.keypoints(angles[:6].reshape(2, 3, 20))
    np.testing.assert_allclose(nested.reshape(6, 21, 3), looped[:6], rtol=0, atol=1e-15)
    with pytest.raises(ValueError):
        DEFAULT_HAND.keypoints(np.zeros(19))


def test_scale_scales_every_keypoint() -> None:
    rng = np.random.default_rng(3)
    pose = _random_pose(rng)
    small = HumanHandModel(scale=0.85).keypoints(pose)
    np.testing.assert_allclose(small, 0.85 * DEFAULT_HAND.keypoints(pose), atol=1e-12)


def test_model_rejects_geometry_breaking_the_frame() -> None:
    with pytest.raises(ValueError):
        HumanHandModel(middle_mcp=(0.09, 0.01, 0.0))
    with pytest.raises(ValueError):
        HumanHandModel(index_mcp=(0.09, -0.01, 0.0))
    with pytest.raises(ValueError):
        HumanHandModel(scale=0.0)


@pytest.mark.parametrize("seed", [10, 11, 12, 13])
def test_solve_angles_recovers_random_pose(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = _random_pose(rng)
    target = keypoints(truth)
    solved = solve_angles(target)
    assert solved.shape == (20,)
    assert np.all(solved >= JOINT_LOWER) and np.all(solved <= JOINT_UPPER)
    assert np.linalg.norm(keypoints(solved) - target, axis=-1).max() < 0.002


def test_solve_angles_respects_limits_for_unreachable_targets() -> None:
    beyond = JOINT_UPPER + 0.5  # hyper-flexed hand, outside every limit
    solved = solve_angles(keypoints(beyond), initial=FIST_POSE)
    assert np.all(solved >= JOINT_LOWER) and np.all(solved <= JOINT_UPPER)
    # Fitting only the thumb tip leaves the other joints at the initial guess.
    target = np.full((21, 3), np.nan)
    target[4] = keypoints(FIST_POSE)[4]
    thumb_only = solve_angles(target, initial=OPEN_POSE, indices=[4])
    np.testing.assert_allclose(thumb_only[4:], OPEN_POSE[4:], atol=1e-9)
    assert np.linalg.norm(keypoints(thumb_only)[4] - target[4]) < 0.002


# ---------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return {kind: generate_clip(kind, seed=0) for kind in CLIP_KINDS}


def _tip_distance(clip: Clip, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(clip.keypoints[:, TIPS[a]] - clip.keypoints[:, TIPS[b]], axis=-1)


@pytest.mark.parametrize("kind", CLIP_KINDS)
def test_generated_clip_is_valid_and_smooth(kind: str, clips: dict[str, Clip]) -> None:
    clip = clips[kind]
    validate_clip(clip, name=kind)
    assert clip.keypoints.shape == (len(clip), 21, 3) and clip.wrist.shape == (len(clip), 4, 4)
    np.testing.assert_allclose(np.diff(clip.t), 1 / 30.0, atol=1e-9)
    if kind == "demo":
        assert 25.0 <= clip.duration_s <= 30.0
    else:
        assert clip.duration_s == pytest.approx(6.0)
        assert len(clip) == 181
    assert np.all(clip.keypoints[:, 0] == 0.0)
    step = np.linalg.norm(np.diff(clip.keypoints, axis=0), axis=-1).max()
    assert step < 0.02
    for i in range(0, len(clip), 37):
        np.testing.assert_allclose(wrist_frame_from_points(clip.keypoints[i]), np.eye(3), atol=1e-9)
    # The hand actually moves (except in wrist_rotation, where it stays still).
    spread = np.ptp(clip.keypoints, axis=0).max()
    assert spread < 0.01 if kind == "wrist_rotation" else spread > 0.03


@pytest.mark.parametrize("kind", CLIP_KINDS)
def test_generation_is_deterministic(kind: str, clips: dict[str, Clip]) -> None:
    again = generate_clip(kind, seed=0)
    for name in ("t", "keypoints", "wrist"):
        assert np.array_equal(getattr(again, name), getattr(clips[kind], name))
    other = generate_clip(kind, seed=1)
    assert not np.array_equal(other.keypoints, clips[kind].keypoints)


@pytest.mark.parametrize("finger", FINGERS)
def test_pinch_reaches_contact(finger: str, clips: dict[str, Clip]) -> None:
    for seed in (0, 5):
        clip = clips[f"pinch_{finger}"] if seed == 0 else generate_clip(f"pinch_{finger}", seed=5)
        distance = _tip_distance(clip, "thumb", finger)
        assert distance.min() < 0.015
        assert distance.max() > 0.04  # and opens again
        others = [f for f in FINGERS if f != finger]
        at_peak = int(np.argmin(distance))
        assert all(_tip_distance(clip, "thumb", f)[at_peak] > 0.015 for f in others)
    demo_distance = _tip_distance(clips["demo"], "thumb", finger)
    assert demo_distance.min() < 0.015


def test_tripod_and_power_grasp(clips: dict[str, Clip]) -> None:
    tripod = clips["tripod"]
    both = np.maximum(
        _tip_distance(tripod, "thumb", "index"), _tip_distance(tripod, "thumb", "middle")
    )
    assert both.min() < 0.015
    power = clips["power_grasp"]
    closed = power.keypoints[np.argmin(power.keypoints[:, 12, 0])]
    for finger in FINGERS:  # fingertips curled back below the palm
        assert closed[TIPS[finger], 2] < -0.03
        assert closed[TIPS[finger], 0] < closed[TIPS[finger] - 2, 0] + 0.01


def test_open_close_reaches_a_fist(clips: dict[str, Clip]) -> None:
    tips = clips["open_close"].keypoints[:, [8, 12, 16, 20]]
    reach = np.linalg.norm(tips, axis=-1).mean(axis=1)
    assert reach.max() > 0.15 and reach.min() < 0.11


def test_wrist_poses(clips: dict[str, Clip]) -> None:
    for kind, clip in clips.items():
        offset = np.linalg.norm(clip.wrist[:, :3, 3] - [0.0, 0.0, 0.3], axis=-1)
        assert offset.max() < 0.005
        if kind not in ("wrist_rotation", "demo"):
            np.testing.assert_allclose(
                clip.wrist[:, :3, :3], np.broadcast_to(np.eye(3), (len(clip), 3, 3))
            )
    rot = clips["wrist_rotation"].wrist[:, :3, :3]
    roll = np.degrees(np.arctan2(rot[:, 2, 1], rot[:, 1, 1]))
    assert roll.max() > 55 and roll.min() < -55 and np.abs(roll).max() < 62
    assert rot[:, 0, 0].min() > np.cos(np.radians(15.0))  # the x axis stays near world x
    pitch = np.degrees(np.arcsin(rot[:, 0, 2]))
    assert 2 < np.abs(pitch).max() < 15


def test_generate_clip_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown clip kind"):
        generate_clip("juggle")
    with pytest.raises(ValueError):
        generate_clip("open_close", duration_s=0.0)
    with pytest.raises(ValueError):
        generate_clip("open_close", rate_hz=-1.0)


# ---------------------------------------------------------------------------- file format
def _small_clip() -> Clip:
    clip = generate_clip("pinch_index", duration_s=1.0, seed=3)
    clip.t = clip.t + 12.5  # t may start anywhere
    clip.buttons = {"trigger": np.linspace(0.0, 1.0, len(clip)), "a": np.zeros(len(clip))}
    return clip


def test_save_load_round_trip(tmp_path: Path) -> None:
    clip = _small_clip()
    path = tmp_path / "round.npz"
    save_clip(clip, path)
    loaded = load_clip(path)
    assert len(loaded) == len(clip) and loaded.duration_s == pytest.approx(clip.duration_s)
    assert loaded.t.dtype == loaded.keypoints.dtype == loaded.wrist.dtype == np.float64
    assert np.array_equal(loaded.t, clip.t)
    f32 = np.float32
    assert np.array_equal(loaded.keypoints, clip.keypoints.astype(f32).astype(np.float64))
    assert np.array_equal(loaded.wrist, clip.wrist.astype(f32).astype(np.float64))
    assert set(loaded.buttons) == {"trigger", "a"}
    for name, values in clip.buttons.items():
        assert np.array_equal(loaded.buttons[name], values.astype(f32).astype(np.float64))
    frame = loaded.frame(3)
    assert frame.seq == 3 and frame.t == loaded.t[3] and frame.buttons["trigger"] > 0


def test_save_rejects_invalid_clip(tmp_path: Path) -> None:
    clip = _small_clip()
    clip.keypoints = clip.keypoints[:, :20]
    path = tmp_path / "bad.npz"
    with pytest.raises(ClipFormatError, match="keypoints"):
        save_clip(clip, path)
    assert not path.exists()


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _arrays() -> dict[str, np.ndarray]:
    clip = _small_clip()
    return {
        "t": clip.t,
        "keypoints": clip.keypoints,
        "wrist": clip.wrist,
        "rate_hz": np.array(30.0),
    }


def _malformed(kind: str) -> dict[str, np.ndarray]:
    arrays = _arrays()
    if kind == "missing key":
        del arrays["wrist"]
    elif kind == "keypoint shape":
        arrays["keypoints"] = arrays["keypoints"][:, :20]
    elif kind == "nan":
        arrays["keypoints"][4, 7, 1] = np.nan
    elif kind == "t not increasing":
        arrays["t"][5] = arrays["t"][4]
    elif kind == "length mismatch":
        arrays["wrist"] = arrays["wrist"][:-1]
    elif kind == "not orthonormal":
        arrays["wrist"][2, :3, :3] *= 1.1
    elif kind == "reflection":
        arrays["wrist"][2, :3, 0] *= -1
    elif kind == "last row":
        arrays["wrist"][1, 3, 0] = 0.5
    elif kind == "one frame":
        arrays = {k: v[:1] if v.ndim else v for k, v in arrays.items()}
    elif kind == "bad dtype":
        arrays["t"] = arrays["t"].astype(str)
    elif kind == "bad button":
        arrays["buttons_grip"] = np.zeros(3)
    return arrays


MALFORMED = {
    "missing key": "missing key 'wrist'",
    "keypoint shape": "expected (T, 21, 3)",
    "nan": "non-finite",
    "t not increasing": "not strictly increasing",
    "length mismatch": "length mismatch",
    "not orthonormal": "not orthonormal",
    "reflection": "determinant",
    "last row": "last row",
    "one frame": "at least 2",
    "bad dtype": "dtype",
    "bad button": "buttons_grip",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_load_rejects_malformed_clip(kind: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "clip.npz", **_malformed(kind))
    with pytest.raises(ClipFormatError) as info:
        load_clip(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert MALFORMED[kind] in message


def test_keypoint_shape_message_is_explicit(tmp_path: Path) -> None:
    arrays = _arrays()
    n = len(arrays["t"])
    arrays["keypoints"] = np.zeros((n, 20, 3))
    path = _write(tmp_path / "clip.npz", **arrays)
    with pytest.raises(ClipFormatError) as info:
        load_clip(path)
    assert str(info.value) == (
        f"{path}: 'keypoints' has shape ({n}, 20, 3), expected (T, 21, 3) with T={n}"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not a zip file at all\n\x00\x01", "not a valid .npz"),
        (b"PK\x03\x04garbage after a zip signature", "not a valid .npz"),
        (b"", "not a valid .npz"),
    ],
)
def test_load_rejects_non_npz_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(ClipFormatError, match=re.escape(expected)) as info:
        load_clip(path)
    assert "\n" not in str(info.value) and "garbage.npz" in str(info.value)


def test_load_rejects_npy_missing_and_directory(tmp_path: Path) -> None:
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ClipFormatError, match=r"single \.npy array"):
        load_clip(npy)
    with pytest.raises(ClipFormatError, match="file not found"):
        load_clip(tmp_path / "nope.npz")
    with pytest.raises(ClipFormatError, match="cannot read"):
        load_clip(tmp_path)


def test_load_rejects_non_array_member(tmp_path: Path) -> None:
    path = tmp_path / "clip.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("t.npy", b"not an npy header")
    with pytest.raises(ClipFormatError) as info:
        load_clip(path)
    assert "'t'" in str(info.value) and "\n" not in str(info.value)


def test_cli_writes_the_shipped_clips(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "out"), "--duration", "1.0"]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{kind}.npz" for kind in CLIP_KINDS)
    assert len(load_clip(tmp_path / "out" / "demo.npz")) > 700


# ---------------------------------------------------------------------------- fuzzing
def _valid_npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_arrays())
    return buffer.getvalue()


_VALID = _valid_npz_bytes()


@st.composite
def _corrupted(draw: st.DrawFn) -> bytes:
    data = bytearray(_VALID)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),
        _corrupted(),
    )
)
def test_fuzz_random_bytes_only_raise_clip_format_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "clip.npz"
    path.write_bytes(content)
    try:
        load_clip(path)
    except ClipFormatError as err:
        assert "\n" not in str(err)


_dtypes = st.sampled_from(["float64", "float32", "int32", "bool", "complex64", "U3"])
_shapes = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    st.sampled_from([(3,), (3, 21, 3), (3, 4, 4), (2, 21, 3), (3, 3, 4)]),
)
_arrays_strategy = st.builds(
    lambda dtype, shape, seed: np.random.default_rng(seed).normal(size=shape).astype(dtype),
    _dtypes,
    _shapes,
    st.integers(0, 2**16),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrays=st.dictionaries(
        st.sampled_from(["t", "keypoints", "wrist", "buttons_x", "buttons_", "rate_hz", "other"]),
        st.one_of(
            _arrays_strategy,
            hnp.arrays(np.float64, st.sampled_from([(3,), (3, 21, 3), (3, 4, 4)])),
        ),
    )
)
def test_fuzz_random_arrays_only_raise_clip_format_error(
    tmp_path_factory: pytest.TempPathFactory, arrays: dict[str, np.ndarray]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "clip.npz"
    np.savez(path, **arrays)
    try:
        clip = load_clip(path)
    except ClipFormatError as err:
        assert "\n" not in str(err)
    else:
        validate_clip(clip)
