"""The simulated scene, composed in code: a hand on a wrist mount or an arm, optionally an
object.

Without an arm the hand is attached to a mocap body ``mount`` whose frame coincides with the
hand's palm frame, so the mount's pose *is* the palm frame's pose in the world. The mount
either stays at one of the six DexNDM wrist orientations or follows the operator's wrist.
With an arm (``arm="panda"``) the arm stands at :data:`ARM_BASE_POS` and carries the hand at
its flange (``assets.arms.mount_transform``); its joints and actuators are prefixed
``arm/``, and the arm is posed so that the palm frame starts where the mount would be.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from assets.hands import PALM_FRAME_SITE, ROBOT_KEYPOINT_NAMES, Hand
from assets.objects import ObjectSpec, geom_type
from assets.physics import DEFAULT_PHYSICS, Physics
from devices.tick import tilted_unit

HAND_PREFIX = "hand/"
ARM_PREFIX = "arm/"
MOUNT_BODY = "mount"
OBJECT_BODY = "object"

#: Where the palm frame's origin sits in the world, m.
MOUNT_POS = (0.0, 0.0, 0.35)
#: Reflected rotor inertia added to each arm joint, kg m^2: a Franka joint's motor behind
#: its ~100:1 gearbox (Menagerie's Panda has none). Without it the distal joints' stiff
#: position servos (kp 500 on a few grams of link inertia) are unstable at the hand's 10 ms
#: physics step.
ARM_ARMATURE = 0.1
#: Where an arm's base stands in the world, m: behind the hand's start and below it (the
#: floor drops to the base with an arm), where a Panda reaches the start in all six wrist
#: orientations away from its joint limits.
ARM_BASE_POS = (-0.45, 0.0, -0.3)

# Palm-frame axes (columns x: along the fingers, y: toward the thumb, z: dorsal) in the
# world for each wrist orientation (DexNDM's six: palm up/down, base up/down, thumb up/down).
_R = {
    "palm_down": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "palm_up": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "base_up": ((0, 0, 1), (0, 1, 0), (-1, 0, 0)),  # fingers point down, the wrist up
    "base_down": ((0, 0, -1), (0, 1, 0), (1, 0, 0)),  # fingers point up
    "thumb_up": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    "thumb_down": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
}
#: The six fixed wrist orientations, as rotation matrices (world from palm frame).
WRIST_ORIENTATIONS: dict[str, np.ndarray] = {k: np.array(v, dtype=float) for k, v in _R.items()}
#: Wrist modes: a fixed orientation or following the operator.
WRIST_MODES: tuple[str, ...] = (*WRIST_ORIENTATIONS, "follow")


def wrist_gravity(wrist: str, tilt: float = 1.0) -> np.ndarray:
    """The unit gravity direction in the palm frame for one of the six wrists, or for a wrist
    between two of them: ``A>B:DEG`` (e.g. ``palm_up>base_up:45``) is wrist ``A`` turned
    ``DEG`` degrees toward ``B`` (gravity on the great circle from ``A``'s to ``B``'s; ``DEG``
    up to the angle between them, 90 for neighbours). ``tilt`` (0-1) scales ``DEG``: the
    tilt curriculum's share (the rotation task's ``tilt_share``)."""
    if ">" in wrist:
        return tilted_unit(wrist, wrist_gravity, tilt, "wrist", "palm_up>base_up:45")
    if wrist not in WRIST_ORIENTATIONS:
        known = ", ".join([*WRIST_ORIENTATIONS, "A>B:DEG"])
        raise ValueError(f"unknown wrist {wrist!r}; known: {known}")
    return WRIST_ORIENTATIONS[wrist].T @ np.array([0.0, 0.0, -1.0])


def mat_to_quat(r: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r, dtype=float).reshape(-1))
    return q


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation of a MuJoCo camera (looking along its -z, y up) at ``eye`` facing ``target``."""
    z = eye - target
    z = z / np.linalg.norm(z)
    x = np.cross([0.0, 0.0, 1.0], z)
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


