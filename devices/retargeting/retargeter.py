"""Human hand -> robot hand retargeting with dex-retargeting, on kinematics from our MJCF.

Human keypoints are first mapped into the robot's palm frame (:mod:`.mapping`: each finger
anchored at its robot base and scaled to its length, the thumb blending into the map of the
finger it pinches); the optimizer then solves for joints.

Modes
-----
- ``position``: the 8 robot keypoints (PIP and tip of index, middle, ring, thumb) go to the
  mapped human PIP/IP and tips (dex-retargeting ``PositionOptimizer``). These mapped
  points are also the *fingertip command* every mode reports.
- ``vector``: per finger, the vectors from the finger's base to its PIP and tip, and from
  the thumb tip to each other tip (``VectorOptimizer``): the fingers' shapes and the pinches,
  independent of where the operator's fingers sit on the palm.
- ``dexpilot``: DexPilot's wrist-to-tip and tip-to-tip vectors with its pinch projection
  (``DexPilotOptimizer``).

Each result is warm-started from the previous one and low-pass filtered
(``y += alpha * (x - y)``; alpha = 1 disables the filter).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dex_retargeting.optimizer
import numpy as np
from dex_retargeting.optimizer import DexPilotOptimizer, PositionOptimizer, VectorOptimizer
from dex_retargeting.optimizer_utils import LPFilter
from dex_retargeting.seq_retarget import SeqRetargeting

from assets.hands import (
    FINGER_BASE_HUMAN_INDEX,
    FINGERS,
    KEYPOINT_HUMAN_INDEX,
    PALM_FRAME_SITE,
    ROBOT_KEYPOINT_NAMES,
    Hand,
    load_hand,
)
from devices.retargeting.kinematics import HandKinematics
from devices.retargeting.mapping import HandMap
from devices.tick import Command, HumanFrame

log = logging.getLogger(__name__)


def _solver_message(*args: object, **_: object) -> None:
    log.warning("retargeting solver: %s", " ".join(map(str, args)))


# dex-retargeting print()s solver failures to stdout, where the CLI may be writing its JSON
# report; send them to the log instead (shadows the builtin for that module only).
dex_retargeting.optimizer.print = _solver_message  # type: ignore[attr-defined]

RETARGET_MODES: tuple[str, ...] = ("position", "vector", "dexpilot")

# dex-retargeting adds ``norm_delta * |q - q_last|^2`` to pull each solve toward the last
# one; its default (4e-3) is so strong against our metre-scale losses that one solve covers
# only part of the way (a held LEAP pose needed ~10 ticks to come within 2 cm). Smoothness
# comes from the low-pass filter and the safety rate limit instead, so keep it small.
# SLSQP stops when the objective changes by less than FTOL_ABS: on the bundled demo clip
# 1e-7 costs ~10 evaluations (2.5 ms) for 11.5 mm mean keypoint error, 1e-10 costs ~70
# (16 ms) for 11.3 mm.
NORM_DELTA = 1e-5
FTOL_ABS = 1e-7
# Hard caps on one solve, so no input can stall the control loop (a typical solve takes
# 5-70 evaluations and 1-15 ms); on a cap the best point so far is returned.
MAX_EVALS = 300
MAX_SOLVE_S = 0.03


@dataclass
class RetargetConfig:
    """Retargeting settings.

    Attributes:
        mode: one of RETARGET_MODES.
        scale: the operator's scale factor, multiplying the hand's default human->robot
            scale (larger hands: < 1).
        lowpass_alpha: first-order low-pass on the joint result, in (0, 1]; 1 = off.
            At 20 Hz, 0.6 puts the cut-off near 3 Hz.
        max_solve_s: wall-clock cap on one solve (real time: no input may stall the loop);
            None leaves only the evaluation cap, so results do not depend on how busy the
            machine is (runs on a virtual clock use that).
    """

    mode: str = "position"
    scale: float = 1.0
    lowpass_alpha: float = 0.6
    max_solve_s: float | None = MAX_SOLVE_S


class Retargeter:
    """Turns HumanFrames into Commands (fingertip keypoints + joint targets) for one hand."""

    def __init__(self, hand: Hand | str, config: RetargetConfig | None = None) -> None:
        self.hand = load_hand(hand) if isinstance(hand, str) else hand
        self.config = config or RetargetConfig()
        if self.config.mode not in RETARGET_MODES:
            raise ValueError(
                f"unknown retargeting mode {self.config.mode!r}; known: {', '.join(RETARGET_MODES)}"
            )
        if not 0 < self.config.lowpass_alpha <= 1:
            raise ValueError(f"lowpass_alpha must be in (0, 1], got {self.config.lowpass_alpha}")
        self.kin = HandKinematics(self.hand)
        self.map = HandMap(self.hand, self.config.scale)
        self.optimizer = self._make_optimizer(self.config.mode)
        self._seq = SeqRetargeting(
            self.optimizer,
            has_joint_limits=True,
            lp_filter=LPFilter(self.config.lowpass_alpha)
            if self.config.lowpass_alpha < 1
            else None,
        )
        # The solver's own bounds: the hand's limits without hyperextension where the spec says.
        lo = self.hand.retarget_lower[self.kin.spec_to_pin]
        hi = self.hand.upper[self.kin.spec_to_pin]
        self.optimizer.set_joint_limit(np.stack([lo, hi], axis=1), epsilon=0.0)
        self._seq.joint_limits = np.stack([lo, hi], axis=1)
        self.reset()

    def _make_optimizer(self, mode: str):
        robot = self.kin.wrapper
        joints = list(robot.dof_joint_names)
        kp_links = [f"kp_{n}" for n in ROBOT_KEYPOINT_NAMES]
        if mode == "position":
            opt = PositionOptimizer(
                robot,
                joints,
                kp_links,
                np.array(KEYPOINT_HUMAN_INDEX),
                huber_delta=0.02,
                norm_delta=NORM_DELTA,
            )
        elif mode == "vector":
            # Each finger's shape (base -> PIP, base -> tip), then thumb tip -> other tips.
            origins = [f"base_{f}" for f in FINGERS for _ in range(2)]
            origins += ["kp_thumb_tip"] * 3
            kp_links = [*kp_links, "kp_index_tip", "kp_middle_tip", "kp_ring_tip"]
            human = np.array(
                [
                    [FINGER_BASE_HUMAN_INDEX[i // 2] for i in range(8)] + [4, 4, 4],
                    [*KEYPOINT_HUMAN_INDEX, 8, 12, 16],
                ]
            )
            opt = VectorOptimizer(
                robot, joints, origins, kp_links, human, huber_delta=0.02, norm_delta=NORM_DELTA
            )
        else:
            tips = ["kp_thumb_tip", "kp_index_tip", "kp_middle_tip", "kp_ring_tip"]
            opt = DexPilotOptimizer(robot, joints, tips, PALM_FRAME_SITE, norm_delta=NORM_DELTA)
        opt.opt.set_ftol_abs(FTOL_ABS)
        opt.opt.set_maxeval(MAX_EVALS)
        if self.config.max_solve_s is not None:
            opt.opt.set_maxtime(self.config.max_solve_s)
        return opt

    def reset(self, q: np.ndarray | None = None) -> None:
        """Forget the history; warm-start the next solve from ``q`` (default: open pose)."""
        q = self.hand.default_open if q is None else np.asarray(q, dtype=float)
        self._seq.reset()
        self._seq.set_qpos(q[self.kin.spec_to_pin].astype(np.float32))
        if self._seq.filter is not None:
            self._seq.filter.reset()

    def map_keypoints(self, human: np.ndarray) -> np.ndarray:
        """(21, 3) human keypoints (wrist frame) -> (21, 3) targets in the robot palm frame."""
        return self.map.forward(human)

    def reference(self, mapped: np.ndarray) -> np.ndarray:
        """The optimizer's reference value from mapped keypoints, in pinocchio's root frame."""
        idx = self.optimizer.target_link_human_indices
        if self.optimizer.retargeting_type == "POSITION":
            return self.kin.to_body(mapped[idx])
        vectors = mapped[idx[1]] - mapped[idx[0]]
        return vectors @ self.kin.r_body_palm.T

    def __call__(self, frame: HumanFrame, *, solve: bool = True) -> Command:
        """Retarget one (already validated) frame. With ``solve=False`` only the keypoints
        are mapped (the joint solve, the costly part, is skipped: ``joints`` is None); the
        solver's warm start and filter then go stale, so :meth:`reset` before solving again.
        """
        mapped = self.map_keypoints(frame.keypoints)
        reference = self.reference(mapped)
        if not np.all(np.isfinite(reference)) or np.abs(reference).max() > 10.0:
            raise ValueError("retargeting reference is not finite or absurdly large")
        if not solve:
            return Command(t=frame.t, seq=frame.seq, keypoints=mapped[list(KEYPOINT_HUMAN_INDEX)])
        q_pin = self._seq.retarget(reference)
        joints = np.asarray(q_pin, dtype=float)[self.kin.pin_to_spec]
        joints = np.clip(joints, self.hand.retarget_lower, self.hand.upper)  # float32 rounding
        return Command(
            t=frame.t,
            seq=frame.seq,
            keypoints=mapped[list(KEYPOINT_HUMAN_INDEX)],
            joints=joints,
        )
