"""Robot hand specs built on MuJoCo Menagerie models.

A :class:`HandSpec` names what we need from a Menagerie hand (joint order, keypoints, palm
geometry, real-hardware facts). :func:`load_hand` turns it into a :class:`Hand`: the spec
plus everything derived from the compiled model (joint limits, actuator gains, the palm
frame, keypoint offsets), and :meth:`Hand.mjspec` gives a fresh ``mujoco.MjSpec`` of the
hand with our sites added, which both the simulator and the retargeting kinematics build
from, so the two cannot drift.

Frames
------
The *palm frame* (site ``palm_frame`` on the palm body) has +x along the fingers, +y toward
the thumb, +z out of the back of the hand (the palm faces -z): the same axes as the
operator's wrist frame (``devices.tick``). Its origin is on the middle finger's
axis, ``palm_length_m`` behind the middle finger's base joint: the robot's "wrist".
It is computed from the model at build time: x from the middle finger's PIP keypoint to
its tip with all joints at zero (the fingers straight), y from the ring finger's base to
the index finger's base, made orthogonal to x.

Keypoints
---------
Eight keypoints, as DexterityGen uses (K = 8): the middle joint (PIP; the IP joint for the
thumb) and the tip of each of the index, middle, ring fingers and the thumb, in the order
of :data:`ROBOT_KEYPOINT_NAMES`. They are added as sites ``kp_<name>``.

Models come from the ``mujoco-menagerie`` package; offline, set ``MENAGERIE_ROOT``.
They are never copied into this repository.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field

import mujoco
import numpy as np

from assets.physics import (
    BASELINE_PHYSICS,
    DEFAULT_PHYSICS,
    PHYSICS_NAMES,
    SERVO_PHYSICS,
    ActuatorModel,
    Param,
    Physics,
    Solver,
    apply,
)

log = logging.getLogger(__name__)

FINGERS: tuple[str, ...] = ("index", "middle", "ring", "thumb")

#: Order of the 8 robot keypoints (K = 8) everywhere in the project.
ROBOT_KEYPOINT_NAMES: tuple[str, ...] = tuple(f"{f}_{p}" for f in FINGERS for p in ("pip", "tip"))
NUM_ROBOT_KEYPOINTS = len(ROBOT_KEYPOINT_NAMES)

#: The MediaPipe/MANO index of the human keypoint each robot keypoint corresponds to.
KEYPOINT_HUMAN_INDEX: tuple[int, ...] = (6, 8, 10, 12, 14, 16, 3, 4)

#: The human keypoint at the base of each finger (MCP; CMC for the thumb), FINGERS order.
FINGER_BASE_HUMAN_INDEX: tuple[int, ...] = (5, 9, 13, 1)

PALM_FRAME_SITE = "palm_frame"


@dataclass(frozen=True)
class KeypointDef:
    """Where a keypoint sits: on ``body``, at ``pos`` (body frame, m) or at ``geom``'s centre."""

    body: str
    pos: tuple[float, float, float] | None = None
    geom: str | None = None