@dataclass(frozen=True)
class SceneObject:
    """An object to place in the hand, with its physical parameters."""

    spec: ObjectSpec
    mass_kg: float
    friction: float


#: Solver options a scene takes from its hand's model (with the physics applied).
_OPTIONS = (
    "timestep",
    "integrator",
    "cone",
    "impratio",
    "iterations",
    "ls_iterations",
    "tolerance",
    "ls_tolerance",
    "noslip_iterations",
    "jacobian",
    "solver",
    "disableflags",
    "enableflags",
)


def build_scene(
    hand: Hand,
    *,
    wrist: str,
    obj: SceneObject | None = None,
    physics: str | Physics = DEFAULT_PHYSICS,
    arm: str | None = None,
) -> mujoco.MjSpec:
    """Compose the scene spec: floor, light, camera, mount (or arm) + hand, optional object.

    Args:
        hand: the resolved hand.
        wrist: one of WRIST_MODES; ``follow`` starts palm down.
        obj: an object placed at the hand's spawn point (palm frame), or None.
        physics: the hand's physics (``assets.physics``: a name or a Physics), applied to
            the hand's joints and actuators and the scene's solver options.
        arm: an arm (``assets.arms``) carrying the hand instead of the mocap mount; the
            spec's arm joints are at the model's defaults (pose them with
            :func:`arm_start_q`).
    """
    if wrist not in WRIST_MODES:
        raise ValueError(f"unknown wrist mode {wrist!r}; known: {', '.join(WRIST_MODES)}")
    hand_spec = hand.mjspec(physics=physics)

    spec = mujoco.MjSpec()
    spec.modelname = f"dexteleop_{hand.name}"
    for name in _OPTIONS:
        setattr(spec.option, name, getattr(hand_spec.option, name))
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 960

    world = spec.worldbody
    floor = world.add_geom()
    floor.name = "floor"
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [1.0, 1.0, 0.05]
    if arm is not None:
        floor.pos = [0.0, 0.0, ARM_BASE_POS[2]]
    floor.rgba = [0.55, 0.6, 0.65, 1.0]
    light = world.add_light()
    light.pos = [0.0, -0.3, 1.2]
    light.dir = [0.0, 0.25, -1.0]
    cam = world.add_camera()
    cam.name = "front"
    center = np.array(MOUNT_POS) + np.array([0.1, 0.0, 0.02])  # the middle of the hand
    cam.pos = (center + np.array([0.12, -0.3, 0.16])).tolist()
    cam.quat = mat_to_quat(look_at(np.array(cam.pos), center)).tolist()

    r_world = WRIST_ORIENTATIONS["palm_down" if wrist == "follow" else wrist]
    # the palm body placed so that the frame it hangs from coincides with the palm frame
    r_bf = hand.palm_frame_rot
    palm_in_frame = np.eye(4)
    palm_in_frame[:3, :3] = r_bf.T
    palm_in_frame[:3, 3] = -r_bf.T @ hand.palm_frame_pos
    if arm is None:
        mount = world.add_body()
        mount.name = MOUNT_BODY
        mount.mocap = True
        mount.pos = list(MOUNT_POS)
        mount.quat = mat_to_quat(r_world).tolist()
        frame = mount.add_frame()
        at = palm_in_frame
    else:
        frame, at = _add_arm(spec, arm, hand, palm_in_frame)
    frame.pos = at[:3, 3].tolist()
    frame.quat = mat_to_quat(at[:3, :3]).tolist()
    palm = hand_spec.body(hand.spec.palm_body)
    palm.pos = [0.0, 0.0, 0.0]  # an attached body keeps its pose relative to the frame
    palm.quat = [1.0, 0.0, 0.0, 0.0]
    frame.attach_body(palm, HAND_PREFIX, "")

    if obj is not None:
        body = world.add_body()
        body.name = OBJECT_BODY
        spawn = np.array(MOUNT_POS) + r_world @ object_spawn_palm(hand, obj.spec)
        body.pos = spawn.tolist()
        body.quat = mat_to_quat(r_world).tolist()  # object axes = palm axes: z off the palm
        body.add_freejoint()
        g = body.add_geom()
        g.name = "object_geom"
        g.type = geom_type(obj.spec.shape)
        g.size = list(obj.spec.size) + [0.0] * (3 - len(obj.spec.size))
        g.mass = obj.mass_kg
        g.friction = [obj.friction, 0.005, 0.0001]
        g.condim = 4
        g.rgba = [0.85, 0.3, 0.2, 1.0]
    return spec


