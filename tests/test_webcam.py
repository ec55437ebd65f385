"""The webcam device: landmark conversion, model lookup, the device loop with fakes, and the
real MediaPipe / OpenCV when they are installed (skipped otherwise)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import math
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from devices.inputs import DEVICES, DeviceStatus
from devices.inputs import webcam as wc
from devices.inputs.human_hand import DEFAULT_HAND, FIST_POSE, JOINT_LOWER, JOINT_UPPER, OPEN_POSE
from devices.inputs.spec import parse_device_spec
from devices.inputs.validate import frame_problem
from devices.inputs.webcam import (
    CAMERA_TO_WORLD,
    MODEL_HINT,
    HandDetection,
    WebcamConfig,
    WebcamDevice,
    WebcamError,
    find_model,
    landmarks_to_frame_arrays,
    mirror_hand,
    normalize_hand,
    operator_hand,
    other_hand,
    wrist_position_from_image,
)
from devices.tick import HumanFrame

HFOV = 60.0
ASPECT = 4.0 / 3.0
RNG_POSES = np.random.default_rng(7).uniform(JOINT_LOWER, JOINT_UPPER, size=(4, 20))
POSES = [OPEN_POSE, FIST_POSE, *RNG_POSES]


# ---------------------------------------------------------------------------- synthetic data
def hand_keypoints(pose: np.ndarray = OPEN_POSE) -> np.ndarray:
    """(21, 3) right-hand keypoints, metres, in the wrist frame."""
    return np.asarray(DEFAULT_HAND.keypoints(pose), dtype=float)


def as_left(kp: np.ndarray) -> np.ndarray:
    """A left hand in the frame with +y toward the little finger (wrist-frame y mirrored)."""
    return kp * np.array([1.0, -1.0, 1.0])


def observe(
    kp: np.ndarray,
    rot_cam: np.ndarray,
    wrist_cam: Sequence[float],
    *,
    aspect: float = ASPECT,
    hfov_deg: float = HFOV,
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-like landmarks of a hand.

    Args:
        kp: (21, 3) keypoints in the hand's own frame (rotation ``rot_cam`` in the camera).
        rot_cam: (3, 3) proper rotation, columns the hand frame's axes in camera axes.
        wrist_cam: (3,) keypoint 0 in the camera frame (x right, y down, z away), metres.

    Returns:
        world (21, 3): metres, camera axes, origin at the centroid (as MediaPipe: near the
        hand's centre); image (21, 3): pinhole projection normalized to [0, 1], z relative.
    """
    pts = np.asarray(wrist_cam, dtype=float) + kp @ rot_cam.T
    k = 2.0 * math.tan(math.radians(hfov_deg) / 2.0)
    u = 0.5 + pts[:, 0] / pts[:, 2] / k
    v = 0.5 + pts[:, 1] / pts[:, 2] * aspect / k
    image = np.stack([u, v, pts[:, 2] - pts[0, 2]], axis=1)
    return pts - pts.mean(axis=0), image