@dataclass(frozen=True)
class HardwareMap:
    """How the real hand's actuators map to the spec's joints (what a real backend uses).

    ``hardware[motor_ids[i]] = sign[i] * q[i] + offset_rad[i]`` for spec joint ``i``: the
    bus position of each joint's actuator, its sign and offset between the simulated
    (Menagerie) angle and the hardware's.

    Attributes:
        motor_ids: (n,) the bus ID (Dynamixel ID, or the joint's index in the CAN frames) of
            each spec joint's actuator; a permutation of ``range(n)``.
        offset_rad: (n,) hardware angle of the simulated zero.
        sign: (n,) +1 or -1.
        source: where these facts come from.
    """

    motor_ids: tuple[int, ...]
    offset_rad: tuple[float, ...]
    sign: tuple[int, ...]
    source: str

    def __post_init__(self) -> None:
        n = len(self.motor_ids)
        if sorted(self.motor_ids) != list(range(n)):
            raise ValueError(f"motor_ids must be a permutation of 0..{n - 1}: {self.motor_ids}")
        if len(self.offset_rad) != n or len(self.sign) != n:
            raise ValueError("motor_ids, offset_rad and sign must have the same length")
        if any(s not in (1, -1) for s in self.sign):
            raise ValueError(f"signs must be +1 or -1: {self.sign}")

    def to_hardware(self, q: np.ndarray, *, offset: bool = True) -> np.ndarray:
        """Joint positions (..., n) in spec order -> hardware positions (..., n) by bus ID
        (``offset=False``: velocities, which take the sign and the order only)."""
        q = np.asarray(q, dtype=float)
        out = np.empty_like(q)
        off = np.asarray(self.offset_rad) if offset else 0.0
        out[..., list(self.motor_ids)] = q * np.asarray(self.sign) + off
        return out

    def from_hardware(self, hw: np.ndarray, *, offset: bool = True) -> np.ndarray:
        """Hardware positions (..., n) by bus ID -> joint positions (..., n) in spec order
        (``offset=False``: velocities)."""
        hw = np.asarray(hw, dtype=float)
        off = np.asarray(self.offset_rad) if offset else 0.0
        return (hw[..., list(self.motor_ids)] - off) * np.asarray(self.sign)


@dataclass(frozen=True)
class HandSpec:
    """What we take from a Menagerie hand model, plus facts about the real hardware.

    Attributes:
        name: our short name (``leap``, ``allegro``).
        menagerie: Menagerie robot name; ``entry``: its model entry point.
        joint_names: the canonical joint order (targets, states, datasets all use it).
        palm_body: the body the fingers hang from.
        finger_base_bodies: body carrying each finger's first joint, FINGERS order.
        keypoints: the 8 keypoints in ROBOT_KEYPOINT_NAMES order.
        palm_length_m: distance from the middle finger's base joint back to the wrist.
        max_joint_speed_rad_s: the safety filter's per-joint rate limit.
        default_open: the open default pose (clipped to the limits); ``None`` = all zeros.
        visual_group / collision_group: geom groups of the visual meshes / collision geoms.
        heavy_visuals: visual meshes too heavy for software rendering at interactive rates.
        palm_surface_m: a point on the palm's inner surface, palm frame (the palm faces -z);
            objects start resting on it.
        retarget_no_hyperextension: joints that retargeting keeps at >= 0 although the
            hand allows hyperextension (a human finger barely hyperextends at PIP/DIP, and
            without this bound a position solver folds fingers into a zig-zag).
        hardware: the real hand's actuator map (IDs, offsets, signs), or None if unknown.
        real: facts about the real hand (gains, rates, wiring) with their sources.
        actuators: the real hand's actuators as simulation parameters (``servo`` physics).
        solver: the solver settings of the ``servo`` physics, chosen by measurement.
    """

    name: str
    menagerie: str
    entry: str
    joint_names: tuple[str, ...]
    palm_body: str
    finger_base_bodies: tuple[str, str, str, str]
    keypoints: tuple[KeypointDef, ...]
    palm_length_m: float
    max_joint_speed_rad_s: float
    default_open: tuple[float, ...] | None = None
    visual_group: int = 1
    collision_group: int = 0
    heavy_visuals: bool = False
    palm_surface_m: tuple[float, float, float] = (0.06, 0.0, -0.015)
    retarget_no_hyperextension: tuple[str, ...] = ()
    hardware: HardwareMap | None = None
    real: dict[str, str] = field(default_factory=dict)
    actuators: ActuatorModel | None = None
    solver: Solver = field(default_factory=Solver)

    def physics(self, name: str = DEFAULT_PHYSICS) -> Physics:
        """The named physics of this hand (``assets.physics``): ``servo`` (its actuator
        model and solver settings) or ``menagerie`` (the model as published)."""
        if name == BASELINE_PHYSICS:
            return Physics(
                BASELINE_PHYSICS, self.name, None, Solver(source="the Menagerie model's own")
            )
        if name == SERVO_PHYSICS:
            if self.actuators is None:
                raise ValueError(f"{self.name}: no actuator model; use physics 'menagerie'")
            return Physics(SERVO_PHYSICS, self.name, self.actuators, self.solver)
        raise ValueError(f"unknown physics {name!r}; known: {', '.join(PHYSICS_NAMES)}")


