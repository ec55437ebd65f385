"""The Vive tracker device against a fake of the OpenVR subset it uses, and the real openvr."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from devices.clock import RealClock
from devices.inputs.base import DEVICES
from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
from devices.inputs.validate import frame_problem
from devices.inputs.vive import (
    OPENVR_TO_WORLD,
    ViveConfig,
    ViveDevice,
    ViveError,
    list_trackers,
    mount_from_reference,
    mount_matrix,
    openvr_to_world,
)

# Real OpenVR enum values (the code must only use them through the api object).
GENERIC_TRACKER, HMD, CONTROLLER, INVALID = 3, 1, 2, 0
RUNNING_OK, OUT_OF_RANGE = 200, 201

#: A tracker rotation (OpenVR frame) whose local x points forward (-z_vr), local z up (+y_vr)
#: and local y left (-x_vr): in our world its rotation is the identity.
FORWARD_UP_VR = OPENVR_TO_WORLD.T.copy()


def vr_pose(rotation: np.ndarray, position: tuple[float, float, float]) -> np.ndarray:
    """(4, 4) pose in the OpenVR standing frame."""
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = position
    return pose


@dataclass
class FakePose:
    """Mimics ``openvr.TrackedDevicePose_t`` (only the fields the device reads)."""

    mDeviceToAbsoluteTracking: list[list[float]]
    eTrackingResult: int = RUNNING_OK
    bPoseIsValid: bool = True
    bDeviceIsConnected: bool = True


@dataclass
class FakeDevice:
    cls: int
    serial: str
    pose: FakePose


class FakeSystem:
    """Mimics the ``IVRSystem`` methods the device calls."""

    def __init__(self, api: FakeOpenVR) -> None:
        self.api = api

    def getDeviceToAbsoluteTrackingPose(
        self, origin: int, predicted: float, poses: object
    ) -> list[FakePose]:
        assert origin == FakeOpenVR.TrackingUniverseStanding
        assert predicted == 0
        assert poses == FakeOpenVR.k_unMaxTrackedDeviceCount
        with self.api.lock:
            self.api.polls += 1
            if self.api.fail_polls:
                raise OSError("fake IPC failure")
            out = [FakePose([[0.0] * 4] * 3, 0, False, False)] * poses
            for i, dev in self.api.devices.items():
                out[i] = dev.pose
            return out

    def getTrackedDeviceClass(self, index: int) -> int:
        with self.api.lock:
            self.api.class_queries += 1
            dev = self.api.devices.get(index)
            return INVALID if dev is None else dev.cls

    def getStringTrackedDeviceProperty(self, index: int, prop: int) -> str:
        assert prop == FakeOpenVR.Prop_SerialNumber_String
        with self.api.lock:
            return self.api.devices[index].serial


class FakeOpenVR:
    """Exactly the subset of the ``openvr`` module the device uses, poses set by the test."""

    VRApplication_Other = 0
    TrackingUniverseStanding = 1
    k_unMaxTrackedDeviceCount = 64
    TrackedDeviceClass_GenericTracker = GENERIC_TRACKER
    Prop_SerialNumber_String = 1002
    TrackingResult_Running_OK = RUNNING_OK

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.devices: dict[int, FakeDevice] = {}
        self.inits = 0
        self.shutdowns = 0
        self.polls = 0
        self.class_queries = 0
        self.fail_polls = False

    def add(self, index: int, serial: str, pose: np.ndarray | None = None, cls: int = 3) -> None:
        pose = vr_pose(FORWARD_UP_VR, (0.0, 1.0, 0.0)) if pose is None else pose
        with self.lock:
            self.devices[index] = FakeDevice(cls, serial, FakePose(pose[:3].tolist()))

    def set_pose(self, serial: str, pose: np.ndarray | None = None, **fields: object) -> None:
        with self.lock:
            dev = next(d for d in self.devices.values() if d.serial == serial)
            matrix = dev.pose.mDeviceToAbsoluteTracking if pose is None else pose[:3].tolist()
            dev.pose = FakePose(matrix, **fields)  # type: ignore[arg-type]

    def unplug(self, serial: str) -> None:
        with self.lock:
            index = next(i for i, d in self.devices.items() if d.serial == serial)
            del self.devices[index]

    def init(self, application_type: int) -> FakeSystem:
        assert application_type == self.VRApplication_Other
        self.inits += 1
        return FakeSystem(self)

    def shutdown(self) -> None:
        self.shutdowns += 1


def wait_for(pred: Callable[[], bool], timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


@pytest.fixture
def fake() -> FakeOpenVR:
    api = FakeOpenVR()
    api.add(0, "HMD-0", cls=HMD)
    api.add(1, "CTRL-1", cls=CONTROLLER)
    api.add(3, "LHR-WRIST")
    return api


@pytest.fixture
def make_device():
    made: list[ViveDevice] = []

    def make(api: FakeOpenVR, **overrides: object) -> ViveDevice:
        overrides.setdefault("rate_hz", 250.0)
        dev = ViveDevice(ViveConfig(**overrides), api=api)  # type: ignore[arg-type]
        dev.REENUMERATE_S = 0.05
        dev.REENUMERATE_MISSING_S = 0.02
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.disconnect()


def next_frame(dev: ViveDevice, after: int = -1):
    assert wait_for(lambda: (f := dev.latest()) is not None and f.seq > after)
    return dev.latest()


# ---- enumeration and selection -------------------------------------------------------------


def test_list_trackers_lists_generic_trackers_by_serial(fake):
    fake.add(7, "LHR-OTHER")
    assert list_trackers(fake) == ["LHR-OTHER", "LHR-WRIST"]  # HMD and controller left out
    assert fake.inits == 1 and fake.shutdowns == 1


def test_the_only_tracker_is_chosen_and_a_serial_picks_one_of_several(fake, make_device):
    dev = make_device(fake)
    dev.connect(RealClock())
    assert dev.serial == "LHR-WRIST"
    dev.disconnect()

    fake.add(7, "LHR-OTHER", vr_pose(np.eye(3), (0.3, 1.1, -0.2)))
    dev = make_device(fake, tracker="LHR-OTHER")
    dev.connect(RealClock())
    assert dev.serial == "LHR-OTHER"
    frame = next_frame(dev)
    assert set(frame.controllers) == {"LHR-OTHER", "LHR-WRIST"}
    np.testing.assert_allclose(frame.wrist, frame.controllers["LHR-OTHER"])
    assert dev.trackers() == ["LHR-OTHER", "LHR-WRIST"]


def test_several_trackers_without_a_serial_is_an_error_naming_them(fake, make_device):
    fake.add(7, "LHR-OTHER")
    dev = make_device(fake)
    with pytest.raises(RuntimeError, match=r"2 Vive trackers found \(LHR-OTHER, LHR-WRIST\)"):
        dev.connect(RealClock())
    assert fake.shutdowns == 1 and not dev.status().connected


def test_no_tracker_or_an_unknown_serial_is_a_clear_error(make_device, fake):
    empty = FakeOpenVR()
    empty.add(0, "HMD-0", cls=HMD)
    with pytest.raises(ViveError, match="no Vive tracker found"):
        make_device(empty).connect(RealClock())
    assert empty.shutdowns == 1
    with pytest.raises(ViveError, match=r"'LHR-NOPE' not found.*LHR-WRIST"):
        make_device(fake, tracker="LHR-NOPE").connect(RealClock())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="16 numbers"):
        ViveDevice(ViveConfig(mount=(1.0, 0.0)), api=FakeOpenVR())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="proper rotation"):
        ViveDevice(ViveConfig(mount=tuple(np.diag([1.0, 1.0, -1.0, 1.0]).ravel())))
    as_text = mount_matrix("1 0 0 0.1, 0 1 0 0, 0 0 1 -0.02, 0 0 0 1")
    np.testing.assert_allclose(as_text[:3, 3], [0.1, 0.0, -0.02])
    with pytest.raises(ValueError, match="16 numbers"):
        mount_matrix("1 0 0 x")
    with pytest.raises(ValueError, match="rate_hz"):
        ViveDevice(ViveConfig(rate_hz=0.0))


# ---- poses -----------------------------------------------------------------------------------


def test_axis_conversion_matrix_is_the_documented_rotation():
    c = OPENVR_TO_WORLD
    np.testing.assert_allclose(c @ c.T, np.eye(3))
    assert np.linalg.det(c) == pytest.approx(1.0)
    np.testing.assert_allclose(c @ [0, 0, -1], [1, 0, 0])  # OpenVR forward -> world +x
    np.testing.assert_allclose(c @ [0, 1, 0], [0, 0, 1])  # OpenVR up -> world +z
    np.testing.assert_allclose(c @ [1, 0, 0], [0, -1, 0])  # OpenVR right -> world -y


def test_published_wrist_is_the_converted_tracker_pose(fake, make_device):
    # Tracker 0.5 m forward, 0.1 m right, 1.2 m up; its x along forward, z up.
    fake.set_pose("LHR-WRIST", vr_pose(FORWARD_UP_VR, (0.1, 1.2, -0.5)))
    dev = make_device(fake)
    clock = RealClock()
    t0 = clock.now()
    dev.connect(clock)
    frame = next_frame(dev)
    expected = np.eye(4)
    expected[:3, 3] = [0.5, -0.1, 1.2]
    np.testing.assert_allclose(frame.wrist, expected, atol=1e-12)
    np.testing.assert_allclose(frame.controllers["LHR-WRIST"], expected, atol=1e-12)
    np.testing.assert_allclose(frame.keypoints, DEFAULT_HAND.keypoints(OPEN_POSE))
    assert frame.confidence == 1.0 and t0 <= frame.t <= clock.now()
    assert frame_problem(frame, last_t=None, min_confidence=0.5) is None

    # Now the tracker's x points to the user's right (+x_vr), z still up: world -y.
    yaw_right = np.column_stack([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    fake.set_pose("LHR-WRIST", vr_pose(yaw_right, (0.0, 1.0, 0.0)))
    frame = next_frame(dev, frame.seq)
    frame = next_frame(dev, frame.seq)  # one polled after the change for sure
    np.testing.assert_allclose(frame.wrist[:3, 0], [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(frame.wrist[:3, 2], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(frame.wrist, openvr_to_world(vr_pose(yaw_right, (0, 1, 0))))


def test_sequence_numbers_increase_at_about_the_polling_rate(fake, make_device):
    dev = make_device(fake, rate_hz=100.0)
    dev.connect(RealClock())
    time.sleep(0.3)
    status = dev.status()
    assert 8 <= status.frames <= 35
    first = dev.latest()
    later = next_frame(dev, first.seq)
    assert later.seq > first.seq and later.t > first.t


def test_mount_is_applied_in_the_tracker_frame(fake, make_device):
    fake.set_pose("LHR-WRIST", vr_pose(FORWARD_UP_VR, (0.0, 1.0, -0.4)))  # world: (0.4, 0, 1)
    mount = np.eye(4)
    mount[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # 90 deg about z
    mount[:3, 3] = [0.02, 0.0, -0.03]
    dev = make_device(fake, mount=tuple(mount.ravel()))
    dev.connect(RealClock())
    frame = next_frame(dev)
    np.testing.assert_allclose(frame.wrist[:3, :3], mount[:3, :3], atol=1e-12)
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.42, 0.0, 0.97], atol=1e-12)
    # The controllers entry is the tracker itself, without the mount.
    np.testing.assert_allclose(frame.controllers["LHR-WRIST"][:3, 3], [0.4, 0.0, 1.0])


def test_mount_from_reference_recovers_the_mount():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    mount = np.eye(4)
    mount[:3, :3] = q
    mount[:3, 3] = [0.01, -0.02, 0.05]
    wrist = np.eye(4)  # reference pose: wrist axes = world axes
    wrist[:3, 3] = [0.3, 0.1, 1.0]
    tracker = wrist @ np.linalg.inv(mount)
    got = mount_matrix(mount_from_reference(tracker, wrist[:3, 3]))
    np.testing.assert_allclose(got, mount, atol=1e-9)
    rotation_only = mount_matrix(mount_from_reference(tracker))
    np.testing.assert_allclose(rotation_only[:3, :3], q, atol=1e-9)
    np.testing.assert_allclose(rotation_only[:3, 3], 0.0, atol=1e-9)


# ---- tracking loss, unplugging, errors -------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"bPoseIsValid": False},
        {"bDeviceIsConnected": False},
        {"eTrackingResult": OUT_OF_RANGE},
    ],
    ids=["invalid", "disconnected", "out_of_range"],
)
def test_tracking_loss_stops_frames_and_recovery_resumes_them(fake, make_device, fields):
    dev = make_device(fake)
    dev.connect(RealClock())
    good = next_frame(dev)
    fake.set_pose("LHR-WRIST", **fields)
    assert wait_for(lambda: dev.status().rejected.get("tracking_lost") == 1)
    frames = dev.status().frames
    lost = dev.latest()
    assert lost.confidence == 0.0 and lost.seq >= good.seq
    time.sleep(0.1)  # ~25 polls: nothing new, and the loss is counted once
    status = dev.status()
    assert status.frames == frames and status.rejected == {"tracking_lost": 1}
    assert "tracking lost" in status.message
    assert dev.latest().seq == lost.seq
    assert frame_problem(dev.latest(), last_t=None, min_confidence=0.5) == "low_confidence"

    fake.set_pose("LHR-WRIST")  # tracking again
    back = next_frame(dev, lost.seq)
    assert back.confidence == 1.0 and back.t > lost.t
    assert dev.status().message == "" and dev.status().rejected == {"tracking_lost": 1}


@pytest.mark.parametrize("vanishes", [True, False], ids=["vanishes", "listed_disconnected"])
def test_tracker_unplugged_and_replugged(fake, make_device, vanishes):
    """OpenVR may drop the device (it comes back on another index) or keep listing it."""
    fake.add(7, "LHR-OTHER")
    dev = make_device(fake, tracker="LHR-WRIST")
    dev.connect(RealClock())
    first = next_frame(dev)
    if vanishes:
        fake.unplug("LHR-WRIST")
    else:
        fake.set_pose("LHR-WRIST", bPoseIsValid=False, bDeviceIsConnected=False)
    assert wait_for(lambda: dev.status().rejected.get("tracking_lost") == 1)
    assert "LHR-WRIST" in dev.status().message
    frames, polls, queries = dev.status().frames, fake.polls, fake.class_queries
    time.sleep(0.1)  # several re-enumerations: still one loss, no frames
    assert dev.status().frames == frames and dev.status().rejected == {"tracking_lost": 1}
    enumerations = (fake.class_queries - queries) / fake.k_unMaxTrackedDeviceCount
    assert 1 <= enumerations <= (fake.polls - polls) / 2  # throttled, not on every poll
    assert "LHR-OTHER" in dev.latest().controllers
    if vanishes:
        assert dev.trackers() == ["LHR-OTHER"]
        fake.add(12, "LHR-WRIST", vr_pose(FORWARD_UP_VR, (0.0, 1.5, -0.2)))
    else:
        fake.set_pose("LHR-WRIST", vr_pose(FORWARD_UP_VR, (0.0, 1.5, -0.2)))
    back = next_frame(dev, dev.latest().seq)
    assert back.seq > first.seq and back.confidence == 1.0
    np.testing.assert_allclose(back.wrist[:3, 3], [0.2, 0.0, 1.5], atol=1e-12)
    assert set(back.controllers) == {"LHR-OTHER", "LHR-WRIST"}
    assert dev.trackers() == ["LHR-OTHER", "LHR-WRIST"]


def test_the_thread_survives_exceptions(fake, make_device):
    dev = make_device(fake)
    dev.connect(RealClock())
    next_frame(dev)
    fake.fail_polls = True
    assert wait_for(lambda: dev.status().rejected.get("device_error") == 1)
    polls = fake.polls
    assert wait_for(lambda: fake.polls > polls + 5)  # still polling
    assert dev._thread is not None and dev._thread.is_alive()
    assert "fake IPC failure" in dev.status().message
    fake.fail_polls = False
    next_frame(dev, dev.latest().seq)


def test_disconnect_joins_the_thread_quickly_and_shuts_openvr_down(fake, make_device):
    dev = make_device(fake, rate_hz=2.0)  # a long wait between polls must not delay stopping
    dev.connect(RealClock())
    thread = dev._thread
    assert thread is not None
    next_frame(dev)
    time.sleep(0.05)
    start = time.monotonic()
    dev.disconnect()
    assert time.monotonic() - start < 0.5
    assert not thread.is_alive()
    assert fake.shutdowns == 1 and not dev.status().connected
    before = dev.latest().seq
    dev.connect(RealClock())  # connecting again works
    next_frame(dev, before)


def test_registered_in_the_device_registry():
    assert "vive" in DEVICES and DEVICES.get("vive") is ViveDevice
    dev = DEVICES.make("vive", tracker="LHR-X", rate_hz=60.0)
    assert isinstance(dev, ViveDevice) and dev.config.glove_port == 9870


# ---- the real openvr package (no SteamVR runtime on this machine) ----------------------------


def _runtime_installed() -> bool:
    try:
        import openvr
    except (ImportError, OSError):
        return False
    return bool(openvr.isRuntimeInstalled())


needs_no_runtime = pytest.mark.skipif(
    importlib.util.find_spec("openvr") is None or _runtime_installed(),
    reason="needs the openvr package and no SteamVR runtime installed",
)


@needs_no_runtime
def test_real_openvr_without_runtime_gives_a_clear_error():
    dev = ViveDevice(ViveConfig())
    with pytest.raises(RuntimeError) as info:
        dev.connect(RealClock())
    message = str(info.value)
    assert message.startswith("OpenVR runtime not found (InitError_Init_PathRegistryNotFound)")
    assert "install SteamVR" in message and "\n" not in message
    assert not dev.status().connected
    reason = ViveDevice.availability()
    assert reason is not None and "SteamVR" in reason and "\n" not in reason
    with pytest.raises(ViveError, match="InitError_Init_PathRegistryNotFound"):
        list_trackers()


def test_availability_with_a_fake_api(fake):
    class Installed(FakeOpenVR):
        def isRuntimeInstalled(self) -> bool:
            return True

    class NotInstalled(FakeOpenVR):
        def isRuntimeInstalled(self) -> bool:
            return False

    class InitError_Init_HmdNotFound(Exception):
        pass

    class NoServer(FakeOpenVR):
        def init(self, application_type: int) -> FakeSystem:
            raise InitError_Init_HmdNotFound()

    assert ViveDevice.availability(Installed()) is None  # type: ignore[arg-type]
    assert "not installed" in ViveDevice.availability(NotInstalled())  # type: ignore[arg-type]
    assert ViveDevice.availability(fake) is None  # type: ignore[arg-type]  (init/shutdown)
    assert fake.inits == 1 and fake.shutdowns == 1
    reason = ViveDevice.availability(NoServer())  # type: ignore[arg-type]
    assert reason is not None and "InitError_Init_HmdNotFound" in reason


# ---- with a glove ----------------------------------------------------------------------------


def test_glove_host_without_the_glove_module_is_a_clear_error(fake, make_device, monkeypatch):
    monkeypatch.setitem(sys.modules, "devices.inputs.glove", None)  # as if glove.py were absent
    dev = make_device(fake, glove_host="127.0.0.1", glove_port=9999)
    with pytest.raises(ViveError, match="glove device is missing"):
        dev.connect(RealClock())
    assert fake.shutdowns == 1 and not dev.status().connected


needs_glove = pytest.mark.skipif(
    importlib.util.find_spec("devices.inputs.glove") is None,
    reason="devices/inputs/glove.py is not written yet",
)


@needs_glove
def test_composes_with_a_real_glove_receiver(fake, make_device):
    from devices.inputs.glove import encode_packet
    from devices.inputs.human_hand import FIST_POSE

    fake.set_pose("LHR-WRIST", vr_pose(FORWARD_UP_VR, (0.0, 1.0, -0.3)))
    dev = make_device(fake, glove_host="127.0.0.1", glove_port=0, glove_max_age_s=0.15)
    dev.connect(RealClock())
    glove = dev.glove
    assert glove is not None and glove.port  # an ephemeral port was bound
    # No glove data yet: nothing is published (no open-hand fallback with a glove).
    assert wait_for(lambda: dev.status().rejected.get("glove_stale") == 1)
    assert dev.latest() is None

    fist = DEFAULT_HAND.keypoints(FIST_POSE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(
            encode_packet(0, time.monotonic(), keypoints=fist, confidence=0.9),
            ("127.0.0.1", glove.port),
        )
    frame = next_frame(dev)
    np.testing.assert_allclose(frame.keypoints, fist, atol=1e-9)
    assert frame.confidence == pytest.approx(0.9)
    np.testing.assert_allclose(frame.wrist[:3, 3], [0.3, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(frame.wrist[:3, :3], np.eye(3), atol=1e-12)
    assert frame_problem(frame, last_t=None, min_confidence=0.5) is None

    # The glove falls silent: frames stop once its data is older than glove_max_age_s.
    assert wait_for(lambda: dev.status().rejected.get("glove_stale") == 2)
    frames = dev.status().frames
    time.sleep(0.05)
    assert dev.status().frames == frames and dev.latest().confidence == 0.0
    dev.disconnect()
    assert glove.port is None and dev.glove is None  # the receiver's socket is closed


@needs_glove
def test_glove_port_in_use_is_a_clear_error(fake, make_device):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        dev = make_device(fake, glove_host="127.0.0.1", glove_port=port)
        with pytest.raises(ViveError, match="already in use"):
            dev.connect(RealClock())
    assert fake.shutdowns == 1 and not dev.status().connected
