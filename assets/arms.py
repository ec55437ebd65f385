"""Robot arms that carry the hand: what we take from their Menagerie models, plus the real
arm's limits with their sources.

Models come from the ``mujoco-menagerie`` package (offline: ``MENAGERIE_ROOT``). The hand
is mounted at the arm's flange by a documented transform (:func:`mount_transform`): the
palm frame's x axis (along the fingers) continues the flange's z axis (out of the flange),
the palm's dorsal side (+z) faces the flange's -x, and the palm frame sits far enough out
along the flange axis that the hand's collision geometry clears the flange.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import mujoco
import numpy as np

from assets.hands import menagerie_spec


@dataclass(frozen=True)
class ArmSpec:
    """An arm: its Menagerie model and the real arm's limits.

    Attributes:
        name: our short name (``panda``).
        menagerie / entry: the Menagerie robot and the model entry without a gripper.
        joint_names: the arm's joints, base to flange.
        base_body: the model's root body; ``flange_site``: the site at the flange.
        home_q: a comfortable start configuration (Franka's "ready" pose).
        max_joint_speed_rad_s / max_joint_accel_rad_s2: the real arm's joint limits.
        max_speed_m_s / max_rot_speed_rad_s: the real arm's Cartesian speed limits.
        real: facts about the real arm with their sources.
    """

    name: str
    menagerie: str
    entry: str
    joint_names: tuple[str, ...]
    base_body: str
    flange_site: str
    home_q: tuple[float, ...]
    max_joint_speed_rad_s: tuple[float, ...]
    max_joint_accel_rad_s2: tuple[float, ...]
    max_speed_m_s: float
    max_rot_speed_rad_s: float
    real: dict[str, str] = field(default_factory=dict)


PANDA = ArmSpec(
    name="panda",
    menagerie="franka_emika_panda",
    entry="panda_nohand",
    joint_names=tuple(f"joint{i}" for i in range(1, 8)),
    base_body="link0",
    flange_site="attachment_site",
    home_q=(0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4),
    max_joint_speed_rad_s=(2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61),
    max_joint_accel_rad_s2=(15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0),
    max_speed_m_s=1.7,
    max_rot_speed_rad_s=2.5,
    real={
        "limits": "Franka Control Interface documentation, robot and interface specifications "
        "(Panda): joint velocity 2.175 / 2.61 rad/s, acceleration 15/7.5/10/12.5/15/20/20 "
        "rad/s^2, Cartesian 1.7 m/s and 2.5 rad/s",
        "control": "FCI at 1 kHz over UDP; 20 missed cycles in a row raise "
        "communication_constraints_violation; reflexes (joint/cartesian) stop the arm and "
        "need an explicit recovery (../shared/HARDWARE-NOTES.md, section 3)",
        "clients": "franky-control and pylibfranka both bundle libfranka and cannot share a "
        "process: the real arm runs in a worker process",
    },
)

ARM_SPECS: dict[str, ArmSpec] = {PANDA.name: PANDA}


def available_arms() -> list[str]:
    return sorted(ARM_SPECS)


def arm_spec(name: str) -> ArmSpec:
    try:
        return ARM_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown arm {name!r}; known: {', '.join(available_arms())}") from None


def arm_mjspec(spec: ArmSpec) -> mujoco.MjSpec:
    """The arm's Menagerie model as an editable spec."""
    return menagerie_spec(spec.menagerie, spec.entry)


@functools.cache
def arm_limits(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) joint limits of the arm's model, rad."""
    spec = arm_spec(name)
    model = arm_mjspec(spec).compile()
    jids = [model.joint(j).id for j in spec.joint_names]
    r = model.jnt_range[jids]
    return r[:, 0].copy(), r[:, 1].copy()


#: The palm frame's axes in the flange frame (columns: palm x, y, z): the fingers continue
#: the flange's z axis, the back of the hand faces the flange's -x.
MOUNT_ROT = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
#: Clearance between the flange and the hand's nearest collision geometry, m.
MOUNT_GAP_M = 0.01


def mount_transform(hand_extent_x_m: float) -> np.ndarray:
    """The palm frame in the flange frame (4, 4), for a hand whose collision geometry
    reaches ``hand_extent_x_m`` behind its palm frame along the palm's x axis (toward the
    wrist; a positive distance)."""
    t = np.eye(4)
    t[:3, :3] = MOUNT_ROT
    t[:3, 3] = [0.0, 0.0, float(hand_extent_x_m) + MOUNT_GAP_M]
    return t
