"""Kinematic model of a nominal adult right human hand, in the wrist frame.

The model maps 20 joint angles (radians) to the 21 MediaPipe / MANO keypoints (metres),
expressed in the wrist frame defined in :mod:`devices.tick`: origin at the wrist
keypoint, +x toward the middle MCP, +y toward the thumb side, +z dorsal (the palm faces -z).

The model is built directly in that frame: the four finger MCPs lie in the z = 0 plane with the
middle MCP exactly on +x, the index MCP on +y, the ring and pinky MCPs on -y. Hence for any
pose ``wrist_frame_from_points(keypoints(angles))`` is the identity (only the wrist and MCP
keypoints define the frame, and those do not move with the joint angles).

Joint conventions (all angles in radians, order given by :data:`JOINT_NAMES`):

- ``<finger>_abd`` (index, middle, ring, pinky): rotation of the whole finger about the wrist
  frame's +z axis at its MCP, added to the model's rest splay. **Positive turns the finger
  toward the thumb side (+y)** for every finger, so positive spreads the index away from the
  middle finger but brings the ring and pinky toward it.
- ``<finger>_mcp_flex``, ``_pip_flex``, ``_dip_flex``: flexion; positive curls the finger
  toward the palm (-z). Flexion of a finger happens in the vertical plane containing the
  finger's heading, so a flexed finger stays above its MCP's (x, y) heading line.
- ``thumb_cmc_abd``: palmar abduction / opposition; positive swings the thumb metacarpal out of
  the palm plane toward the palm front (-z).
- ``thumb_cmc_flex``: positive swings the metacarpal across the palm toward the pinky side.
- ``thumb_mcp_flex``, ``thumb_ip_flex``: flexion of the thumb; positive curls the thumb tip
  across and in front of the palm (the thumb's flexion axis is the metacarpal's lateral axis,
  pronated by :attr:`HumanHandModel.thumb_pronation` about the metacarpal).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.optimize import least_squares

from devices.tick import NUM_HUMAN_KEYPOINTS

logger = logging.getLogger(__name__)

Vec3 = tuple[float, float, float]

FINGER_NAMES: Final[tuple[str, ...]] = ("thumb", "index", "middle", "ring", "pinky")

#: Names of the 20 joint angles, in the order used by every angle vector.
JOINT_NAMES: Final[tuple[str, ...]] = (
    "thumb_cmc_abd", "thumb_cmc_flex", "thumb_mcp_flex", "thumb_ip_flex",
    "index_abd", "index_mcp_flex", "index_pip_flex", "index_dip_flex",
    "middle_abd", "middle_mcp_flex", "middle_pip_flex", "middle_dip_flex",
    "ring_abd", "ring_mcp_flex", "ring_pip_flex", "ring_dip_flex",
    "pinky_abd", "pinky_mcp_flex", "pinky_pip_flex", "pinky_dip_flex",
)  # fmt: skip

NUM_JOINTS: Final[int] = len(JOINT_NAMES)

#: Lower joint limits (20,), radians. Anatomically plausible, slightly generous.
JOINT_LOWER: Final[np.ndarray] = np.array(
    [
        -0.20, -0.40, -0.20, -0.30,  # thumb: cmc_abd, cmc_flex, mcp, ip
        -0.25, -0.35, 0.00, -0.10,  # index: abd, mcp, pip, dip
        -0.25, -0.35, 0.00, -0.10,  # middle
        -0.30, -0.35, 0.00, -0.10,  # ring
        -0.45, -0.35, 0.00, -0.10,  # pinky
    ]
)  # fmt: skip

#: Upper joint limits (20,), radians.
JOINT_UPPER: Final[np.ndarray] = np.array(
    [
        1.30, 0.90, 1.00, 1.40,  # thumb
        0.35, 1.60, 1.90, 1.40,  # index
        0.25, 1.60, 1.90, 1.40,  # middle
        0.20, 1.60, 1.90, 1.40,  # ring
        0.20, 1.60, 1.90, 1.40,  # pinky
    ]
)  # fmt: skip

#: Flat open hand (20,), radians: fingers straight in the palm plane, the thumb slightly
#: abducted and flexed so that it sits naturally beside the index.
OPEN_POSE: Final[np.ndarray] = np.array(
    [
        0.15, 0.00, 0.00, 0.10,
        0.00, 0.00, 0.00, 0.00,
        0.00, 0.00, 0.00, 0.00,
        0.00, 0.00, 0.00, 0.00,
        0.00, 0.00, 0.00, 0.00,
    ]
)  # fmt: skip

#: Closed fist (20,), radians: fingers fully curled, thumb folded over the middle phalanges.
FIST_POSE: Final[np.ndarray] = np.array(
    [
        0.55, 0.55, 0.55, 0.75,
        0.00, 1.45, 1.65, 1.00,
        0.00, 1.50, 1.70, 1.00,
        0.00, 1.50, 1.70, 1.00,
        -0.05, 1.50, 1.65, 1.00,
    ]
)  # fmt: skip

for _arr in (JOINT_LOWER, JOINT_UPPER, OPEN_POSE, FIST_POSE):
    _arr.setflags(write=False)


def _rot_x(a: np.ndarray) -> np.ndarray:
    """Rotation matrices about x. ``a`` (...,) radians -> (..., 3, 3)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape((*a.shape, 3, 3))