#: MuJoCo Playground's LEAP model (mujoco_playground/_src/manipulation/leap_hand/xmls/
#: leap_rh_mjx.xml), fitted to the real hand and trained on at 10 ms.
_PLAYGROUND = "MuJoCo Playground leap_rh_mjx.xml"
#: The LEAP authors' simulation for their sim-to-real in-hand rotation (leap-hand/
#: LEAP_Hand_Sim, leapsim/tasks/leap_hand_rot.py and cfg/task/LeapHandRot.yaml), whose
#: policies ran on the real hand at LEAP_Hand_API's kP 600 / kD 200.
_LEAPSIM = "LEAP_Hand_Sim (the LEAP authors' sim-to-real rotation)"

#: N m per A of an XC330-M288-T's current: its stall torque over its stall current (0.93 N m
#: at 1.80 A, 5 V; ROBOTIS e-manual). LEAP's torque limit follows from it, and the Dynamixel
#: backend reads present current as effort through it (a scale: the servo measures current
#: at its power input).
XC330_NM_PER_A = 0.93 / 1.80

LEAP_ACTUATORS = ActuatorModel(
    servo="Dynamixel XC330-M288-T, current-based position mode (LEAP_Hand_API)",
    armature=Param(
        0.00149376,
        f"rotor inertia 1.7e-8 kg m^2 x gear ratio 288^2 ({_PLAYGROUND}; the ROBOTIS "
        f"e-manual gives 288.35:1); {_LEAPSIM} uses 0.001",
    ),
    damping=Param(0.0, f"none beyond the PD's derivative term (kv), as in {_LEAPSIM}"),
    frictionloss=Param(0.01, f"{_LEAPSIM}: dof friction 0.01"),
    torque_limit=Param(
        round(XC330_NM_PER_A * 0.55, 3),
        "XC330-M288-T stall torque 0.93 N m at 1.80 A, 5 V (ROBOTIS e-manual) at the 550 mA "
        "current limit LEAP_Hand_API gives for the full hand (python/main.py: 350 for the "
        "lite, 550 for the full hand): 0.93 x 0.55 / 1.80",
    ),
    kp=Param(
        3.0,
        f"{_LEAPSIM}: pgain 3, the Menagerie model's kp too; {_PLAYGROUND}'s fit for kP 600 "
        "(0.9) holds grasps worse here (BENCHMARKS.md, issue 18)",
    ),
    kv=Param(0.1, f"{_LEAPSIM}: dgain 0.1"),
)

LEAP_SOLVER = Solver(
    timestep_s=0.01,
    integrator="implicitfast",
    # impratio 10 (the Menagerie README's value; its XML has 100): the same hold rate, faster
    cone="elliptic",
    impratio=10.0,
    source="hold test, BENCHMARKS.md (Physics, issue 18): bench/physics.py --hand leap",
)

# Allegro v4: torque PD on the host at 333 Hz; PWM = torque x 1200 (12 V), clamped per joint
# (allegro_hand_ros_v4 allegro_node_pd.cpp; ../shared/HARDWARE-NOTES.md section 2).
_ALLEGRO_PWM = (375, 675, 450, 285) * 3 + (525, 405, 270, 270)

