"""OpenVR (SteamVR) access for the Vive device: poses, world axes, the mount, trackers.

Imports ``openvr`` only when asked (:func:`import_openvr`); tests pass a fake module.

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
:mod:`devices.tick`) expressed in the tracker's frame.

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
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import Any, Final, Protocol

import numpy as np

log = logging.getLogger("devices.inputs.vive")

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


def import_openvr() -> OpenVRLike:
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
    api = api if api is not None else import_openvr()
    system = init_openvr(api)
    try:
        return sorted(set(enumerate_trackers(system, api).values()))
    finally:
        api.shutdown()


def pose_ok(pose: Any, api: OpenVRLike) -> bool:
    """Whether an OpenVR ``TrackedDevicePose_t`` is usable right now."""
    return (
        bool(pose.bPoseIsValid)
        and bool(pose.bDeviceIsConnected)
        and int(pose.eTrackingResult) == int(api.TrackingResult_Running_OK)
    )


def pose_problem(pose: Any, api: OpenVRLike) -> str:
    """Why ``pose`` is not usable, in words."""
    if not bool(pose.bDeviceIsConnected):
        return "disconnected"
    if int(pose.eTrackingResult) != int(api.TrackingResult_Running_OK):
        return f"tracking result {int(pose.eTrackingResult)}"
    return "pose invalid"
