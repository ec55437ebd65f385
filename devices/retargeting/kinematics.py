"""Hand kinematics in pinocchio, built from the same MJCF the simulator compiles.

``pin.buildModelFromMJCF`` reads one file, drops the root body's pose and expresses every
frame in the root (palm) body; MJCF sites become operational frames. We write the hand's
MjSpec (with our sites) to a temporary file and build from it, then express results in the
palm frame.
"""

from __future__ import annotations

import functools
import os
import tempfile

import mujoco
import numpy as np
import pinocchio as pin
from dex_retargeting.robot_wrapper import RobotWrapper

from assets.hands import PALM_FRAME_SITE, ROBOT_KEYPOINT_NAMES, Hand, load_hand


def _build_pinocchio(hand: Hand) -> pin.Model:
    spec = hand.mjspec()
    xml = spec.to_xml()
    fd, path = tempfile.mkstemp(suffix=".xml", prefix=f"dexteleop_{hand.name}_")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(xml)
        model = pin.buildModelFromMJCF(path)
    finally:
        os.unlink(path)
    # The parser skips sites on the root body; add them as frames fixed to the root.
    root = model.getFrameId(hand.spec.palm_body)
    for site in spec.body(hand.spec.palm_body).sites:
        if model.existFrame(site.name):
            continue
        r = np.zeros(9)
        mujoco.mju_quat2Mat(r, np.asarray(site.quat, dtype=float))
        placement = pin.SE3(r.reshape(3, 3), np.asarray(site.pos, dtype=float))
        model.addFrame(pin.Frame(site.name, 0, root, placement, pin.FrameType.OP_FRAME))
    return model


class MjcfRobotWrapper(RobotWrapper):
    """dex-retargeting's RobotWrapper over a pinocchio model built from our MJCF.

    The upstream class reads URDF only and looks links up among BODY frames; here any
    frame (bodies and the sites we add) can be a link.
    """

    def __init__(self, model: pin.Model) -> None:
        self.model = model
        self.data = model.createData()
        self.q0 = pin.neutral(model)
        if model.nv != model.nq:
            raise ValueError("hands with non-revolute joints are not supported")

    def get_link_index(self, name: str) -> int:
        if not self.model.existFrame(name):
            raise ValueError(f"{name} is not a frame of the hand model")
        return self.model.getFrameId(name)


class HandKinematics:
    """Forward kinematics of a hand's keypoints, in the palm frame.

    Args:
        hand: the resolved hand. Joint vectors are in ``hand.joint_names`` order.
    """

    def __init__(self, hand: Hand) -> None:
        self.hand = hand
        self.model = _build_pinocchio(hand)
        self.wrapper = MjcfRobotWrapper(self.model)
        names = list(self.wrapper.dof_joint_names)
        if sorted(names) != sorted(hand.joint_names):
            raise ValueError(f"{hand.name}: pinocchio joints {names} differ from the spec")
        #: permutation: pinocchio q = q_spec[self.spec_to_pin]
        self.spec_to_pin = np.array([hand.joint_names.index(n) for n in names])
        self.pin_to_spec = np.argsort(self.spec_to_pin)
        self._kp_frames = [self.model.getFrameId(f"kp_{n}") for n in ROBOT_KEYPOINT_NAMES]
        #: palm frame axes in the palm body (pinocchio's root) frame
        self.r_body_palm = hand.palm_frame_rot
        self.p_body_palm = hand.palm_frame_pos.copy()
        fid = self.model.getFrameId(PALM_FRAME_SITE)
        self._data = self.model.createData()
        pin.framesForwardKinematics(self.model, self._data, pin.neutral(self.model))
        # Sanity: the palm-frame site in pinocchio sits where we put it.
        if not np.allclose(self._data.oMf[fid].translation, self.p_body_palm, atol=1e-9):
            raise ValueError(f"{hand.name}: palm frame differs between MuJoCo and pinocchio")

    def to_body(self, p_palm: np.ndarray) -> np.ndarray:
        """Points (..., 3) from the palm frame to the palm body (pinocchio root) frame."""
        return p_palm @ self.r_body_palm.T + self.p_body_palm

    def keypoints(self, q: np.ndarray) -> np.ndarray:
        """(8, 3) keypoints in the palm frame for joint positions ``q`` (n,), spec order."""
        q = np.asarray(q, dtype=float)
        pin.framesForwardKinematics(self.model, self._data, q[self.spec_to_pin])
        p = np.array([self._data.oMf[f].translation for f in self._kp_frames])
        return (p - self.p_body_palm) @ self.r_body_palm


@functools.cache
def hand_kinematics(name: str) -> HandKinematics:
    """Cached kinematics of hand ``name`` (do not mutate it across threads)."""
    return HandKinematics(load_hand(name))