ALLEGRO_ACTUATORS = ActuatorModel(
    servo="Allegro v4 joint motors, torque PD on the host (allegro_hand_ros_v4)",
    armature=Param(
        0.0003,
        "no published rotor inertia for the Allegro motors: 4x the stability bound "
        "kp dt^2 / 4 of an explicit position gain (kp 3, dt 10 ms), measured in BENCHMARKS.md",
    ),
    damping=Param(0.0, "none beyond the PD's derivative term (Hora's simulation)"),
    frictionloss=Param(0.0, "none modelled (Hora's simulation randomises none by default)"),
    torque_limit=Param(
        tuple(p / 1200 for p in _ALLEGRO_PWM),
        "the driver's PWM clamps / 1200 (torque to PWM at 12 V, v4): roll 375, near 675, "
        "mid 450, far 285; thumb 525, 405, 270, 270 (allegro_node_pd.cpp; Wonik ROS2 "
        "torque_limits.yaml is the same /1200)",
    ),
    kp=Param(3.0, "Hora's deployed p 3600 / 1200 = its simulation's kp 3 (HaozhiQi/hora)"),
    kv=Param(0.1, "Hora's deployed d 120 / 1200 = its simulation's kd 0.1 (HaozhiQi/hora)"),
)

ALLEGRO_SOLVER = Solver(
    timestep_s=0.01,
    integrator="implicitfast",  # the Menagerie model's Euler treats the PD's kv explicitly
    # the Menagerie model's pyramidal cone drops most grasps; elliptic with impratio 10 as
    # the Menagerie LEAP model's README gives "for better noslip"
    cone="elliptic",
    impratio=10.0,
    source="hold test, BENCHMARKS.md (Physics, issue 18): bench/physics.py --hand allegro",
)

LEAP = HandSpec(
    name="leap",
    menagerie="leap_hand",
    entry="right_hand",
    joint_names=(
        "if_mcp",
        "if_rot",
        "if_pip",
        "if_dip",
        "mf_mcp",
        "mf_rot",
        "mf_pip",
        "mf_dip",
        "rf_mcp",
        "rf_rot",
        "rf_pip",
        "rf_dip",
        "th_cmc",
        "th_axl",
        "th_mcp",
        "th_ipl",
    ),
    palm_body="palm",
    finger_base_bodies=("if_bs", "mf_bs", "rf_bs", "th_mp"),
    keypoints=(
        KeypointDef("if_md"),
        KeypointDef("if_ds", geom="if_tip"),
        KeypointDef("mf_md"),
        KeypointDef("mf_ds", geom="mf_tip"),
        KeypointDef("rf_md"),
        KeypointDef("rf_ds", geom="rf_tip"),
        KeypointDef("th_ds"),
        KeypointDef("th_ds", geom="th_tip"),
    ),
    palm_length_m=0.095,
    # XC330-M288 no-load speed is ~10 rad/s at 5 V; stay well below it.
    max_joint_speed_rad_s=6.0,
    visual_group=1,
    collision_group=0,
    retarget_no_hyperextension=("if_pip", "if_dip", "mf_pip", "mf_dip", "rf_pip", "rf_dip"),
    heavy_visuals=True,  # ~240k faces: ~400 ms/frame software-rendered, 10 ms without
    palm_surface_m=(0.06, 0.0, -0.017),
    # Motor IDs: index 0-3, middle 4-7, ring 8-11, thumb 12-15, each finger as MCP-side
    # (our *_rot), MCP-forward (*_mcp), PIP, DIP; Menagerie lists *_mcp before *_rot, so
    # the first two swap on index, middle and ring. Real angle = sim angle + pi.
    hardware=HardwareMap(
        motor_ids=(1, 0, 2, 3, 5, 4, 6, 7, 9, 8, 10, 11, 12, 13, 14, 15),
        offset_rad=(np.pi,) * 16,
        sign=(1,) * 16,
        source="LEAP_Hand_API python/main.py (IDs), leap_hand_utils.py LEAPsim_to_LEAPhand "
        "(+pi); Menagerie leap_hand right_hand.xml joint order",
    ),
    real={
        "bus": "Dynamixel protocol 2.0, 4 Mbaud, /dev/ttyUSB0 (LEAP_Hand_API main.py)",
        "servos": "XC330-M288-T (full), XL330 (lite)",
        "pd": "current-based position mode, kP 600 (0.75x on side joints), kD 200, "
        "current limit 350 mA (LEAP_Hand_API); DexNDM uses kP 800, kD 200 at 20 Hz",
        "angles": "real = sim + pi; menagerie joint order swaps mcp/rot vs motor order "
        "on index, middle and ring",
    },
    actuators=LEAP_ACTUATORS,
    solver=LEAP_SOLVER,
)

