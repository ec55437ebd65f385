"""Where the operator's hand points go in the robot's palm frame.

The operator's wrist frame and the robot's palm frame share axes (x along the fingers, y
toward the thumb, z dorsal), so the map is made of scales and anchors, one per digit:

- **Each digit** (index, middle, ring, thumb) in its own frame, anchored at the robot
  digit's base and scaled by that digit's robot/human length ratio ``s_f``::

      p -> robot base_f + s_f * (p - human base_f)        (human base: MCP; thumb: CMC)

  so a straight human finger asks for a straight robot finger of the right length, and the
  thumb works from where the robot's thumb is, whatever the operator's finger spacing
  (human fingers sit closer together than LEAP's or Allegro's, and a human thumb starts
  elsewhere: one shared map asks the robot for digit positions it cannot reach).
- **Pinches**: a human pinch point maps to two different robot points through the thumb's
  and the finger's maps. As the human thumb tip approaches a fingertip, both digits shift
  toward the midpoint of those two points, with a weight that grows from 0 at a human
  thumb-tip to fingertip distance of PINCH_BLEND_M to 1 at PINCH_TOUCH_M (weights
  scaled to sum to at most 1), so at contact the robot is asked to pinch exactly, and
  apart each digit keeps its shape.
- **Thumb**: its robot workspace differs from a human's (LEAP's swings out sideways), so
  its map also rotates, rescales and shifts the human thumb to best overlay the two
  workspaces (:func:`thumb_alignment`).
- **Wrist** (keypoint 0): the palm frame's origin. **Pinky**: the middle finger's map
  (the robots have no pinky).

All scales are multiplied by the operator's scale factor.
"""

from __future__ import annotations

import functools

import numpy as np

from assets.hands import KEYPOINT_HUMAN_INDEX, Hand, load_hand
from devices.tick import WRIST

#: Human (base, following joints) of index, middle, ring, thumb (FINGERS order).
DIGIT_CHAINS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (5, (6, 7, 8)),
    (9, (10, 11, 12)),
    (13, (14, 15, 16)),
    (1, (2, 3, 4)),
)
PINKY_CHAIN = (17, (18, 19, 20))
THUMB = 3
THUMB_TIP = 4
#: The digits meet fully when the human thumb-tip to fingertip keypoint distance is under
#: PINCH_TOUCH_M (finger pads touching: keypoints sit ~1 cm apart), not at all beyond
#: PINCH_BLEND_M, linearly between (human hand, m).
PINCH_TOUCH_M = 0.015
PINCH_BLEND_M = 0.05


@functools.cache
def finger_scales(hand_name: str) -> tuple[float, ...]:
    """Robot/human length ratios of index, middle, ring and thumb (base to tip, straight)."""
    from devices.inputs.human_hand import DEFAULT_HAND, OPEN_POSE
    from devices.retargeting.kinematics import hand_kinematics

    hand = load_hand(hand_name)
    robot_kp = hand_kinematics(hand_name).keypoints(np.zeros(hand.n_joints))
    human_kp = DEFAULT_HAND.keypoints(OPEN_POSE)
    out = []
    for f, (base, chain) in enumerate(DIGIT_CHAINS):
        robot = np.linalg.norm(robot_kp[2 * f + 1] - hand.finger_base_palm[f])
        human = np.linalg.norm(human_kp[chain[-1]] - human_kp[base])
        out.append(float(robot / human))
    return tuple(out)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares R, s, t with dst ~ s R src + t (Umeyama 1991). src, dst: (N, 3)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    e = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ e @ vt
    scale = float(np.trace(np.diag(sig) @ e) / (a**2).sum(1).mean())
    return r, scale, mu_d - scale * r @ mu_s


@functools.cache
def thumb_alignment(hand_name: str, samples: int = 3000, iterations: int = 40) -> tuple:
    """Similarity (R, s, t) taking human thumb points (relative to the CMC) into the palm frame.

    The human and robot thumbs move differently (LEAP's swings out sideways, a human's
    forward across the palm), so a thumb anchored at the robot's thumb base and scaled by
    length still asks for points 2-4 cm outside the robot thumb's reach. This aligns the two
    workspaces: pairs (IP, tip) from random human thumb poses are matched to the nearest
    pairs from random robot thumb poses, and a similarity transform is refit to the matches
    (iterative closest point), starting from the length-scaled, base-anchored map.
    Deterministic (seeded).
    """
    from scipy.spatial import cKDTree

    from devices.inputs.human_hand import DEFAULT_HAND, JOINT_LOWER, JOINT_UPPER, OPEN_POSE
    from devices.retargeting.kinematics import hand_kinematics

    hand = load_hand(hand_name)
    kin = hand_kinematics(hand_name)
    rng = np.random.default_rng(0)
    q = np.tile(hand.default_open, (samples, 1))
    q[:, 12:] = rng.uniform(hand.retarget_lower[12:], hand.upper[12:], size=(samples, 4))
    robot = np.array([kin.keypoints(qi)[6:].ravel() for qi in q])  # (N, 6): IP, tip
    angles = np.tile(OPEN_POSE, (samples, 1))
    angles[:, :4] = rng.uniform(JOINT_LOWER[:4], JOINT_UPPER[:4], size=(samples, 4))
    kp = DEFAULT_HAND.keypoints(angles)
    human = (kp[:, 3:5] - kp[:, 1:2]).reshape(-1, 3)  # IP, tip relative to the CMC
    r, s, t = np.eye(3), finger_scales(hand_name)[THUMB], hand.finger_base_palm[THUMB].copy()
    tree = cKDTree(robot)
    for _ in range(iterations):
        _, j = tree.query((s * human @ r.T + t).reshape(-1, 6))
        r, s, t = _similarity(human, robot[j].reshape(-1, 3))
    return r, s, t