def mirrored(world: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same landmarks as measured in a horizontally mirrored image."""
    img = image.copy()
    img[:, 0] = 1.0 - img[:, 0]
    return mirror_hand(world), img


def random_rotations(n: int, seed: int) -> list[np.ndarray]:
    return list(Rotation.random(n, random_state=seed).as_matrix())


# Camera-frame rotations of the wrist frame (columns: fingers, thumb side, dorsal).
#: Palm toward the camera, fingers up, thumb to the operator's left (the image's right).
PALM_TO_CAMERA = np.column_stack([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
#: Palm down, fingers toward the camera, thumb to the operator's left: world identity.
PALM_DOWN_FORWARD = np.column_stack([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


# ---------------------------------------------------------------------------- pure conversion
def test_camera_to_world_is_a_proper_rotation() -> None:
    assert np.allclose(CAMERA_TO_WORLD @ CAMERA_TO_WORLD.T, np.eye(3))
    assert np.isclose(np.linalg.det(CAMERA_TO_WORLD), 1.0)
    assert np.allclose(CAMERA_TO_WORLD @ [0.0, 0.0, -1.0], [1.0, 0.0, 0.0])  # toward the camera
    assert np.allclose(CAMERA_TO_WORLD @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])  # image right: left
    assert np.allclose(CAMERA_TO_WORLD @ [0.0, -1.0, 0.0], [0.0, 0.0, 1.0])  # image up: up


@pytest.mark.parametrize("pose_index", range(len(POSES)))
def test_right_hand_keypoints_recovered(pose_index: int) -> None:
    kp = hand_keypoints(POSES[pose_index])
    for rot in random_rotations(5, seed=pose_index):
        world, image = observe(kp, rot, [0.05, -0.02, 0.6])
        keypoints, wrist = landmarks_to_frame_arrays(world, image, "Right", False)
        assert keypoints.shape == (21, 3)
        np.testing.assert_allclose(keypoints, kp, atol=1e-9)
        assert np.all(keypoints[0] == 0.0)
        np.testing.assert_allclose(wrist[:3, :3], CAMERA_TO_WORLD @ rot, atol=1e-9)
        np.testing.assert_allclose(wrist[3], [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("pose_index", range(len(POSES)))
def test_left_hand_becomes_right_shaped(pose_index: int) -> None:
    kp = hand_keypoints(POSES[pose_index])
    for rot in random_rotations(5, seed=100 + pose_index):
        world, image = observe(as_left(kp), rot, [-0.1, 0.05, 0.5])
        keypoints, wrist = landmarks_to_frame_arrays(world, image, "left", False)
        np.testing.assert_allclose(keypoints, kp, atol=1e-9)  # shape of a right hand
        # Wrist rotation: +x along the fingers, +y toward the little finger, +z dorsal.
        np.testing.assert_allclose(wrist[:3, :3], CAMERA_TO_WORLD @ rot, atol=1e-9)
        assert np.isclose(np.linalg.det(wrist[:3, :3]), 1.0)
        # Taken for a right hand, it would come out mirrored (dorsal and palmar swapped).
        as_right, _ = landmarks_to_frame_arrays(world, image, "right", False)
        np.testing.assert_allclose(as_right, kp * [1.0, 1.0, -1.0], atol=1e-9)


def test_left_right_shape_differs_by_a_mirror() -> None:
    kp = hand_keypoints(FIST_POSE)
    world, image = observe(kp, PALM_TO_CAMERA, [0.0, 0.0, 0.5])
    right, _ = landmarks_to_frame_arrays(world, image, "right", False)
    left, _ = landmarks_to_frame_arrays(mirror_hand(world), image, "left", False)
    np.testing.assert_allclose(right, left, atol=1e-12)


@pytest.mark.parametrize("hand", ["right", "left"])
def test_mirrored_image_gives_the_same_frame(hand: str) -> None:
    kp = hand_keypoints(POSES[2])
    shape = kp if hand == "right" else as_left(kp)
    for rot in random_rotations(4, seed=5):
        world, image = observe(shape, rot, [0.08, 0.03, 0.7])
        keypoints, wrist = landmarks_to_frame_arrays(world, image, hand, False)
        m_world, m_image = mirrored(world, image)
        # In the mirrored image the hand looks like the other hand, and says so.
        m_kp, m_wrist = landmarks_to_frame_arrays(m_world, m_image, other_hand(hand), True)
        np.testing.assert_allclose(m_kp, keypoints, atol=1e-12)
        np.testing.assert_allclose(m_wrist, wrist, atol=1e-12)


def test_reference_pose_is_the_world_identity() -> None:
    kp = hand_keypoints(OPEN_POSE)
    world, image = observe(kp, PALM_DOWN_FORWARD, [0.0, 0.1, 0.5])
    _, wrist = landmarks_to_frame_arrays(world, image, "right", False)
    np.testing.assert_allclose(wrist[:3, :3], np.eye(3), atol=1e-9)
    # The wrist is below the camera's axis (image y down) and in front of it: world z < 0.
    assert wrist[2, 3] < 0 and wrist[0, 3] < 0


def test_wrist_position_exact_for_a_hand_parallel_to_the_image() -> None:
    flat = hand_keypoints(OPEN_POSE) * [1.0, 1.0, 0.0]  # all points at one depth
    for pos, aspect, hfov in (([0.0, 0.0, 0.5], ASPECT, HFOV), ([0.12, -0.07, 0.8], 16 / 9, 75)):
        world, image = observe(flat, PALM_TO_CAMERA, pos, aspect=aspect, hfov_deg=hfov)
        got = wrist_position_from_image(world, image, aspect=aspect, hfov_deg=hfov)
        np.testing.assert_allclose(got, pos, atol=1e-9)
        _, wrist = landmarks_to_frame_arrays(
            world, image, "right", False, aspect=aspect, hfov_deg=hfov
        )
        np.testing.assert_allclose(wrist[:3, 3], CAMERA_TO_WORLD @ pos, atol=1e-9)


def test_wrist_position_is_coarse_but_sane() -> None:
    kp = hand_keypoints(POSES[3])
    pos = np.array([0.1, 0.05, 0.6])
    for rot in random_rotations(20, seed=11):
        world, image = observe(kp, rot, pos)
        try:
            got = wrist_position_from_image(world, image)
        except ValueError:
            continue  # a hand seen exactly edge-on has no spread
        assert np.linalg.norm(got - pos) < 0.35 * pos[2]


def test_handedness_rules() -> None:
    assert normalize_hand("Right") == "right" and normalize_hand(" LEFT ") == "left"
    with pytest.raises(ValueError, match="right' or 'left"):
        normalize_hand("both")
    assert other_hand("Right") == "left" and other_hand("left") == "right"
    assert operator_hand("Right", False) == "right"
    assert operator_hand("Left", False) == "left"
    assert operator_hand("Right", True) == "left"  # a mirrored left hand looks right
    assert operator_hand("Left", True) == "right"
    pts = np.random.default_rng(0).normal(size=(21, 3))
    np.testing.assert_array_equal(mirror_hand(mirror_hand(pts)), pts)
    np.testing.assert_array_equal(mirror_hand(pts)[:, 1:], pts[:, 1:])
    with pytest.raises(ValueError):
        mirror_hand(np.zeros((21, 2)))


def test_conversion_rejects_bad_input() -> None:
    kp = hand_keypoints()
    world, image = observe(kp, PALM_TO_CAMERA, [0.0, 0.0, 0.5])
    with pytest.raises(ValueError, match=r"\(21, 3\)"):
        landmarks_to_frame_arrays(world[:20], image, "right", False)
    bad = world.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        landmarks_to_frame_arrays(bad, image, "right", False)
    with pytest.raises(ValueError, match="degenerate"):
        landmarks_to_frame_arrays(np.zeros((21, 3)), image, "right", False)
    with pytest.raises(ValueError, match="hand must be"):
        landmarks_to_frame_arrays(world, image, "unknown", False)
    with pytest.raises(ValueError, match="degenerate"):
        wrist_position_from_image(world, np.full((21, 3), 0.5))


# ---------------------------------------------------------------------------- model lookup
def _fake_distribution(root: Path, name: str, rel: str) -> Path:
    """Install a minimal distribution ``name`` under ``root`` whose RECORD lists ``rel``."""
    dist_info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist_info / "RECORD").write_text(f"{rel},,\n{dist_info.name}/METADATA,,\n")
    model = root / rel
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"not really a model")
    return model


def test_find_model_explicit_path(tmp_path: Path) -> None:
    model = tmp_path / "my.task"
    model.write_bytes(b"x")
    assert find_model(model) == model.resolve()
    assert find_model(str(tmp_path / "missing.task")) is None
    assert find_model(tmp_path) is None  # a directory is not a model


def test_find_model_in_a_listed_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _fake_distribution(tmp_path, "fake-hands", "fake_hands/hand_landmarker.task")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(wc.packages, "MODEL_DISTRIBUTIONS", ("not-installed-xyz", "fake-hands"))
    monkeypatch.setattr(wc.packages, "_all_distributions", lambda: [])
    assert find_model() == model.resolve()


def test_find_model_scans_every_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _fake_distribution(tmp_path, "other-pkg", "other_pkg/models/hand_landmarker.task")
    monkeypatch.setattr(wc.packages, "MODEL_DISTRIBUTIONS", ())
    monkeypatch.setattr(
        wc.packages,
        "_all_distributions",
        lambda: importlib.metadata.distributions(path=[str(tmp_path)]),
    )
    assert find_model() == model.resolve()
    model.unlink()  # listed but missing: not found
    assert find_model() is None


# ---------------------------------------------------------------------------- availability
def test_availability_without_mediapipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import raises ImportError
    reason = WebcamDevice.availability()
    assert reason is not None and "mediapipe" in reason and "dexteleop[webcam]" in reason
    assert "\n" not in reason


def test_availability_without_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", types.ModuleType("mediapipe"))
    monkeypatch.setitem(sys.modules, "cv2", None)
    reason = WebcamDevice.availability()
    assert reason is not None and "cv2" in reason and "dexteleop[webcam]" in reason


def test_availability_without_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", types.ModuleType("mediapipe"))
    monkeypatch.setitem(sys.modules, "cv2", types.ModuleType("cv2"))
    monkeypatch.setattr(wc.packages, "find_model", lambda path=None: None)
    assert WebcamDevice.availability() == MODEL_HINT
    assert "webcam:model=PATH" in MODEL_HINT
    monkeypatch.setattr(
        wc.packages, "find_model", lambda path=None: tmp_path / "hand_landmarker.task"
    )
    assert WebcamDevice.availability() is None


def test_module_imports_without_the_optional_packages() -> None:
    # Importing the module (done above) must not have imported mediapipe or cv2.
    code = (
        "import sys; sys.modules['mediapipe'] = None; sys.modules['cv2'] = None\n"
        "import devices.inputs.webcam as w; from devices.inputs import DEVICES\n"
        "d = w.WebcamDevice(w.WebcamConfig()); print(type(d).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "WebcamDevice" in out.stdout


# ---------------------------------------------------------------------------- registry / config
def test_registered_and_configurable() -> None:
    assert DEVICES.get("webcam") is WebcamDevice
    dev = DEVICES.make("webcam", camera=2, hand="Left", min_confidence=0.7)
    assert isinstance(dev, WebcamDevice)
    assert dev.config.camera == 2 and dev.config.hand == "left"
    name, opts = parse_device_spec("webcam:camera=1,hand=left,mirrored=true,hfov_deg=70")
    assert name == "webcam"
    assert opts == {"camera": 1, "hand": "left", "mirrored": True, "hfov_deg": 70.0}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"hand": "both"}, ValueError),
        ({"min_confidence": 1.5}, ValueError),
        ({"camera": -1}, ValueError),
        ({"fps": 0.0}, ValueError),
        ({"width": -5}, ValueError),
        ({"hfov_deg": 180.0}, ValueError),
        ({"video": "/no/such/video.mp4"}, FileNotFoundError),
        ({"model": "/no/such/hand_landmarker.task"}, FileNotFoundError),
    ],
)
def test_bad_settings(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        DEVICES.make("webcam", **overrides)


def test_connect_without_a_model_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wc.packages, "find_model", lambda path=None: None)
    dev = WebcamDevice(WebcamConfig(), open_capture=lambda: ScriptedCapture([]))
    with pytest.raises(WebcamError, match=r"hand_landmarker\.task"):
        dev.connect()
    assert not dev.status().connected


# ---------------------------------------------------------------------------- device fakes
IMAGE = np.zeros((48, 64, 3), dtype=np.uint8)  # BGR, aspect 4:3


class ScriptedCapture:
    """Returns the scripted images (None: a failed read; an exception: raised), then fails:
    after waiting on ``hold`` (the device idles once the script is done), or at once (the end
    of a file) if not ``hold_at_end``."""

    def __init__(
        self,
        script: Sequence[np.ndarray | Exception | None],
        *,
        is_file: bool = False,
        frame_interval_s: float = 0.0,
        hold_at_end: bool = True,
    ) -> None:
        self.script = list(script)
        self.is_file = is_file
        self.frame_interval_s = frame_interval_s
        self.hold_at_end = hold_at_end
        self.index = 0
        self.reads = 0
        self.releases = 0
        self.exhausted = threading.Event()
        self.hold = threading.Event()

    def read(self) -> np.ndarray | None:
        self.reads += 1
        if self.index >= len(self.script):
            self.exhausted.set()
            if self.hold_at_end:
                self.hold.wait(5.0)
            return None
        item = self.script[self.index]
        self.index += 1
        if isinstance(item, Exception):
            raise item
        return item

    def release(self) -> None:
        self.releases += 1


class Opener:
    """``open_capture`` hook: each call returns the next outcome (a capture, or raises)."""

    def __init__(self, outcomes: Sequence[ScriptedCapture | Exception]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> ScriptedCapture:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FakeLandmarker:
    """``make_landmarker`` product: returns scripted detections per call, records stamps."""

    def __init__(self, script: Sequence[list[HandDetection] | Exception]) -> None:
        self.script = list(script)
        self.calls = 0
        self.stamps: list[int] = []
        self.shapes: list[tuple[int, ...]] = []
        self.closed = False

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> list[HandDetection]:
        self.stamps.append(timestamp_ms)
        self.shapes.append(rgb.shape)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        item = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


class RecordingDevice(WebcamDevice):
    """Keeps every published frame."""

    RETRY_MIN_S = 0.001
    RETRY_MAX_S = 0.004

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.published: list[HumanFrame] = []

    def _publish(self, frame: HumanFrame) -> None:
        self.published.append(frame)
        super()._publish(frame)


def detection(
    label: str,
    score: float = 0.95,
    *,
    pose: np.ndarray = OPEN_POSE,
    left: bool = False,
    mirror_image: bool = False,
) -> HandDetection:
    """What MediaPipe would report for a hand held palm-to-camera 0.5 m away."""
    kp = hand_keypoints(pose)
    world, image = observe(as_left(kp) if left else kp, PALM_TO_CAMERA, [0.02, 0.01, 0.5])
    if mirror_image:
        world, image = mirrored(world, image)
    return HandDetection(label=label, score=score, world=world, image=image)


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


def run_script(
    dev: WebcamDevice, capture: ScriptedCapture, check: Callable[[], None] | None = None
) -> DeviceStatus:
    """Connect, let the capture's script play out, run ``check``, disconnect.

    Returns:
        The device's status once the script has played out (before disconnecting: releasing
        the capture afterwards makes one more failed read).
    """
    dev.connect()
    try:
        assert wait_for(capture.exhausted.is_set), "the script did not play out"
        status = dev.status()
        if check is not None:
            check()
    finally:
        capture.hold.set()
        dev.disconnect()
    return status


# ---------------------------------------------------------------------------- device loop
def test_device_publishes_and_counts_every_reason() -> None:
    good = detection("Right", 0.93, pose=POSES[2])
    degenerate = HandDetection("Right", 0.9, np.zeros((21, 3)), np.full((21, 3), 0.5))
    capture = ScriptedCapture(
        [
            *(IMAGE, IMAGE, IMAGE, IMAGE),
            None,
            *(IMAGE, IMAGE, IMAGE),
            OSError("unplugged"),
            IMAGE,
            IMAGE[:, :, 0],  # a grey image
        ]
    )
    opener = Opener([capture, OSError("camera busy"), capture])
    landmarker = FakeLandmarker(
        [
            [good],  # frame
            [],  # no_hand
            [detection("Left", 0.99, left=True)],  # wrong_hand
            [detection("Right", 0.3)],  # low_confidence
            # (read failure: camera_error, reopen fails: camera_error, reopen works)
            [detection("Left", 0.97, left=True), good],  # both hands: the right one
            [degenerate],  # bad_landmarks
            RuntimeError("graph failed"),  # detector_error
            # (read raises: camera_error, reopen works)
            [good],  # frame
            [good],  # frame, from a grey image
        ]
    )
    dev = RecordingDevice(WebcamConfig(), open_capture=opener, make_landmarker=lambda: landmarker)

    def check() -> None:
        status = dev.status()
        assert status.connected
        assert status.rejected == {
            "no_hand": 1,
            "wrong_hand": 1,
            "low_confidence": 1,
            "camera_error": 3,
            "bad_landmarks": 1,
            "detector_error": 1,
        }
        assert status.frames == 4

    run_script(dev, capture, check)
    assert landmarker.closed
    assert opener.calls == 4  # connect + failed reopen + two reopens
    frames = dev.published
    assert [f.seq for f in frames] == [1, 5, 8, 9]  # camera images; gaps: images dropped
    assert all(b.t >= a.t for a, b in itertools.pairwise(frames))
    kp = hand_keypoints(POSES[2])
    for f in frames:
        np.testing.assert_allclose(f.keypoints, kp, atol=1e-9)
        assert f.confidence == pytest.approx(0.93)
        assert f.wrist.shape == (4, 4)
        assert frame_problem(f, last_t=None, min_confidence=0.5) is None
    np.testing.assert_allclose(frames[0].wrist[:3, :3], CAMERA_TO_WORLD @ PALM_TO_CAMERA, atol=1e-9)
    assert np.all(np.diff(landmarker.stamps) > 0)  # strictly increasing timestamps
    assert landmarker.shapes[-1] == (48, 64, 3)  # the grey image became RGB
    stats = dev.stats()
    assert stats.images == 9 and stats.opens == 3 and stats.loops == 0
    assert "webcam" in dev.report_extra()


def test_hand_lost_marks_the_latest_frame() -> None:
    capture = ScriptedCapture([IMAGE, IMAGE])
    landmarker = FakeLandmarker([[detection("Right")], []])
    dev = RecordingDevice(
        WebcamConfig(), open_capture=Opener([capture]), make_landmarker=lambda: landmarker
    )

    def check() -> None:
        latest = dev.latest()
        assert latest is not None and latest.seq == 1 and latest.confidence == 0.0
        assert dev.status().message == "webcam: no hand in view"

    run_script(dev, capture, check)


@pytest.mark.parametrize(
    ("config", "label", "left", "mirror_image", "published"),
    [
        ({"hand": "right"}, "Right", False, False, True),
        ({"hand": "left"}, "Right", False, False, False),
        ({"hand": "left"}, "Left", True, False, True),
        # A selfie-mirrored video: a real right hand looks (and is labelled) left.
        ({"hand": "right", "mirrored": True}, "Left", False, True, True),
        ({"hand": "left", "mirrored": True}, "Left", False, True, False),
        # A model with legacy (selfie) labels calls a real right hand "Left".
        ({"hand": "right", "swap_labels": True}, "Left", False, False, True),
    ],
)
def test_handedness_selection(
    config: dict[str, object], label: str, left: bool, mirror_image: bool, published: bool
) -> None:
    capture = ScriptedCapture([IMAGE])
    det = detection(label, left=left, mirror_image=mirror_image, pose=FIST_POSE)
    landmarker = FakeLandmarker([[det]])
    dev = RecordingDevice(
        WebcamConfig(**config),  # type: ignore[arg-type]
        open_capture=Opener([capture]),
        make_landmarker=lambda: landmarker,
    )
    status = run_script(dev, capture)
    if published:
        assert len(dev.published) == 1 and status.rejected == {}
        np.testing.assert_allclose(dev.published[0].keypoints, hand_keypoints(FIST_POSE), atol=1e-9)
    else:
        assert dev.published == []
        assert status.rejected == {"wrong_hand": 1}


def test_min_confidence_is_respected() -> None:
    capture = ScriptedCapture([IMAGE, IMAGE])
    landmarker = FakeLandmarker([[detection("Right", 0.8)], [detection("Right", 0.9)]])
    dev = RecordingDevice(
        WebcamConfig(min_confidence=0.85),
        open_capture=Opener([capture]),
        make_landmarker=lambda: landmarker,
    )
    status = run_script(dev, capture)
    assert [f.seq for f in dev.published] == [2]
    assert status.rejected == {"low_confidence": 1}


def test_video_file_loops_and_is_paced() -> None:
    files: list[ScriptedCapture] = []

    def open_file() -> ScriptedCapture:
        files.append(
            ScriptedCapture([IMAGE] * 3, is_file=True, frame_interval_s=0.02, hold_at_end=False)
        )
        return files[-1]

    landmarker = FakeLandmarker([[detection("Right")]])
    dev = RecordingDevice(
        WebcamConfig(), open_capture=open_file, make_landmarker=lambda: landmarker
    )
    dev.connect()
    try:
        assert wait_for(lambda: dev.stats().loops >= 3, timeout=5.0)
        status = dev.status()
        assert "camera_error" not in status.rejected  # the end of a file is no error
        assert status.rate_hz == pytest.approx(50.0, rel=0.5)  # paced, not as fast as possible
    finally:
        dev.disconnect()
    assert all(f.releases == 1 for f in files[:-1])
    seqs = [f.seq for f in dev.published]
    assert seqs == list(range(1, len(seqs) + 1))


def test_unreadable_video_is_a_camera_error() -> None:
    capture = ScriptedCapture([], is_file=True)
    capture.hold.set()  # fail at once, every time
    dev = RecordingDevice(
        WebcamConfig(), open_capture=Opener([capture]), make_landmarker=lambda: FakeLandmarker([])
    )
    dev.connect()
    try:
        assert wait_for(lambda: dev.status().rejected.get("camera_error", 0) >= 3)
        assert dev.stats().loops == 0
        assert "reading the camera failed" in dev.status().message
    finally:
        dev.disconnect()


def test_connect_fails_cleanly_when_the_camera_cannot_open() -> None:
    landmarker = FakeLandmarker([])
    dev = WebcamDevice(
        WebcamConfig(),
        open_capture=Opener([WebcamError("cannot open camera 0 with OpenCV")]),
        make_landmarker=lambda: landmarker,
    )
    with pytest.raises(WebcamError, match="camera 0"):
        dev.connect()
    assert landmarker.closed and not dev.status().connected


def test_disconnect_releases_everything() -> None:
    capture = ScriptedCapture([IMAGE])
    landmarker = FakeLandmarker([[detection("Right")]])
    dev = RecordingDevice(
        WebcamConfig(), open_capture=Opener([capture]), make_landmarker=lambda: landmarker
    )
    run_script(dev, capture)
    assert capture.releases >= 1 and landmarker.closed
    assert not dev.status().connected
    dev.disconnect()  # twice is fine


# ---------------------------------------------------------------------------- real packages
_HAVE_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
_HAVE_CV2 = importlib.util.find_spec("cv2") is not None


@pytest.mark.skipif(not _HAVE_MEDIAPIPE, reason="mediapipe is not installed")
def test_real_landmarker_on_a_blank_image() -> None:
    model = find_model()
    if model is None:
        pytest.skip(MODEL_HINT)
    landmarker = wc.MediaPipeLandmarker(model)
    try:
        blank = np.zeros((480, 640, 3), dtype=np.uint8)
        assert landmarker.detect(blank, 1000) == []
        assert landmarker.detect(blank + 128, 1000) == []  # same stamp: forced forward
    finally:
        landmarker.close()


@pytest.mark.skipif(not (_HAVE_MEDIAPIPE and _HAVE_CV2), reason="mediapipe / cv2 not installed")
def test_real_device_plays_a_blank_video(tmp_path: Path) -> None:
    if find_model() is None:
        pytest.skip(MODEL_HINT)
    import cv2

    path = tmp_path / "blank.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, (160, 120))
    for _ in range(5):
        writer.write(np.full((120, 160, 3), 90, dtype=np.uint8))
    writer.release()
    dev = DEVICES.make("webcam", video=str(path))
    dev.connect()
    try:
        assert wait_for(lambda: dev.stats().loops >= 1, timeout=20.0)
        status = dev.status()
        assert status.rejected.get("no_hand", 0) >= 5
        assert "camera_error" not in status.rejected
        assert dev.latest() is None
    finally:
        dev.disconnect()