def _rot_y(a: np.ndarray) -> np.ndarray:
    """Rotation matrices about y. ``a`` (...,) radians -> (..., 3, 3)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape((*a.shape, 3, 3))


def _rot_z(a: np.ndarray) -> np.ndarray:
    """Rotation matrices about z. ``a`` (...,) radians -> (..., 3, 3)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape((*a.shape, 3, 3))


@dataclass(frozen=True)
class HumanHandModel:
    """Geometry of a nominal adult right hand (metres, radians), in the wrist frame.

    All positions and lengths are multiplied by :attr:`scale`. The defaults give a hand of
    about 0.19 m from the wrist keypoint to the middle fingertip and about 0.06 m between
    the index and pinky MCP joint centres.

    Attributes:
        index_mcp: index MCP position (3,), m; must have y > 0, z = 0.
        middle_mcp: middle MCP position (3,), m; must be exactly on +x (y = z = 0).
        ring_mcp: ring MCP position (3,), m; must have y < 0, z = 0.
        pinky_mcp: pinky MCP position (3,), m; must have y < 0, z = 0.
        thumb_cmc: thumb CMC position (3,), m; near the wrist on the thumb side (+y), slightly
            toward the palm (-z).
        index_lengths: (proximal, middle, distal incl. fingertip) phalanx lengths, m.
        middle_lengths: as ``index_lengths``.
        ring_lengths: as ``index_lengths``.
        pinky_lengths: as ``index_lengths``.
        thumb_lengths: (metacarpal, proximal, distal incl. tip) lengths, m.
        finger_splay: rest heading (index, middle, ring, pinky) of each finger about +z at zero
            abduction, rad (positive toward the thumb side); the middle finger's should be 0.
        thumb_heading: rest direction of the thumb metacarpal in the palm plane, measured from
            +x toward +y, rad.
        thumb_pronation: fixed rotation of the thumb about its metacarpal axis, rad; it tilts
            the thumb's flexion plane from "toward the palm" (0) to "across the palm" (-pi/2).
        scale: multiplies every position and length (1.0 = nominal adult).
    """

    index_mcp: Vec3 = (0.086, 0.024, 0.0)
    middle_mcp: Vec3 = (0.092, 0.0, 0.0)
    ring_mcp: Vec3 = (0.085, -0.019, 0.0)
    pinky_mcp: Vec3 = (0.075, -0.036, 0.0)
    thumb_cmc: Vec3 = (0.030, 0.024, -0.012)
    index_lengths: Vec3 = (0.043, 0.025, 0.022)
    middle_lengths: Vec3 = (0.047, 0.029, 0.024)
    ring_lengths: Vec3 = (0.044, 0.028, 0.023)
    pinky_lengths: Vec3 = (0.034, 0.020, 0.021)
    thumb_lengths: Vec3 = (0.044, 0.032, 0.029)
    finger_splay: tuple[float, float, float, float] = (0.10, 0.0, -0.10, -0.20)
    thumb_heading: float = 0.60
    thumb_pronation: float = -1.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        """Check that the geometry respects the wrist-frame convention.

        Raises:
            ValueError: on a geometry that would break the wrist-frame definition.
        """
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {self.scale}")
        mx, my, mz = self.middle_mcp
        if not (mx > 0 and my == 0 and mz == 0):
            raise ValueError(f"middle_mcp must lie on +x (x > 0, y = z = 0), got {self.middle_mcp}")
        if not self.index_mcp[1] > 0:
            raise ValueError(f"index_mcp must be on the thumb side (y > 0), got {self.index_mcp}")
        for name in ("ring_mcp", "pinky_mcp"):
            if not getattr(self, name)[1] < 0:
                raise ValueError(f"{name} must be on the -y side, got {getattr(self, name)}")
        for name in ("index_mcp", "ring_mcp", "pinky_mcp"):
            if getattr(self, name)[2] != 0:
                raise ValueError(f"{name} must lie in the palm plane (z = 0)")
        for name in (
            "index_lengths",
            "middle_lengths",
            "ring_lengths",
            "pinky_lengths",
            "thumb_lengths",
        ):
            lengths = getattr(self, name)
            if len(lengths) != 3 or not all(np.isfinite(v) and v > 0 for v in lengths):
                raise ValueError(f"{name} must be three positive lengths, got {lengths}")
        if len(self.finger_splay) != 4:
            raise ValueError("finger_splay must have 4 entries (index, middle, ring, pinky)")

    # ------------------------------------------------------------------ geometry arrays
    @property
    def mcp_positions(self) -> np.ndarray:
        """MCP positions of (index, middle, ring, pinky), (4, 3), metres, scaled."""
        return self.scale * np.array(
            [self.index_mcp, self.middle_mcp, self.ring_mcp, self.pinky_mcp], dtype=float
        )

    @property
    def finger_lengths(self) -> np.ndarray:
        """Phalanx lengths of (index, middle, ring, pinky), (4, 3), metres, scaled."""
        return self.scale * np.array(
            [self.index_lengths, self.middle_lengths, self.ring_lengths, self.pinky_lengths],
            dtype=float,
        )

    @property
    def hand_length(self) -> float:
        """Distance from the wrist keypoint to the straight middle fingertip, metres."""
        return float(self.scale * (self.middle_mcp[0] + sum(self.middle_lengths)))

    # ------------------------------------------------------------------ kinematics
    def keypoints(self, angles: np.ndarray) -> np.ndarray:
        """Forward kinematics: joint angles to the 21 keypoints in the wrist frame.

        Args:
            angles: (20,) or batched (..., 20) joint angles, radians, order
                :data:`JOINT_NAMES`. Values outside the joint limits are not clipped.

        Returns:
            (21, 3) or (..., 21, 3) keypoints, metres, wrist frame; keypoint 0 is exactly
            the origin.

        Raises:
            ValueError: if the last axis of ``angles`` is not 20.
        """
        a = np.asarray(angles, dtype=float)
        if a.ndim == 0 or a.shape[-1] != NUM_JOINTS:
            raise ValueError(f"expected (..., {NUM_JOINTS}) joint angles, got {a.shape}")
        lead = a.shape[:-1]
        out = np.zeros((*lead, NUM_HUMAN_KEYPOINTS, 3))

        # Fingers: heading about +z, then planar flexion in the vertical plane of the heading.
        fa = a[..., 4:].reshape((*lead, 4, 4))  # (..., finger, [abd, mcp, pip, dip])
        heading = np.asarray(self.finger_splay, dtype=float) + fa[..., 0]  # (..., 4)
        phi = np.cumsum(fa[..., 1:], axis=-1)  # (..., 4, 3) cumulative flexion
        ch, sh = np.cos(heading)[..., None], np.sin(heading)[..., None]
        dirs = np.stack([np.cos(phi) * ch, np.cos(phi) * sh, -np.sin(phi)], axis=-1)
        bones = dirs * self.finger_lengths[:, :, None]  # (..., 4, 3, 3)
        joints = self.mcp_positions[:, None, :] + np.cumsum(bones, axis=-2)  # (..., 4, 3, 3)
        fingers = np.concatenate(
            [np.broadcast_to(self.mcp_positions, (*lead, 4, 3))[..., None, :], joints], axis=-2
        )  # (..., 4, 4, 3): MCP, PIP, DIP, tip
        out[..., 5:, :] = fingers.reshape((*lead, 16, 3))

        # Thumb: R_meta = Rz(heading) Ry(cmc_abd) Rz(-cmc_flex) Rx(pronation); the phalanges
        # then flex about the metacarpal frame's y axis (toward its -z axis).
        ta = a[..., :4]
        heading_t = np.full(lead, self.thumb_heading)
        r_meta = (
            _rot_z(heading_t)
            @ _rot_y(ta[..., 0])
            @ _rot_z(-ta[..., 1])
            @ _rot_x(np.full(lead, self.thumb_pronation))
        )
        ex, ez = r_meta[..., :, 0], r_meta[..., :, 2]  # (..., 3)
        theta = np.stack(
            [np.zeros(lead), ta[..., 2], ta[..., 2] + ta[..., 3]], axis=-1
        )  # (..., 3) cumulative flexion of metacarpal, proximal, distal
        tdirs = (
            np.cos(theta)[..., None] * ex[..., None, :]
            - np.sin(theta)[..., None] * ez[..., None, :]
        )  # (..., 3, 3)
        tbones = tdirs * (self.scale * np.asarray(self.thumb_lengths, dtype=float))[:, None]
        cmc = self.scale * np.asarray(self.thumb_cmc, dtype=float)
        out[..., 1, :] = cmc
        out[..., 2:5, :] = cmc + np.cumsum(tbones, axis=-2)
        return out

    def solve_angles(
        self,
        target_keypoints: np.ndarray,
        initial: np.ndarray | None = None,
        indices: np.ndarray | list[int] | tuple[int, ...] | None = None,
        *,
        regularization: float = 0.0,
        max_nfev: int = 400,
    ) -> np.ndarray:
        """Least-squares fit of joint angles to keypoints, within the joint limits.

        Minimises ``sum_i |keypoints(a)[i] - target[i]|^2 + regularization^2 * |a - a0|^2``
        over ``i in indices`` with ``a`` bounded by :data:`JOINT_LOWER` / :data:`JOINT_UPPER`.

        Args:
            target_keypoints: (21, 3) target keypoints, metres, wrist frame. Rows not listed in
                ``indices`` are ignored (they may be NaN).
            initial: (20,) initial guess ``a0``, radians; clipped into the limits. Defaults
                to :data:`OPEN_POSE`.
            indices: keypoint indices to fit; default all of 1..20.
            regularization: weight (metres per radian) pulling the solution toward ``a0``;
                useful when ``indices`` leaves some joints unconstrained.
            max_nfev: maximum number of residual evaluations.

        Returns:
            (20,) joint angles, radians, within the limits.

        Raises:
            ValueError: on a wrong target shape, bad indices or non-finite used targets.
        """
        target = np.asarray(target_keypoints, dtype=float)
        if target.shape != (NUM_HUMAN_KEYPOINTS, 3):
            raise ValueError(f"expected (21, 3) target keypoints, got {target.shape}")
        idx = (
            np.arange(1, NUM_HUMAN_KEYPOINTS) if indices is None else np.asarray(indices, dtype=int)
        )
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= NUM_HUMAN_KEYPOINTS:
            raise ValueError("indices must be a non-empty list of keypoint indices in 0..20")
        if not np.all(np.isfinite(target[idx])):
            raise ValueError("target keypoints used by the fit must be finite")
        a0 = OPEN_POSE if initial is None else np.asarray(initial, dtype=float)
        if a0.shape != (NUM_JOINTS,):
            raise ValueError(f"expected ({NUM_JOINTS},) initial angles, got {a0.shape}")
        a0 = np.clip(a0, JOINT_LOWER, JOINT_UPPER)
        goal = target[idx]
        reg = float(regularization)

        def residual(a: np.ndarray) -> np.ndarray:
            r = (self.keypoints(a)[idx] - goal).ravel()
            return np.concatenate([r, reg * (a - a0)]) if reg > 0 else r

        result = least_squares(
            residual, a0, bounds=(JOINT_LOWER, JOINT_UPPER), method="trf", max_nfev=max_nfev
        )
        logger.debug(
            "solve_angles: cost=%.3g nfev=%d status=%d", result.cost, result.nfev, result.status
        )
        return np.clip(result.x, JOINT_LOWER, JOINT_UPPER)