def _add_arm(
    spec: mujoco.MjSpec, name: str, hand: Hand, palm_in_frame: np.ndarray
) -> tuple[mujoco.MjsFrame, np.ndarray]:
    """Stand the arm at ARM_BASE_POS; returns the frame (on the flange's body) the palm body
    hangs from and that frame's pose in its body (flange site x mount x palm placement)."""
    from assets.arms import arm_mjspec, arm_spec, mount_transform

    aspec = arm_spec(name)
    arm = arm_mjspec(aspec)
    base = spec.worldbody.add_frame()
    base.pos = list(ARM_BASE_POS)
    base.attach_body(arm.body(aspec.base_body), ARM_PREFIX, "")
    for body in spec.bodies:  # the real arm's controller compensates its own links' weight
        if body.name.startswith(ARM_PREFIX):
            body.gravcomp = 1.0
    for joint in spec.joints:  # the gearboxes' reflected rotor inertia (see ARM_ARMATURE)
        if joint.name.startswith(ARM_PREFIX):
            joint.armature = ARM_ARMATURE
    site = spec.site(ARM_PREFIX + aspec.flange_site)
    flange = np.eye(4)  # the flange site in its body
    flange[:3, 3] = site.pos
    r = np.zeros(9)
    mujoco.mju_quat2Mat(r, np.asarray(site.quat, dtype=float))
    flange[:3, :3] = r.reshape(3, 3)
    body = site.parent
    frame = body.add_frame()
    return frame, flange @ mount_transform(hand_extent_behind_palm(hand)) @ palm_in_frame


def hand_extent_behind_palm(hand: Hand) -> float:
    """How far the hand's collision geometry reaches behind its palm frame along the palm's
    -x (toward the wrist), m, in the open pose: where a mount must leave room."""
    model = hand.mjspec().compile()
    data = mujoco.MjData(model)
    jids = [model.joint(j).id for j in hand.joint_names]
    data.qpos[[model.jnt_qposadr[j] for j in jids]] = hand.default_open
    mujoco.mj_kinematics(model, data)
    palm = model.site(PALM_FRAME_SITE).id
    p, r = data.site_xpos[palm], data.site_xmat[palm].reshape(3, 3)
    reach = 0.0
    for g in range(model.ngeom):
        if model.geom_contype[g] | model.geom_conaffinity[g]:
            x = float((data.geom_xpos[g] - p) @ r[:, 0])
            reach = max(reach, -(x - model.geom_rbound[g]))
    return reach


def object_spawn_palm(hand: Hand, obj: ObjectSpec) -> np.ndarray:
    """Where an object's centre starts, palm frame: 2 mm off the palm's inner surface, its
    axes aligned with the palm frame's. With the palm up it rests there; in the other wrist
    orientations it starts at the same place and gravity decides (palm down: it falls)."""
    return np.array(hand.spec.palm_surface_m) - np.array([0.0, 0.0, obj.half_height_m + 0.002])


def rotation_start_palm(hand: Hand, rbound_m: float) -> np.ndarray:
    """Where the in-hand rotation tasks start an object's centre, palm frame: 1.5 cm along
    the palm's x from the surface point and its bounding radius ``rbound_m`` (+4 mm) off
    the palm, so that it drops into the cupped fingers without touching them first."""
    return np.array(hand.spec.palm_surface_m) + np.array([0.015, 0.0, -(rbound_m + 0.004)])