ALLEGRO = HandSpec(
    name="allegro",
    menagerie="wonik_allegro",
    entry="right_hand",
    joint_names=(
        "ffj0",
        "ffj1",
        "ffj2",
        "ffj3",
        "mfj0",
        "mfj1",
        "mfj2",
        "mfj3",
        "rfj0",
        "rfj1",
        "rfj2",
        "rfj3",
        "thj0",
        "thj1",
        "thj2",
        "thj3",
    ),
    palm_body="palm",
    finger_base_bodies=("ff_base", "mf_base", "rf_base", "th_base"),
    keypoints=(
        # Fingertip: centre of the distal end of the tip capsule (pos 0.019 + half 0.010).
        KeypointDef("ff_medial"),
        KeypointDef("ff_tip", pos=(0.0, 0.0, 0.029)),
        KeypointDef("mf_medial"),
        KeypointDef("mf_tip", pos=(0.0, 0.0, 0.029)),
        KeypointDef("rf_medial"),
        KeypointDef("rf_tip", pos=(0.0, 0.0, 0.029)),
        KeypointDef("th_distal"),
        KeypointDef("th_tip", pos=(0.0, 0.0, 0.043)),
    ),
    palm_length_m=0.095,
    max_joint_speed_rad_s=6.0,
    visual_group=2,
    collision_group=3,
    heavy_visuals=False,
    retarget_no_hyperextension=("ffj2", "ffj3", "mfj2", "mfj3", "rfj2", "rfj3"),
    palm_surface_m=(0.06, 0.0, -0.012),
    # CAN joint order (ROS1 allegro_hand_ros_v4): index 0-3, middle 4-7, ring 8-11, thumb
    # 12-15, the spec's order; angles as in simulation (radians from the driver's counts).
    hardware=HardwareMap(
        motor_ids=tuple(range(16)),
        offset_rad=(0.0,) * 16,
        sign=(1,) * 16,
        source="allegro_hand_ros_v4 joint order; Menagerie wonik_allegro right_hand.xml",
    ),
    real={
        "bus": "CAN 1 Mbit/s (PEAK char driver or SocketCAN can0); hand streams at 333 Hz",
        "pd": "torque PD on the host, v4 gains p 4000 d 150-300 (/1200 = sim units); "
        "Hora: p 3600, d 120, 20 Hz policy",
        "order": "ROS1: index 0-3 ... thumb 12-15; Wonik ROS2 puts the thumb at 0-3",
    },
    actuators=ALLEGRO_ACTUATORS,
    solver=ALLEGRO_SOLVER,
)

#: Every hand we know, by short name.
HAND_SPECS: dict[str, HandSpec] = {s.name: s for s in (LEAP, ALLEGRO)}


class HandModelError(RuntimeError):
    """A hand model could not be found or does not match its spec."""


