"""The ``vive`` device: wrist pose from a Vive tracker, fingers from a glove or the open hand.

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
from dataclasses import dataclass

import numpy as np

from devices.inputs.base import DEVICES, Device
from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
from devices.inputs.vive.steamvr import (
    OpenVRLike,
    ViveError,
    VRSystemLike,
    enumerate_trackers,
    import_openvr,
    init_openvr,
    mount_matrix,
    openvr_to_world,
    pose_ok,
    pose_problem,
    pose_to_matrix,
    select_tracker,
)
from devices.tick import HumanFrame, is_rotation

log = logging.getLogger("devices.inputs.vive")


@dataclass
class ViveConfig:
    """Settings of the Vive tracker device.

    Attributes:
        tracker: serial number of the wrist tracker (e.g. ``"LHR-1A2B3C4D"``); None uses the
            only generic tracker SteamVR knows (an error lists them if there are several).
        rate_hz: polling rate of the tracker's pose, Hz.
        mount: 16 numbers, row-major 4x4 rigid transform, metres: the wrist frame in the
            tracker's frame (how the tracker is strapped on); a string of 16 numbers is also
            accepted. None is the identity; see :mod:`devices.inputs.vive.steamvr` and
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

    Publishes :class:`~devices.tick.HumanFrame` with ``wrist`` the wrist frame's
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
                api = import_openvr()
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
        api = self._api if self._api is not None else import_openvr()
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
            if index < len(poses) and pose_ok(poses[index], api):
                pose_vr = pose_to_matrix(poses[index].mDeviceToAbsoluteTracking)
                if is_rotation(pose_vr[:3, :3]):  # a garbage matrix counts as lost tracking
                    controllers[name] = openvr_to_world(pose_vr)

        if wrist_index is None:
            self._enter("tracking_lost", f"vive: tracker {serial} is not seen by SteamVR")
            return
        if serial not in controllers:
            problem = (
                pose_problem(poses[wrist_index], api) if wrist_index < len(poses) else "no pose"
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
