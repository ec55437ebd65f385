"""HTC Vive tracker on the operator's wrist (through OpenVR / SteamVR) as an input device.

The wrist pose comes from a Vive tracker strapped to the wrist; the finger keypoints come from
a glove receiver (the ``glove`` device) when one is configured, else they are the human hand
model's open pose.

Frames
------
OpenVR reports poses in its *standing universe*: right-handed, metres, +y up, +x to the
right and -z forward, where "forward" is the direction chosen in SteamVR's room setup and the
origin is the centre of the play area on the floor. Our world frame is right-handed, metres,
+z up, +x forward (so +y is to the left). The fixed rotation between them is
:data:`OPENVR_TO_WORLD`::

    [x_world]   [ 0  0 -1] [x_vr]        x_world = -z_vr   (forward)
    [y_world] = [-1  0  0] [y_vr]        y_world = -x_vr   (left)
    [z_world]   [ 0  1  0] [z_vr]        z_world = +y_vr   (up)

It only changes the world axes; the tracker's own body frame is left as OpenVR reports it. The
published wrist pose is ``T_world_wrist = C @ T_vr_tracker @ M`` where ``C`` is
:data:`OPENVR_TO_WORLD` as a (4, 4), ``T_vr_tracker`` the tracker's pose from OpenVR and ``M``
the *mount*: the wrist frame (x along the fingers, y toward the thumb, z dorsal, see
:mod:`devices.inputs.frame`) expressed in the tracker's frame.

The mount
---------
The tracker's reported body frame is not documented precisely by OpenVR and changes with the
role assigned to the tracker in SteamVR, so there is no universally right default: the default
mount is the identity (the wrist frame *is* the tracker's reported frame), which is only right
if the tracker's reported axes happen to match the wrist axes. To measure the mount, strap the
tracker on, hold the right hand flat, palm down, fingers pointing along the play area's forward
direction (world +x) and thumb to the left (world +y), read the tracker's world pose (the
``controllers[serial]`` entry of a frame published by this device with any mount) and call
:func:`mount_from_reference`, optionally with the wrist's world position if you measured the
offset between the tracker and the wrist joint (otherwise the mount is a pure rotation, which
is enough for retargeting that only uses wrist motion). Pass the 16 numbers it returns as
``ViveConfig.mount``.

Tracking loss
-------------
An invalid pose, a disconnected tracker, a tracking result other than
``TrackingResult_Running_OK`` or a tracker missing from the enumeration is a *tracking loss*:
the device counts one ``tracking_lost`` rejection per loss (per transition, not per poll), sets
its status message, publishes nothing new and marks its latest frame with confidence 0.0 (same
``seq``, ``t`` and pose), so the control session holds at once (``low_confidence``) and, with
no new frames arriving, stays held (``stale_input``) until tracking recovers. Trackers are
re-enumerated every :attr:`ViveDevice.REENUMERATE_S` seconds (more often while the wrist
tracker is missing), so a tracker that is switched off and on again, even on another device
index, is picked up again by its serial number.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from devices.inputs.base import DEVICES, Device
from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
from devices.inputs.validate import is_rotation
from devices.tick import HumanFrame

log = logging.getLogger(__name__)

#: Rotation (3, 3) taking vectors from OpenVR's standing universe (+y up, -z forward, +x right)
#: to our world frame (+z up, +x forward, +y left). Proper rotation (det +1).
OPENVR_TO_WORLD: Final[np.ndarray] = np.array(
    [
        [0.0, 0.0, -1.0],
        [-1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
    ]
)
OPENVR_TO_WORLD.setflags(write=False)

#: OpenVR init errors that mean "no runtime installed" (as opposed to "runtime not started").
_RUNTIME_MISSING_ERRORS: Final[frozenset[str]] = frozenset(
    {
        "InitError_Init_PathRegistryNotFound",
        "InitError_Init_InstallationNotFound",
        "InitError_Init_InstallationCorrupt",
        "InitError_Init_VRClientDLLNotFound",
        "InitError_Init_FileNotFound",
        "InitError_Steam_SteamInstallationNotFound",
    }
)


class ViveError(RuntimeError):
    """The Vive tracker cannot be used: no OpenVR runtime, no tracker, ambiguous tracker."""


class VRSystemLike(Protocol):
    """The part of ``openvr.IVRSystem`` this module uses."""

    def getDeviceToAbsoluteTrackingPose(
        self, origin: int, predicted_seconds: float, poses: Any
    ) -> Sequence[Any]: ...

    def getTrackedDeviceClass(self, index: int) -> int: ...

    def getStringTrackedDeviceProperty(self, index: int, prop: int) -> str: ...


class OpenVRLike(Protocol):
    """The part of the ``openvr`` module this module uses (tests pass a fake)."""

    VRApplication_Other: int
    TrackingUniverseStanding: int
    k_unMaxTrackedDeviceCount: int
    TrackedDeviceClass_GenericTracker: int
    Prop_SerialNumber_String: int
    TrackingResult_Running_OK: int

    def init(self, application_type: int) -> VRSystemLike: ...

    def shutdown(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Poses and mounts
# --------------------------------------------------------------------------------------------


def pose_to_matrix(m34: Any) -> np.ndarray:
    """A (4, 4) homogeneous pose from OpenVR's 3x4 ``HmdMatrix34_t`` (or any 3x4 indexable).

    Args:
        m34: 3 rows of 4 numbers, ``m34[row][col]``: rotation in columns 0-2, translation (m)
            in column 3.

    Returns:
        (4, 4) float pose, same frames and units as ``m34``.
    """
    out = np.eye(4)
    for r in range(3):
        row = m34[r]
        for c in range(4):
            out[r, c] = float(row[c])
    return out


def openvr_to_world(pose_vr: np.ndarray) -> np.ndarray:
    """Re-express a pose (4, 4) given in OpenVR's standing universe in our world frame.

    Args:
        pose_vr: (4, 4) pose of some body frame in the standing universe, metres.

    Returns:
        (4, 4) pose of the same body frame in the world frame (z up, x forward), metres.
    """
    c = np.eye(4)
    c[:3, :3] = OPENVR_TO_WORLD
    return c @ np.asarray(pose_vr, dtype=float)


def mount_matrix(mount: Sequence[float] | str | None) -> np.ndarray:
    """The mount (4, 4): the wrist frame's pose in the tracker's frame, checked.

    Args:
        mount: 16 numbers, a row-major 4x4 rigid transform (translation in metres), or the
            same as one string of numbers separated by commas and/or spaces (as typed on a
            command line), or None for the identity.

    Returns:
        (4, 4) float rigid transform.

    Raises:
        ValueError: if ``mount`` is not 16 finite numbers forming a rigid transform (proper
            rotation, last row ``0 0 0 1``).
    """
    if mount is None:
        return np.eye(4)
    try:
        if isinstance(mount, str):
            mount = [float(v) for v in mount.replace(",", " ").split()]
        m = np.asarray(mount, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"vive mount must be 16 numbers, got {mount!r}") from None
    if m.shape != (16,):
        raise ValueError(f"vive mount must be 16 numbers (row-major 4x4), got {m.size}")
    if not np.all(np.isfinite(m)):
        raise ValueError("vive mount has non-finite values")
    m = m.reshape(4, 4)
    r = m[:3, :3]
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError(f"vive mount's last row must be 0 0 0 1, got {m[3].tolist()}")
    if not np.allclose(r.T @ r, np.eye(3), atol=1e-3) or np.linalg.det(r) < 0:
        raise ValueError("vive mount's rotation (upper-left 3x3) is not a proper rotation")
    return m


def mount_from_reference(
    tracker_world: np.ndarray, wrist_position: Sequence[float] | None = None
) -> tuple[float, ...]:
    """Measure the mount from one tracker pose taken with the hand in the reference pose.

    Reference pose: right hand flat, palm down, fingers pointing along world +x (the play
    area's forward), thumb toward world +y (left), i.e. the wrist frame's rotation in the world
    is the identity.

    Args:
        tracker_world: (4, 4) the tracker's pose in the world frame at that moment (a frame's
            ``controllers[serial]``), metres.
        wrist_position: (3,) the wrist joint's world position at that moment, metres; None
            puts the wrist frame's origin at the tracker's origin (a rotation-only mount).

    Returns:
        16 floats, the row-major mount for :attr:`ViveConfig.mount`.

    Raises:
        ValueError: if ``tracker_world`` is not (4, 4).
    """
    t = np.asarray(tracker_world, dtype=float)
    if t.shape != (4, 4):
        raise ValueError(f"tracker pose must be (4, 4), got {t.shape}")
    wrist = np.eye(4)
    wrist[:3, 3] = t[:3, 3] if wrist_position is None else np.asarray(wrist_position, float)
    mount = np.linalg.inv(t) @ wrist
    mount[3] = [0.0, 0.0, 0.0, 1.0]
    return tuple(float(v) for v in mount.reshape(-1))


# --------------------------------------------------------------------------------------------
# OpenVR access
# --------------------------------------------------------------------------------------------


def _import_openvr() -> OpenVRLike:
    """The real ``openvr`` module, or a :class:`ViveError` saying how to get it."""
    try:
        return importlib.import_module("openvr")  # type: ignore[return-value]
    except (ImportError, OSError) as e:
        raise ViveError(
            f"the openvr package is not usable ({type(e).__name__}: {e}): pip install openvr"
        ) from e


def init_openvr(api: OpenVRLike) -> VRSystemLike:
    """``api.init(VRApplication_Other)``, turning any failure into a one-line :class:`ViveError`.

    Raises:
        ViveError: e.g. "OpenVR runtime not found (InitError_Init_PathRegistryNotFound): ...".
    """
    try:
        return api.init(api.VRApplication_Other)
    except Exception as e:  # every init failure becomes one clear error
        name = type(e).__name__
        if name in _RUNTIME_MISSING_ERRORS:
            msg = (
                f"OpenVR runtime not found ({name}): install SteamVR and run it, "
                "or use another device"
            )
        elif name.startswith("InitError"):
            msg = (
                f"OpenVR could not start ({name}): start SteamVR (for trackers without a "
                "headset enable its null driver), check the tracker dongles, "
                "or use another device"
            )
        else:
            msg = f"OpenVR init failed ({name}: {e}); is SteamVR installed and running?"
        raise ViveError(msg) from e


def enumerate_trackers(system: VRSystemLike, api: OpenVRLike) -> dict[int, str]:
    """Generic trackers known to OpenVR: device index -> serial number.

    OpenVR keeps reporting the class of a device seen earlier in the session after it is
    switched off, so this may list trackers that are not connected now (their poses say so).
    Devices whose serial cannot be read are skipped.
    """
    found: dict[int, str] = {}
    for index in range(int(api.k_unMaxTrackedDeviceCount)):
        if system.getTrackedDeviceClass(index) != api.TrackedDeviceClass_GenericTracker:
            continue
        try:
            serial = str(system.getStringTrackedDeviceProperty(index, api.Prop_SerialNumber_String))
        except Exception as e:  # noqa: BLE001 - an unreadable device is just not listed
            log.debug("vive: no serial for device %d: %s", index, e)
            continue
        if serial:
            found[index] = serial
    return found


def select_tracker(serials: Sequence[str], wanted: str | None) -> str:
    """Pick the wrist tracker among ``serials``.

    Args:
        serials: serial numbers of the generic trackers found.
        wanted: the configured serial, or None for "the only tracker".

    Raises:
        ViveError: no tracker, the wanted one is absent, or several and none was named.
    """
    known = sorted(set(serials))
    if wanted is not None:
        if wanted in known:
            return wanted
        listed = ", ".join(known) if known else "none"
        raise ViveError(f"Vive tracker {wanted!r} not found; trackers seen by SteamVR: {listed}")
    if not known:
        raise ViveError(
            "no Vive tracker found: switch the tracker on and pair it in SteamVR "
            "(it must show as a tracker, not as a controller)"
        )
    if len(known) > 1:
        raise ViveError(
            f"{len(known)} Vive trackers found ({', '.join(known)}): "
            "set the wrist tracker's serial (ViveConfig.tracker)"
        )
    return known[0]


def list_trackers(api: OpenVRLike | None = None) -> list[str]:
    """Serial numbers of the generic trackers SteamVR knows, sorted (for the CLI).

    Args:
        api: the OpenVR module or a stand-in; None imports ``openvr``.

    Raises:
        ViveError: the OpenVR runtime cannot be initialised.
    """
    api = api if api is not None else _import_openvr()
    system = init_openvr(api)
    try:
        return sorted(set(enumerate_trackers(system, api).values()))
    finally:
        api.shutdown()


def _pose_ok(pose: Any, api: OpenVRLike) -> bool:
    """Whether an OpenVR ``TrackedDevicePose_t`` is usable right now."""
    return (
        bool(pose.bPoseIsValid)
        and bool(pose.bDeviceIsConnected)
        and int(pose.eTrackingResult) == int(api.TrackingResult_Running_OK)
    )


def _pose_problem(pose: Any, api: OpenVRLike) -> str:
    """Why ``pose`` is not usable, in words."""
    if not bool(pose.bDeviceIsConnected):
        return "disconnected"
    if int(pose.eTrackingResult) != int(api.TrackingResult_Running_OK):
        return f"tracking result {int(pose.eTrackingResult)}"
    return "pose invalid"


# --------------------------------------------------------------------------------------------
# The device
# --------------------------------------------------------------------------------------------


@dataclass
class ViveConfig:
    """Settings of the Vive tracker device.

    Attributes:
        tracker: serial number of the wrist tracker (e.g. ``"LHR-1A2B3C4D"``); None uses the
            only generic tracker SteamVR knows (an error lists them if there are several).
        rate_hz: polling rate of the tracker's pose, Hz.
        mount: 16 numbers, row-major 4x4 rigid transform, metres: the wrist frame in the
            tracker's frame (how the tracker is strapped on); a string of 16 numbers is also
            accepted. None is the identity; see the module docstring and
            :func:`mount_from_reference` to measure it.
        glove_host: address the glove receiver listens on (e.g. ``"0.0.0.0"``); None: no
            glove, the keypoints are the hand model's open pose.
        glove_port: UDP port of the glove receiver (0: any free port, see
            :attr:`ViveDevice.glove`).
        glove_max_age_s: with a glove, no frame is published while the glove's latest frame is
            older than this, seconds (a silent glove must not freeze the fingers unnoticed).
    """

    tracker: str | None = None
    rate_hz: float = 90.0
    mount: tuple[float, ...] | None = None
    glove_host: str | None = None
    glove_port: int = 9870
    glove_max_age_s: float = 0.25


@DEVICES.register("vive")
class ViveDevice(Device):
    """Wrist pose from a Vive tracker, fingers from a glove or the open hand.

    Publishes :class:`~devices.inputs.frame.HumanFrame` with ``wrist`` the wrist frame's
    world pose (4, 4), ``keypoints`` (21, 3) in the wrist frame, ``controllers`` the world pose
    (4, 4, tracker body frame, no mount) of every tracker tracked now, by serial, and
    ``confidence`` 1.0 (or the glove's confidence if lower). Rejection reasons:
    ``tracking_lost``, ``glove_stale``, ``device_error`` (each counted once per episode).

    Args:
        config: the settings.
        api: the OpenVR module or a stand-in with the same subset of its API (see
            :class:`OpenVRLike`); None imports ``openvr`` when connecting.
    """

    Config = ViveConfig

    #: Seconds between re-enumerations of the trackers while the wrist tracker is tracked.
    REENUMERATE_S: float = 1.0
    #: Seconds between re-enumerations while the wrist tracker is missing from the list.
    REENUMERATE_MISSING_S: float = 0.2
    #: Seconds to wait for the polling thread on disconnect.
    JOIN_TIMEOUT_S: float = 0.5

    def __init__(self, config: ViveConfig, api: OpenVRLike | None = None) -> None:
        super().__init__()
        if not (np.isfinite(config.rate_hz) and config.rate_hz > 0):
            raise ValueError(f"vive rate_hz must be positive, got {config.rate_hz}")
        if not 0 <= int(config.glove_port) <= 65535:
            raise ValueError(f"vive glove_port must be in 0..65535, got {config.glove_port}")
        if not config.glove_max_age_s > 0:
            raise ValueError(f"vive glove_max_age_s must be positive, got {config.glove_max_age_s}")
        self.config = config
        self._api = api
        self._mount = mount_matrix(config.mount)
        open_hand = np.array(DEFAULT_HAND.keypoints(OPEN_POSE), dtype=float)
        open_hand.setflags(write=False)
        self._open_hand: np.ndarray = open_hand
        #: Serial number of the wrist tracker, known once connected.
        self.serial: str | None = None
        self._active_api: OpenVRLike | None = None
        self._system: VRSystemLike | None = None
        self._glove: Device | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._trackers: dict[int, str] = {}
        self._next_enumeration = 0.0
        self._state = "starting"
        self._seq = 0

    # ---- public helpers ---------------------------------------------------------------------

    @classmethod
    def availability(cls, api: OpenVRLike | None = None) -> str | None:
        """None if OpenVR and its runtime are installed, else why not (one line).

        Uses ``api.isRuntimeInstalled()`` (cheap, no SteamVR start) when the package has it,
        else tries ``init`` / ``shutdown``. It does not check that a tracker is on.
        """
        if api is None:
            try:
                api = _import_openvr()
            except ViveError as e:
                return str(e)
        check = getattr(api, "isRuntimeInstalled", None)
        if callable(check):
            try:
                installed = bool(check())
            except Exception as e:  # noqa: BLE001 - a broken check reads as unavailable
                return f"could not check for the OpenVR runtime ({type(e).__name__}: {e})"
            if not installed:
                return "OpenVR runtime not installed (no VR path registry): install SteamVR"
            return None
        try:
            init_openvr(api)
        except ViveError as e:
            return str(e)
        api.shutdown()
        return None

    @property
    def glove(self) -> Device | None:
        """The glove receiver device while connected with a glove, else None."""
        return self._glove

    def trackers(self) -> list[str]:
        """Serial numbers of the generic trackers from the latest enumeration, sorted."""
        with self._lock:
            return sorted(set(self._trackers.values()))

    # ---- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is not None:  # already connected
            return
        api = self._api if self._api is not None else _import_openvr()
        system = init_openvr(api)
        glove: Device | None = None
        try:
            trackers = enumerate_trackers(system, api)
            serial = select_tracker(list(trackers.values()), self.config.tracker)
            if self.config.glove_host is not None:
                glove = self._make_glove()
                try:
                    glove.connect(self.clock)
                except OSError as e:
                    glove = None
                    raise ViveError(str(e)) from e
        except BaseException:
            if glove is not None:
                glove.disconnect()
            api.shutdown()
            raise
        self._active_api, self._system, self._glove = api, system, glove
        self.serial = serial
        with self._lock:
            self._trackers = trackers
        self._next_enumeration = time.monotonic() + self.REENUMERATE_S
        self._state = "starting"
        log.info(
            "vive: wrist tracker %s (trackers: %s)%s",
            serial,
            ", ".join(sorted(set(trackers.values()))),
            f", glove on {self.config.glove_host}:{self.config.glove_port}" if glove else "",
        )
        self._stop_evt.clear()
        self._thread = threading.Thread(target=self._run, name="vive", daemon=True)
        self._thread.start()

    def _make_glove(self) -> Device:
        """The glove receiver, built through the registry (its module is imported here)."""
        try:
            importlib.import_module("devices.inputs.glove")  # registers "glove"
        except ImportError as e:
            raise ViveError(f"vive: glove_host is set but the glove device is missing: {e}") from e
        return DEVICES.make("glove", host=self.config.glove_host, port=int(self.config.glove_port))

    def _stop(self) -> None:
        self._stop_evt.set()
        thread, self._thread = self._thread, None
        joined = self._join_thread(thread, self.JOIN_TIMEOUT_S)
        if not joined:
            log.warning("vive: OpenVR left initialised")
        if self._glove is not None:
            self._close_quietly(self._glove.disconnect, "the glove receiver")
            self._glove = None
        if self._active_api is not None and joined:
            try:
                self._active_api.shutdown()
            except Exception as e:  # noqa: BLE001
                log.warning("vive: OpenVR shutdown failed: %s", e)
        self._active_api, self._system = None, None

    # ---- polling thread ---------------------------------------------------------------------

    def _run(self) -> None:
        period = 1.0 / float(self.config.rate_hz)
        while not self._stop_evt.is_set():
            started = time.monotonic()
            try:
                self._poll()
            except Exception as e:  # the thread must survive anything
                if self._enter("device_error", f"vive: polling failed: {type(e).__name__}: {e}"):
                    log.exception("vive: polling failed")
            self._stop_evt.wait(max(0.0, period - (time.monotonic() - started)))

    def _poll(self) -> None:
        """Read all poses once; publish a frame or report why not."""
        api, system = self._active_api, self._system
        assert api is not None and system is not None
        serial = self.serial
        now = time.monotonic()
        with self._lock:
            trackers = dict(self._trackers)
        if now >= self._next_enumeration:
            trackers = enumerate_trackers(system, api)
            with self._lock:
                self._trackers = trackers
            missing = serial not in trackers.values()
            delay = self.REENUMERATE_MISSING_S if missing else self.REENUMERATE_S
            self._next_enumeration = now + delay

        poses = system.getDeviceToAbsoluteTrackingPose(
            api.TrackingUniverseStanding, 0, api.k_unMaxTrackedDeviceCount
        )
        controllers: dict[str, np.ndarray] = {}
        wrist_index: int | None = None
        for index, name in trackers.items():
            if name == serial:
                wrist_index = index
            if index < len(poses) and _pose_ok(poses[index], api):
                pose_vr = pose_to_matrix(poses[index].mDeviceToAbsoluteTracking)
                if is_rotation(pose_vr[:3, :3]):  # a garbage matrix counts as lost tracking
                    controllers[name] = openvr_to_world(pose_vr)

        if wrist_index is None:
            self._enter("tracking_lost", f"vive: tracker {serial} is not seen by SteamVR")
            return
        if serial not in controllers:
            problem = (
                _pose_problem(poses[wrist_index], api) if wrist_index < len(poses) else "no pose"
            )
            self._enter("tracking_lost", f"vive: tracking lost on {serial} ({problem})")
            return

        keypoints = self._open_hand
        confidence = 1.0
        buttons: dict[str, float] = {}
        if self._glove is not None:
            glove_frame = self._glove.latest()
            stamp = self.clock.now()
            if glove_frame is None or stamp - glove_frame.t > self.config.glove_max_age_s:
                age = "no frame yet" if glove_frame is None else f"{stamp - glove_frame.t:.2f} s"
                self._enter("glove_stale", f"vive: glove data stale ({age})")
                return
            keypoints = np.asarray(glove_frame.keypoints, dtype=float)
            confidence = min(1.0, float(glove_frame.confidence))
            buttons = dict(glove_frame.buttons)

        assert serial is not None
        wrist = controllers[serial] @ self._mount
        if self._state != "ok":
            if self._state != "starting":
                log.info("vive: tracking %s again", serial)
            self._state = "ok"
            self._set_message("")
        self._publish(
            HumanFrame(
                keypoints=keypoints,
                wrist=wrist,
                t=self.clock.now(),
                seq=self._seq,
                confidence=confidence,
                buttons=buttons,
                controllers=controllers,
            )
        )
        self._seq += 1

    def _enter(self, state: str, message: str) -> bool:
        """Switch to the problem ``state``; on a change count it, say it, mark the frame lost.

        Returns:
            True if this was a change of state (the first poll of this problem).
        """
        if self._state == state:
            return False
        self._state = state
        self._reject(state, message, lost=True)
        log.warning("%s", message)
        return True