@dataclass(frozen=True, eq=False)
class Hand:
    """A :class:`HandSpec` resolved against its compiled Menagerie model.

    All arrays are in ``spec.joint_names`` order; positions are metres, angles radians.

    Attributes:
        lower, upper: (n,) joint limits.
        default_open: (n,) the open default pose, inside the limits.
        kp, kv: (n,) position-actuator gains of the simulated hand in its default physics
            (N m / rad, N m s / rad).
        timestep_s: the default physics' timestep.
        palm_frame_pos / palm_frame_quat: the palm frame in the palm body (m, wxyz).
        keypoint_local: (8, 3) each keypoint in its body's frame.
        keypoint_bodies: the body of each keypoint.
        finger_base_palm: (4, 3) each finger's base joint in the palm frame.
    """

    spec: HandSpec
    lower: np.ndarray
    upper: np.ndarray
    default_open: np.ndarray
    kp: np.ndarray
    kv: np.ndarray
    timestep_s: float
    palm_frame_pos: np.ndarray
    palm_frame_quat: np.ndarray
    keypoint_local: np.ndarray
    keypoint_bodies: tuple[str, ...]
    finger_base_palm: np.ndarray

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.spec.joint_names

    @property
    def n_joints(self) -> int:
        return len(self.spec.joint_names)

    @property
    def palm_frame_rot(self) -> np.ndarray:
        """(3, 3) the palm frame's axes (columns) in the palm body's frame."""
        r = np.zeros(9)
        mujoco.mju_quat2Mat(r, self.palm_frame_quat)
        return r.reshape(3, 3)

    def clip(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.lower, self.upper)

    @property
    def retarget_lower(self) -> np.ndarray:
        """(n,) lower limits retargeting uses: ``lower`` with no hyperextension where listed."""
        lo = self.lower.copy()
        for j in self.spec.retarget_no_hyperextension:
            i = self.spec.joint_names.index(j)
            lo[i] = max(lo[i], 0.0)
        return lo

    def keypoints(self, q: np.ndarray) -> np.ndarray:
        """Robot keypoints in the palm frame for joint positions ``q``: (..., n) -> (..., 8, 3).

        MuJoCo kinematics of the same MJCF the simulator compiles (:meth:`mjspec`), so the
        keypoints a controller computes from joints are the ones the simulated hand reports.
        Thread-safe (each thread keeps its own ``MjData``).
        """
        q = np.asarray(q, dtype=float)
        if q.shape[-1:] != (self.n_joints,):
            raise ValueError(f"{self.name}: expected (..., {self.n_joints}) joints, got {q.shape}")
        fk = _keypoint_kinematics(self)
        flat = q.reshape(-1, self.n_joints)
        out = np.empty((flat.shape[0], NUM_ROBOT_KEYPOINTS, 3))
        for i, qi in enumerate(flat):
            out[i] = fk.keypoints(qi)
        return out.reshape(*q.shape[:-1], NUM_ROBOT_KEYPOINTS, 3)

    def physics(self, name: str | Physics = DEFAULT_PHYSICS) -> Physics:
        """The named physics (``servo``, ``menagerie``) of this hand; a Physics passes."""
        if isinstance(name, Physics):
            if name.hand != self.name:
                raise ValueError(f"physics of {name.hand}, not {self.name}")
            return name
        return self.spec.physics(name)

    def mjspec(self, physics: str | Physics | None = None) -> mujoco.MjSpec:
        """A fresh MjSpec of the hand with our sites added, and ``physics`` applied
        (:func:`assets.physics.apply`; None: the Menagerie model untouched, for kinematics).

        Sites: ``palm_frame``; ``base_<finger>`` (each finger's base joint, fixed in the palm);
        ``kp_<keypoint>`` for the 8 keypoints.
        """
        spec = _menagerie_spec(self.spec)
        if physics is not None:
            apply(spec, self.physics(physics), self.joint_names)
        palm = spec.body(self.spec.palm_body)
        site = palm.add_site()
        site.name = PALM_FRAME_SITE
        site.pos = self.palm_frame_pos.tolist()
        site.quat = self.palm_frame_quat.tolist()
        site.group = 5
        r_bf = self.palm_frame_rot
        for finger, base in zip(FINGERS, self.finger_base_palm, strict=True):
            s = palm.add_site()
            s.name = f"base_{finger}"
            s.pos = (self.palm_frame_pos + r_bf @ base).tolist()
            s.group = 5
        for name, body, local in zip(
            ROBOT_KEYPOINT_NAMES, self.keypoint_bodies, self.keypoint_local, strict=True
        ):
            s = spec.body(body).add_site()
            s.name = f"kp_{name}"
            s.pos = local.tolist()
            s.size = [0.004, 0.0, 0.0]
            s.rgba = [1.0, 0.5, 0.0, 1.0]
            s.group = 5
        return spec