#: The chaos box's balls (DexNDM Sec. 3.3: "a container of soft balls"): radius (m), mass
#: (kg), sliding friction, and MuJoCo solref (time constant, damping ratio) made soft.
CHAOS_BALL_RADIUS_M = 0.025
CHAOS_BALL_MASS_KG = 0.012
CHAOS_BALL_FRICTION = 0.6
CHAOS_BALL_SOLREF = (0.04, 0.7)
#: Free space the box leaves around the hand (m, each side) and wall thickness.
CHAOS_BOX_MARGIN_M = 0.015
CHAOS_BOX_WALL_M = 0.01


def add_chaos_box(
    spec: mujoco.MjSpec, lo: np.ndarray, hi: np.ndarray, n_balls: int, seed: int = 0
) -> None:
    """Put a box of ``n_balls`` soft balls around the world-frame region [lo, hi] (the hand's
    extent): a floor and four walls, open at the top, ``CHAOS_BOX_MARGIN_M`` from the region,
    the balls in layers above it (jittered by ``seed``); they fall onto and around the hand
    and settle there, and the walls keep them against it."""
    if n_balls < 1:
        raise ValueError("a chaos box needs at least one ball")
    lo = np.asarray(lo, float) - CHAOS_BOX_MARGIN_M
    hi = np.asarray(hi, float) + CHAOS_BOX_MARGIN_M
    size = hi - lo
    height = size[2] + 4 * CHAOS_BALL_RADIUS_M
    centre = (lo + hi) / 2
    w = CHAOS_BOX_WALL_M
    walls = {
        "floor": ([centre[0], centre[1], lo[2] - w], [size[0] / 2 + w, size[1] / 2 + w, w]),
        "wall_x0": ([lo[0] - w, centre[1], lo[2] + height / 2], [w, size[1] / 2, height / 2]),
        "wall_x1": ([hi[0] + w, centre[1], lo[2] + height / 2], [w, size[1] / 2, height / 2]),
        "wall_y0": ([centre[0], lo[1] - w, lo[2] + height / 2], [size[0] / 2, w, height / 2]),
        "wall_y1": ([centre[0], hi[1] + w, lo[2] + height / 2], [size[0] / 2, w, height / 2]),
    }
    for name, (pos, half) in walls.items():
        g = spec.worldbody.add_geom()
        g.name = f"chaos_{name}"
        g.type = mujoco.mjtGeom.mjGEOM_BOX
        g.pos = list(pos)
        g.size = list(half)
        g.rgba = [0.45, 0.5, 0.55, 0.25]
    rng = np.random.default_rng([seed, 3301])
    r = CHAOS_BALL_RADIUS_M
    d = 2.05 * r
    nx, ny = max(int(size[0] // d), 1), max(int(size[1] // d), 1)
    for i in range(n_balls):
        layer, k = divmod(i, nx * ny)
        iy, ix = divmod(k, nx)
        pos = lo + np.array([r + ix * d, r + iy * d, size[2] + r + layer * d])
        pos[:2] += rng.uniform(-0.2 * r, 0.2 * r, 2)
        b = spec.worldbody.add_body()
        b.name = f"chaos_ball_{i}"
        b.pos = pos.tolist()
        b.add_freejoint()
        g = b.add_geom()
        g.type = mujoco.mjtGeom.mjGEOM_SPHERE
        g.size = [r, 0.0, 0.0]
        g.mass = CHAOS_BALL_MASS_KG
        g.friction = [CHAOS_BALL_FRICTION, 0.005, 0.0001]
        g.solref = list(CHAOS_BALL_SOLREF)
        g.rgba = [0.95, 0.75, 0.2, 1.0]


def site_names() -> tuple[str, ...]:
    """The palm-frame site followed by the 8 keypoint sites, as named in the scene."""
    return (HAND_PREFIX + PALM_FRAME_SITE, *(f"{HAND_PREFIX}kp_{n}" for n in ROBOT_KEYPOINT_NAMES))
