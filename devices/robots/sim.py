"""The simulated hand: a Menagerie hand in a MuJoCo scene, position-controlled at a fixed rate."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mujoco
import numpy as np

from assets.hands import load_hand
from assets.objects import resolve_object
from assets.physics import DEFAULT_PHYSICS, substeps
from assets.rotations import quat_mul
from devices.robots.base import ROBOTS, Robot, Simulated
from devices.robots.reality import Backlash, RealityGap, reality_gap
from devices.robots.scene import (
    ARM_PREFIX,
    HAND_PREFIX,
    MOUNT_BODY,
    MOUNT_POS,
    OBJECT_BODY,
    WRIST_ORIENTATIONS,
    SceneObject,
    add_chaos_box,
    build_scene,
    mat_to_quat,
    object_spawn_palm,
    rotation_start_palm,
    site_names,
)
from devices.tick import HandState

log = logging.getLogger(__name__)

#: The object counts as dropped once its centre is this far from where it started in the
#: palm frame (m). A 5 cm cube rolling across the palm moves less than this.
DROP_DISTANCE_M = 0.08


@dataclass
class SimHandConfig:
    """Settings of the simulated hand.

    Attributes:
        hand: hand name (``leap``, ``allegro``).
        wrist: a fixed orientation (palm_up, palm_down, base_up, base_down, thumb_up,
            thumb_down) or ``follow`` (the mount follows the operator's wrist).
        object: an object's name (``assets.objects``: a named object or an RL family) or
            None.
        object_mass_kg / object_friction: override the object's defaults.
        rate_hz: control rate; the physics runs ``1 / (rate_hz * timestep)`` substeps per tick.
        physics_model: the hand's physics (``assets.physics``): ``servo`` (its actuator
            model, 10 ms; the default) or ``menagerie`` (the model as published, 2 ms).
        timestep_s: physics timestep; None keeps the physics' own.
        dynamics: ``nominal`` (the physics above, what every trainer uses) or ``reality``:
            the stand-in real hand (``devices.robots.reality``: other per-joint gains and
            link masses, friction loss, backlash, one step of latency, a 2 ms timestep and
            the Menagerie contact settings), drawn with ``reality_seed``.
        reality_revert: with ``reality``, parts of its gap set back to the nominal physics,
            ``+``-separated (``devices.robots.reality.GAP_COMPONENTS``: gains, kp, kv, mass,
            friction, backlash, latency, solver), to measure what each part costs.
        object_scale: the object's size factor (the rotation policies' cube is 1.4).
        chaos_box: that many soft balls in a box around the hand (DexNDM's chaos box, for
            collecting dynamics data under random contact); 0: none.
        chaos_seed: the balls' starting jitter.
        arm: ``none`` (the hand on a wrist mount) or an arm carrying the hand (``panda``:
            ``assets.arms``), posed so that the palm starts where the mount would hold it
            (``wrist``; ``follow`` starts palm down); the ``sim`` arm backend moves it.
    """

    hand: str = "leap"
    wrist: str = "palm_up"
    object: str | None = None
    object_mass_kg: float | None = None
    object_friction: float | None = None
    rate_hz: float = 20.0
    physics_model: str = DEFAULT_PHYSICS
    timestep_s: float | None = None
    dynamics: str = "nominal"
    reality_seed: int = 0
    reality_revert: str = ""
    object_scale: float = 1.0
    chaos_box: int = 0
    chaos_seed: int = 0
    arm: str = "none"


@dataclass
class SimArmJoints:
    """An arm in a simulated hand's scene: where its joints and actuators are, its limits
    and the configuration it starts in."""

    name: str
    joint_names: tuple[str, ...]
    qadr: np.ndarray
    vadr: np.ndarray
    act: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    start_q: np.ndarray


#: ``SimHandConfig.dynamics``.
DYNAMICS = ("nominal", "reality")


@ROBOTS.register("sim")
class SimHand(Robot, Simulated):
    """A simulated LEAP or Allegro hand. Each :meth:`send` advances physics by one tick."""

    Config = SimHandConfig
    drives_hardware = False

    def __init__(self, config: SimHandConfig) -> None:
        hand = load_hand(config.hand)
        super().__init__(hand, config.rate_hz)
        self.config = config
        # the mount moves with the operator's wrist only in follow mode (an arm: the arm's
        # backend moves the hand)
        self.supports_wrist_pose = config.wrist == "follow" and config.arm == "none"
        obj = None
        if config.object not in (None, "none"):
            if not (np.isfinite(config.object_scale) and 0.3 <= config.object_scale <= 3.0):
                raise ValueError("object_scale must be in [0.3, 3]")
            ospec = resolve_object(config.object, config.object_scale)
            mass = ospec.mass_kg if config.object_mass_kg is None else config.object_mass_kg
            fric = ospec.friction if config.object_friction is None else config.object_friction
            if not (np.isfinite(mass) and np.isfinite(fric) and mass > 0 and fric > 0):
                raise ValueError("object mass and friction must be finite and positive")
            obj = SceneObject(ospec, mass, fric)
        if config.dynamics not in DYNAMICS:
            raise ValueError(f"unknown dynamics {config.dynamics!r}; known: {', '.join(DYNAMICS)}")
        if config.reality_revert and config.dynamics != "reality":
            raise ValueError("reality_revert is for dynamics=reality (the stand-in's gap)")
        self.sim_physics = hand.physics(config.physics_model)
        #: the stand-in real hand's parameters (``dynamics=reality``), else None
        self.reality: RealityGap | None = None
        if config.dynamics == "reality":
            self.reality = reality_gap(hand, config.reality_seed)
            if config.reality_revert:
                self.reality = self.reality.reverted(config.reality_revert, self.sim_physics)
            self.sim_physics = self.reality.physics(self.sim_physics)
        if config.timestep_s is not None:
            self.sim_physics = self.sim_physics.replace(timestep_s=config.timestep_s)
        arm = None if config.arm in ("none", None) else config.arm
        self.scene_spec = build_scene(
            hand, wrist=config.wrist, obj=obj, physics=self.sim_physics, arm=arm
        )
        if self.reality is not None:
            self.reality.apply_masses(self.scene_spec, HAND_PREFIX)
        self.model = self.scene_spec.compile()
        if config.chaos_box:
            if config.chaos_box < 0 or config.chaos_box > 400:
                raise ValueError("chaos_box: the number of balls, 0 to 400")
            lo, hi = self._hand_extent(self.model)
            add_chaos_box(self.scene_spec, lo, hi, config.chaos_box, config.chaos_seed)
            self.model = self.scene_spec.compile()
        self.data = mujoco.MjData(self.model)
        self.substeps = substeps(self.rate_hz, self.model.opt.timestep)

        m = self.model
        jids = [m.joint("hand/" + j).id for j in hand.joint_names]
        self._qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self._vadr = np.array([m.jnt_dofadr[j] for j in jids])
        act_of_joint = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        self._act = np.array([act_of_joint[j] for j in jids])
        self._sites = np.array([m.site(n).id for n in site_names()])
        self._mocap = m.body_mocapid[m.body(MOUNT_BODY).id] if arm is None else -1
        #: the arm carrying the hand (``arm=...``), else None
        self.arm: SimArmJoints | None = None if arm is None else self._arm_joints(arm)
        self._obj_body = m.body(OBJECT_BODY).id if obj is not None else -1
        self._obj_qadr = m.jnt_qposadr[m.body_jntadr[self._obj_body]] if obj is not None else -1
        self._obj_spec = obj.spec if obj is not None else None
        self._obj_spawn_palm = object_spawn_palm(hand, obj.spec) if obj is not None else None
        self._dropped = False
        self._target = hand.default_open.copy()
        self._backlash = Backlash(self.reality.backlash_rad) if self.reality else None
        self._delayed: list[np.ndarray] = []
        self.time_s = 0.0
        self.reset()

    def _arm_joints(self, name: str) -> SimArmJoints:
        """Find the arm's joints and actuators; solve its start configuration (the palm
        where the mount would hold it, at the ``wrist`` orientation)."""
        from assets.arms import arm_spec
        from devices.robots.ik import ArmIK

        spec, m = arm_spec(name), self.model
        names = tuple(ARM_PREFIX + j for j in spec.joint_names)
        jids = [m.joint(j).id for j in names]
        act_of_joint = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        lower, upper = m.jnt_range[jids, 0].copy(), m.jnt_range[jids, 1].copy()
        ik = ArmIK(m, list(names), site_names()[0], lower, upper, np.array(spec.home_q))
        r = WRIST_ORIENTATIONS["palm_down" if self.config.wrist == "follow" else self.config.wrist]
        ik.iterations = 150
        res = ik.solve_start(np.array(MOUNT_POS), r)
        if res is None:
            raise ValueError(
                f"the {name} arm cannot put the palm at its start ({self.config.wrist})"
            )
        return SimArmJoints(
            name=name,
            joint_names=names,
            qadr=np.array([m.jnt_qposadr[j] for j in jids]),
            vadr=np.array([m.jnt_dofadr[j] for j in jids]),
            act=np.array([act_of_joint[j] for j in jids]),
            lower=lower,
            upper=upper,
            start_q=res.q,
        )

    def physics(self) -> dict:
        """The physics this hand runs (``Physics.describe``), as trained models record it."""
        jids = [self.model.joint("hand/" + j).id for j in self.hand.joint_names]
        return self.sim_physics.describe(self.model, jids, substeps=self.substeps)

    @staticmethod
    def _hand_extent(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
        """World-frame bounds of the hand's collision geoms at the model's rest pose."""
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        pts = []
        for g in range(model.ngeom):
            body = model.body(model.geom_bodyid[g]).name
            if body.startswith(HAND_PREFIX) and model.geom_contype[g] | model.geom_conaffinity[g]:
                pts.append(data.geom_xpos[g] - model.geom_rbound[g])
                pts.append(data.geom_xpos[g] + model.geom_rbound[g])
        pts = np.array(pts)
        return pts.min(axis=0), pts.max(axis=0)

    def hand_report(self) -> dict:
        rep = super().hand_report()
        if self.reality is not None:
            rep["reality"] = self.reality.describe()  # what the stand-in hand is
        return rep

    # -- simulation control -------------------------------------------------------------------
    def reset(
        self,
        q: np.ndarray | None = None,
        object_palm: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Put the hand at ``q`` (default: open pose) at rest and the object back at its
        spawn, or at ``object_palm`` = (position, wxyz quaternion) in the palm frame."""
        mujoco.mj_resetData(self.model, self.data)
        if self.arm is not None:
            self.data.qpos[self.arm.qadr] = self.arm.start_q
            self.data.ctrl[self.arm.act] = self.arm.start_q
        q = self.hand.default_open if q is None else self.hand.clip(np.asarray(q, dtype=float))
        self.data.qpos[self._qadr] = q
        self.data.ctrl[self._act] = q
        self._target = q.copy()
        self._dropped = False
        self.time_s = 0.0
        if self._backlash is not None:
            self._backlash.reset(q)
        self._delayed = [q.copy() for _ in range(self.reality.latency_steps if self.reality else 0)]
        mujoco.mj_forward(self.model, self.data)
        if object_palm is not None:
            if self._obj_body < 0:
                raise ValueError("this simulated hand has no object")
            pos, quat = (np.asarray(v, dtype=float) for v in object_palm)
            p, r = self._palm_frame()
            a = self._obj_qadr
            self.data.qpos[a : a + 3] = p + r @ pos
            self.data.qpos[a + 3 : a + 7] = quat_mul(mat_to_quat(r), quat / np.linalg.norm(quat))
            self._obj_spawn_palm = pos.copy()
            mujoco.mj_forward(self.model, self.data)
        elif self._obj_body >= 0:
            self._obj_spawn_palm = object_spawn_palm(self.hand, self._obj_spec)
        self.safety.reset(q)
        self.wrist_filter.reset()

    def start_rotation(self, q: np.ndarray, yaw_rad: float = 0.0) -> None:
        if self._obj_body < 0:
            raise ValueError("this simulated hand has no object to rotate")
        pos = rotation_start_palm(self.hand, self.object_rbound_m)
        quat = np.array([np.cos(yaw_rad / 2), 0.0, 0.0, np.sin(yaw_rad / 2)])
        self.reset(q, object_palm=(pos, quat))

    @property
    def object_rbound_m(self) -> float:
        """The object's bounding-sphere radius (m); 0 without an object."""
        if self._obj_body < 0:
            return 0.0
        return float(self.model.geom_rbound[self.model.geom("object_geom").id])

    def _write_wrist(self, pose: np.ndarray) -> None:
        """(``follow`` mode) Move the mount with the operator's wrist: ``pose`` is relative
        to the first wrist pose (so the hand stays in view), its orientation absolute (the
        operator's wrist frame and the palm frame share axes)."""
        self.data.mocap_pos[self._mocap] = np.array(MOUNT_POS) + pose[:3, 3]
        self.data.mocap_quat[self._mocap] = mat_to_quat(pose[:3, :3])

    # -- Robot ------------------------------------------------------------------------------
    def _write(self, target: np.ndarray) -> None:
        self._target = target.copy()
        if self.reality is not None:
            # the stand-in: the target takes effect latency_steps later, through the play
            self._delayed.append(target.copy())
            target = self._backlash(self._delayed.pop(0))
        self.data.ctrl[self._act] = target
        # One call for all substeps: the GIL is released once, not once per substep (in
        # the app, other threads would otherwise get the interpreter between substeps).
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        # mj_step leaves positions (sites, bodies) at the state *before* its last
        # integration; bring them up to date so keypoints and q agree.
        mujoco.mj_kinematics(self.model, self.data)
        self.time_s += self.substeps * self.model.opt.timestep
        if self._obj_body >= 0 and not self._dropped:
            self._dropped = self._object_offset_m() > DROP_DISTANCE_M

    def _palm_frame(self) -> tuple[np.ndarray, np.ndarray]:
        sid = self._sites[0]
        return self.data.site_xpos[sid], self.data.site_xmat[sid].reshape(3, 3)

    def _object_offset_m(self) -> float:
        p, r = self._palm_frame()
        obj_palm = r.T @ (self.data.xpos[self._obj_body] - p)
        return float(np.linalg.norm(obj_palm - self._obj_spawn_palm))

    def _read(self) -> HandState:
        p, r = self._palm_frame()
        kp = (self.data.site_xpos[self._sites[1:]] - p) @ r
        wrist = np.eye(4)
        wrist[:3, :3] = r
        wrist[:3, 3] = p
        obj_pose = None
        if self._obj_body >= 0:
            obj_pose = self.data.qpos[self._obj_qadr : self._obj_qadr + 7].copy()
        return HandState(
            t=self.time_s,
            q=self.data.qpos[self._qadr].copy(),
            dq=self.data.qvel[self._vadr].copy(),
            target=self._target.copy(),
            keypoints=kp,
            wrist=wrist,
            object_pose=obj_pose,
            object_dropped=self._dropped if self._obj_body >= 0 else None,
            # the applied torque: the actuator's force after the joint's torque limit
            effort=self.data.qfrc_actuator[self._vadr].copy(),
        )

    def load_state(self, state: np.ndarray, data: mujoco.MjData | None = None) -> None:
        """Restore a :meth:`sim_state` vector into ``data`` (default: the live data) and
        recompute positions. Used to render or inspect a run afterwards."""
        d = self.data if data is None else data
        m = self.model
        i = 0
        for arr, n in ((d.qpos, m.nq), (d.qvel, m.nv)):
            arr[:] = state[i : i + n]
            i += n
        d.mocap_pos[:] = state[i : i + 3 * m.nmocap].reshape(-1, 3)
        i += 3 * m.nmocap
        d.mocap_quat[:] = state[i : i + 4 * m.nmocap].reshape(-1, 4)
        if self.arm is not None:  # the arm's joint targets: where it stands
            d.ctrl[self.arm.act] = d.qpos[self.arm.qadr]
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)

    def sim_state(self) -> np.ndarray:
        """Full physics state (qpos, qvel, mocap) for offline rendering or replay."""
        return np.concatenate(
            [
                self.data.qpos,
                self.data.qvel,
                self.data.mocap_pos.ravel(),
                self.data.mocap_quat.ravel(),
            ]
        )