class _KeypointKinematics:
    """Forward kinematics of one hand's keypoints with MuJoCo (see :meth:`Hand.keypoints`)."""

    def __init__(self, hand: Hand) -> None:
        self.model = hand.mjspec().compile()
        m = self.model
        self.qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in hand.joint_names])
        self.palm = m.site(PALM_FRAME_SITE).id
        self.sites = np.array([m.site(f"kp_{n}").id for n in ROBOT_KEYPOINT_NAMES])
        self._local = threading.local()

    def keypoints(self, q: np.ndarray) -> np.ndarray:
        d = getattr(self._local, "data", None)
        if d is None:
            d = self._local.data = mujoco.MjData(self.model)
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, d)
        p, r = d.site_xpos[self.palm], d.site_xmat[self.palm].reshape(3, 3)
        return (d.site_xpos[self.sites] - p) @ r


@functools.cache
def _keypoint_kinematics(hand: Hand) -> _KeypointKinematics:
    return _KeypointKinematics(hand)


def _menagerie_spec(spec: HandSpec) -> mujoco.MjSpec:
    return menagerie_spec(spec.menagerie, spec.entry)


def menagerie_spec(robot: str, entry: str) -> mujoco.MjSpec:
    """A Menagerie model as an editable spec (hands, arms); HandModelError when it cannot be
    loaded (offline without ``MENAGERIE_ROOT``)."""
    try:
        import mujoco_menagerie
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise HandModelError("the 'mujoco-menagerie' package is not installed") from e
    try:
        return mujoco_menagerie.get(robot).spec(entry)
    except Exception as e:
        raise HandModelError(
            f"cannot load Menagerie model {robot}/{entry}: {e}. "
            "Offline, set MENAGERIE_ROOT to a folder holding the models."
        ) from e


def available_hands() -> list[str]:
    return sorted(HAND_SPECS)