def default_scale(hand_name: str) -> float:
    """The middle finger's scale: robot middle-finger length over the nominal human's."""
    return finger_scales(hand_name)[1]


class HandMap:
    """The human -> robot keypoint map of one hand (see the module docstring)."""

    def __init__(self, hand: Hand, operator_scale: float = 1.0) -> None:
        if not (np.isfinite(operator_scale) and 0.2 <= operator_scale <= 5.0):
            raise ValueError(f"scale must be between 0.2 and 5, got {operator_scale}")
        self.hand = hand
        self.scales = np.array(finger_scales(hand.name)) * operator_scale
        self.bases = hand.finger_base_palm.copy()  # (4, 3) FINGERS order
        r, s, t = thumb_alignment(hand.name)
        self.thumb_rot = r
        self.scales[THUMB] = s * operator_scale
        self.bases[THUMB] = t

    @property
    def scale(self) -> float:
        """The middle finger's scale (the hand's overall human -> robot scale)."""
        return float(self.scales[1])

    @staticmethod
    def pinch_weights(human: np.ndarray) -> np.ndarray:
        """(3,) how much index, middle, ring each meet the thumb (0 apart, 1 touching)."""
        tips = human[[chain[-1] for _, chain in DIGIT_CHAINS[:THUMB]]]
        d = np.linalg.norm(tips - human[THUMB_TIP], axis=1)
        w = np.clip((PINCH_BLEND_M - d) / (PINCH_BLEND_M - PINCH_TOUCH_M), 0.0, 1.0)
        total = w.sum()
        return w / total if total > 1.0 else w

    def forward(self, human: np.ndarray) -> np.ndarray:
        """(21, 3) human keypoints (wrist frame) -> (21, 3) targets in the palm frame."""
        human = np.asarray(human, dtype=float)
        out = np.empty_like(human)
        for f, (base, chain) in enumerate((*DIGIT_CHAINS, PINKY_CHAIN)):
            g = f if f <= THUMB else 1  # the pinky uses the middle's map
            idx = [base, *chain]
            rel = human[idx] - human[DIGIT_CHAINS[g][0]]
            if g == THUMB:
                rel = rel @ self.thumb_rot.T
            out[idx] = self.bases[g] + self.scales[g] * rel
        thumb_chain = list(DIGIT_CHAINS[THUMB][1])
        thumb_shift = np.zeros(3)
        for f, w in enumerate(self.pinch_weights(human)):
            if w == 0.0:
                continue
            tip = DIGIT_CHAINS[f][1][-1]
            mid = 0.5 * (out[tip] + out[THUMB_TIP])
            out[list(DIGIT_CHAINS[f][1])] += w * (mid - out[tip])
            thumb_shift += w * (mid - out[THUMB_TIP])
        out[thumb_chain] += thumb_shift
        out[WRIST] = 0.0
        return out

    def inverse(self, robot: np.ndarray, human: np.ndarray) -> np.ndarray:
        """A human hand whose 8 keypoints map onto ``robot`` (to ~1e-9 m).

        Args:
            robot: (8, 3) keypoints in the palm frame (``assets.ROBOT_KEYPOINT_NAMES`` order).
            human: (21, 3) a template hand; its digit bases anchor the inverse.

        Each digit's map inverts in closed form; the pinch blend, which couples the thumb and
        the fingers, is then solved by least squares from there.
        """
        from scipy.optimize import least_squares

        robot = np.asarray(robot, dtype=float)
        out = np.array(human, dtype=float)
        idx = list(KEYPOINT_HUMAN_INDEX)
        for f, (base, _) in enumerate(DIGIT_CHAINS):
            rel = (robot[2 * f : 2 * f + 2] - self.bases[f]) / self.scales[f]
            if f == THUMB:
                rel = rel @ self.thumb_rot  # undo the thumb's rotation
            out[idx[2 * f : 2 * f + 2]] = out[base] + rel

        def residual(x: np.ndarray) -> np.ndarray:
            out[idx] = x.reshape(8, 3)
            return (self.forward(out)[idx] - robot).ravel()

        if np.abs(residual(out[idx].ravel())).max() > 1e-10:
            sol = least_squares(residual, out[idx].ravel(), xtol=1e-14, ftol=1e-14, gtol=1e-14)
            out[idx] = sol.x.reshape(8, 3)
        return out