#: The nominal adult hand (scale 1).
DEFAULT_HAND: Final[HumanHandModel] = HumanHandModel()


def keypoints(angles: np.ndarray, hand: HumanHandModel | None = None) -> np.ndarray:
    """Forward kinematics with ``hand`` (default :data:`DEFAULT_HAND`).

    Args:
        angles: (20,) or (..., 20) joint angles, radians.
        hand: the hand model; ``None`` for the nominal adult hand.

    Returns:
        (21, 3) or (..., 21, 3) keypoints, metres, in the wrist frame.
    """
    return (hand or DEFAULT_HAND).keypoints(angles)


def solve_angles(
    target_keypoints: np.ndarray,
    initial: np.ndarray | None = None,
    indices: np.ndarray | list[int] | tuple[int, ...] | None = None,
    *,
    hand: HumanHandModel | None = None,
    regularization: float = 0.0,
) -> np.ndarray:
    """Fit joint angles to (21, 3) keypoints; see :meth:`HumanHandModel.solve_angles`.

    Returns:
        (20,) joint angles, radians, within :data:`JOINT_LOWER` / :data:`JOINT_UPPER`.
    """
    return (hand or DEFAULT_HAND).solve_angles(
        target_keypoints, initial, indices, regularization=regularization
    )


def clip_angles(angles: np.ndarray) -> np.ndarray:
    """Clip (..., 20) joint angles (radians) into the joint limits."""
    return np.clip(np.asarray(angles, dtype=float), JOINT_LOWER, JOINT_UPPER)