@functools.cache
def load_hand(name: str) -> Hand:
    """Resolve the hand ``name`` against its Menagerie model (cached).

    Raises:
        KeyError: unknown hand name (the message lists the known ones).
        HandModelError: the model is missing or does not match the spec.
    """
    if name not in HAND_SPECS:
        raise KeyError(f"unknown hand {name!r}; available: {', '.join(available_hands())}")
    spec = HAND_SPECS[name]
    model = _menagerie_spec(spec).compile()
    data = mujoco.MjData(model)

    jids = []
    for j in spec.joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        if jid < 0:
            raise HandModelError(f"{name}: joint {j!r} is not in the model")
        jids.append(jid)
    lower = model.jnt_range[jids, 0].copy()
    upper = model.jnt_range[jids, 1].copy()

    kp = np.zeros(len(jids))
    kv = np.zeros(len(jids))
    timestep = float(model.opt.timestep)
    for a in range(model.nu):
        if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
            continue
        jid = int(model.actuator_trnid[a, 0])
        if jid in jids:
            i = jids.index(jid)
            kp[i] = model.actuator_gainprm[a, 0]
            kv[i] = -model.actuator_biasprm[a, 2]
    if np.any(kp <= 0):
        missing = [spec.joint_names[i] for i in np.flatnonzero(kp <= 0)]
        raise HandModelError(f"{name}: joints without a position actuator: {missing}")
    default_physics = spec.physics(DEFAULT_PHYSICS)
    if default_physics.actuators is not None:  # the default physics' gains
        try:
            gains = default_physics.actuators.arrays(len(jids))
        except ValueError as e:
            raise HandModelError(f"{name}: {e}") from None
        kp, kv = gains["kp"], gains["kv"]
        timestep = default_physics.solver.timestep_s or timestep

    default = np.zeros(len(jids)) if spec.default_open is None else np.array(spec.default_open)
    default = np.clip(default, lower, upper)

    # Geometry with every joint at zero: the fingers straight.
    data.qpos[:] = 0.0
    mujoco.mj_kinematics(model, data)
    palm_id = model.body(spec.palm_body).id
    r_wp = data.xmat[palm_id].reshape(3, 3)
    p_wp = data.xpos[palm_id]

    def in_palm_body(p_world: np.ndarray) -> np.ndarray:
        return r_wp.T @ (p_world - p_wp)

    def first_joint_axis(body: str) -> tuple[np.ndarray, np.ndarray]:
        """World anchor and axis of the first hinge on ``body``."""
        bid = model.body(body).id
        if model.body_jntnum[bid] < 1:
            raise HandModelError(f"{name}: body {body!r} has no joint")
        jid = model.body_jntadr[bid]
        return data.xanchor[jid].copy(), data.xaxis[jid].copy()

    def on_axis_near(body: str, target_world: np.ndarray) -> np.ndarray:
        """The point of ``body``'s joint axis nearest ``target_world`` (world frame).

        A joint's anchor can sit anywhere along its axis (LEAP's sit 1.5 cm to the side of
        the finger); the keypoint we want is where the axis crosses the finger's midline.
        """
        anchor, axis = first_joint_axis(body)
        along = (target_world - anchor) @ axis
        if abs(along) > 0.3 * np.linalg.norm(target_world - anchor):
            return anchor  # the axis runs along the finger (a roll joint): keep the anchor
        return anchor + axis * along

    tips_world = []
    for kd in spec.keypoints[1::2]:
        bid = model.body(kd.body).id
        if kd.geom is not None:
            gid = model.geom(kd.geom).id
            if model.geom_bodyid[gid] != bid:
                raise HandModelError(f"{name}: geom {kd.geom!r} is not on body {kd.body!r}")
            local = model.geom_pos[gid].copy()
        else:
            local = np.zeros(3) if kd.pos is None else np.array(kd.pos, dtype=float)
        tips_world.append(data.xpos[bid] + data.xmat[bid].reshape(3, 3) @ local)

    keypoint_local = []
    keypoint_bodies = []
    for i, kd in enumerate(spec.keypoints):
        bid = model.body(kd.body).id
        if i % 2 == 1:  # a tip
            p_world = tips_world[i // 2]
        elif kd.pos is not None:
            p_world = data.xpos[bid] + data.xmat[bid].reshape(3, 3) @ np.array(kd.pos)
        else:  # a middle joint: on its axis, in the plane of the finger
            p_world = on_axis_near(kd.body, tips_world[i // 2])
        keypoint_local.append(data.xmat[bid].reshape(3, 3).T @ (p_world - data.xpos[bid]))
        keypoint_bodies.append(kd.body)
    keypoint_local = np.array(keypoint_local)

    base_world = np.array(
        [on_axis_near(b, tips_world[f]) for f, b in enumerate(spec.finger_base_bodies)]
    )
    mid_pip = (
        data.xpos[model.body(keypoint_bodies[2]).id]
        + data.xmat[model.body(keypoint_bodies[2]).id].reshape(3, 3) @ keypoint_local[2]
    )
    x = in_palm_body(tips_world[1]) - in_palm_body(mid_pip)
    x /= np.linalg.norm(x)
    across = in_palm_body(base_world[0]) - in_palm_body(base_world[2])
    y = across - x * (across @ x)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    r_bf = np.stack([x, y, z], axis=1)  # palm frame axes in the palm body frame
    origin = in_palm_body(base_world[1]) - spec.palm_length_m * x
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, r_bf.reshape(-1))

    finger_base_palm = np.array([r_bf.T @ (in_palm_body(b) - origin) for b in base_world])

    return Hand(
        spec=spec,
        lower=lower,
        upper=upper,
        default_open=default,
        kp=kp,
        kv=kv,
        timestep_s=timestep,
        palm_frame_pos=origin,
        palm_frame_quat=quat,
        keypoint_local=keypoint_local,
        keypoint_bodies=tuple(keypoint_bodies),
        finger_base_palm=finger_base_palm,
    )
