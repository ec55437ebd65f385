"""The simulated scene, composed in code: a hand on a wrist mount, optionally an object.

The hand is attached to a mocap body ``mount`` whose frame coincides with the hand's palm
frame, so the mount's pose *is* the palm frame's pose in the world. The mount either stays
at one of the six DexNDM wrist orientations or follows the operator's wrist.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from assets.hands import PALM_FRAME_SITE, ROBOT_KEYPOINT_NAMES, Hand
from assets.objects import ObjectSpec, geom_type
from assets.physics import DEFAULT_PHYSICS, Physics

HAND_PREFIX = "hand/"
MOUNT_BODY = "mount"
OBJECT_BODY = "object"

#: Where the palm frame's origin sits in the world, m.
MOUNT_POS = (0.0, 0.0, 0.35)

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
) -> mujoco.MjSpec:
    """Compose the scene spec: floor, light, camera, mount + hand, optional object.

    Args:
        hand: the resolved hand.
        wrist: one of WRIST_MODES; ``follow`` starts palm down.
        obj: an object placed at the hand's spawn point (palm frame), or None.
        physics: the hand's physics (``assets.physics``: a name or a Physics), applied to
            the hand's joints and actuators and the scene's solver options.
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
    mount = world.add_body()
    mount.name = MOUNT_BODY
    mount.mocap = True
    mount.pos = list(MOUNT_POS)
    mount.quat = mat_to_quat(r_world).tolist()

    # Place the palm body so that the mount frame coincides with the palm frame.
    r_bf = hand.palm_frame_rot
    frame = mount.add_frame()
    frame.pos = (-r_bf.T @ hand.palm_frame_pos).tolist()
    frame.quat = mat_to_quat(r_bf.T).tolist()
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
