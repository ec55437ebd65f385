"""The hand as MoDex's internal models see it.

The hand state ``s`` is the fingertip positions in the hand's base (palm) frame (``H = 3 x
fingers``); the action ``a`` is the position-actuator targets (``K`` = actuators). An
:class:`ExplorationHand` is the compiled hand with a ``framepos`` sensor per fingertip, its
actuator ranges, and the largest change of a target per control period (the rate limit
the app's safety filter applies). Hands: LEAP and Allegro (our hand specs' fingertip
keypoints) and the Shadow hand (20 actuators, 24 joints; fingertips at the far end of each
distal segment).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from assets.physics import BASELINE_PHYSICS, DEFAULT_PHYSICS, Physics

CONTROL_DT = 0.05  # 20 Hz, the app's control rate


@dataclass(frozen=True)
class MenagerieHand:
    """A hand MoDex explores that the app does not drive (no spec in ``assets.HAND_SPECS``):
    its Menagerie model and where its fingertips are.

    Attributes:
        menagerie / entry: the Menagerie model. palm_body: the fingertips' reference frame.
        distal_bodies: each finger's last link; the fingertip is the far (+z) end of its
            geoms. fingers: the fingers' names, in ``distal_bodies`` order.
        max_joint_speed_rad_s: the rate limit of its targets.
    """

    menagerie: str
    entry: str
    palm_body: str
    distal_bodies: tuple[str, ...]
    fingers: tuple[str, ...]
    max_joint_speed_rad_s: float


#: MoDex's hands beyond the app's (``assets.HAND_SPECS``): the paper's Shadow hand (20
#: actuators, 24 joints), for its Table 2.
EXTRA_HANDS: dict[str, MenagerieHand] = {
    "shadow": MenagerieHand(
        menagerie="shadow_hand",
        entry="right_hand",
        palm_body="rh_palm",
        distal_bodies=("rh_ffdistal", "rh_mfdistal", "rh_rfdistal", "rh_lfdistal", "rh_thdistal"),
        fingers=("index", "middle", "ring", "little", "thumb"),
        max_joint_speed_rad_s=6.0,  # as LEAP's and Allegro's specs
    ),
}


@dataclass(frozen=True)
class ExplorationHand:
    """A compiled hand for exploration: the model, its fingertip sensors, its ranges."""

    name: str
    model: mujoco.MjModel
    fingers: tuple[str, ...]
    ctrl_low: np.ndarray
    ctrl_high: np.ndarray
    default_ctrl: np.ndarray
    substeps: int
    tip_index: np.ndarray  # where the fingertip sensors sit in sensordata
    max_step: float  # largest change of an actuator target per control period
    #: the app's hands: their physics (``assets.physics``) and joint ids in spec order
    sim_physics: Physics | None = None
    joint_ids: tuple[int, ...] = ()

    @property
    def state_dim(self) -> int:
        return 3 * len(self.fingers)

    @property
    def action_dim(self) -> int:
        return int(self.model.nu)

    def physics(self) -> dict:
        """The simulation the hand's models learn (:func:`assets.checkpoint.physics`): the
        physics' name, timestep, substeps per control period and, for the app's hands, the
        actuator model (``assets.physics``); for the extra hands the position gains."""
        from assets.checkpoint import physics

        m = self.model
        if self.sim_physics is not None:
            return self.sim_physics.describe(m, self.joint_ids, substeps=self.substeps)
        return physics(
            self.name,
            name=BASELINE_PHYSICS,
            timestep_s=m.opt.timestep,
            substeps=self.substeps,
            kp=m.actuator_gainprm[:, 0],
            kv=-m.actuator_biasprm[:, 2],
        )


def _add_tip_sensors(spec: mujoco.MjSpec, sites: list[str], base_site: str) -> None:
    for name in sites:
        s = spec.add_sensor()
        s.name = f"tip_{name}"
        s.type = mujoco.mjtSensor.mjSENS_FRAMEPOS
        s.objtype = mujoco.mjtObj.mjOBJ_SITE
        s.objname = name
        s.reftype = mujoco.mjtObj.mjOBJ_SITE
        s.refname = base_site


def exploration_hand(name: str, physics_model: str = DEFAULT_PHYSICS) -> ExplorationHand:
    """The hand ``name`` (one of ``assets.HAND_SPECS`` or :data:`EXTRA_HANDS`) ready for
    exploration rollouts. The app's hands run ``physics_model`` (``assets.physics``); the
    extra hands their Menagerie model."""
    from assets.hands import FINGERS, HAND_SPECS, load_hand

    sim_physics, joint_ids = None, ()
    if name in HAND_SPECS:
        hand = load_hand(name)
        sim_physics = hand.physics(physics_model)
        spec = hand.mjspec(sim_physics)  # has sites palm_frame and kp_<finger>_tip
        sites = [f"kp_{f}_tip" for f in FINGERS]
        _add_tip_sensors(spec, sites, "palm_frame")
        fingers = tuple(FINGERS)
        model = spec.compile()
        default = hand.default_open.copy()
        joint_ids = tuple(model.joint(j).id for j in hand.joint_names)
    elif name in EXTRA_HANDS:
        import mujoco_menagerie

        extra = EXTRA_HANDS[name]
        spec = mujoco_menagerie.get(extra.menagerie).spec(extra.entry)
        probe = spec.compile()
        sites = []
        for body_name in extra.distal_bodies:
            body = spec.body(body_name)
            bid = probe.body(body_name).id
            tip = _far_end(probe, bid)
            site = body.add_site()
            site.name = f"tip_site_{body_name}"
            site.pos = tip.tolist()
            sites.append(site.name)
        palm = spec.body(extra.palm_body).add_site()
        palm.name = "palm_frame"
        _add_tip_sensors(spec, sites, "palm_frame")
        fingers = extra.fingers
        model = spec.compile()
        default = np.clip(np.zeros(model.nu), *model.actuator_ctrlrange.T)
    else:
        known = ", ".join((*HAND_SPECS, *EXTRA_HANDS))
        raise ValueError(f"unknown hand {name!r}; MoDex hands: {known}")
    steps = CONTROL_DT / model.opt.timestep
    if abs(steps - round(steps)) > 1e-6:
        raise ValueError(f"{name}: timestep {model.opt.timestep} does not divide {CONTROL_DT}")
    low, high = model.actuator_ctrlrange.T.copy()
    index = np.concatenate(
        [model.sensor_adr[model.sensor(f"tip_{site}").id] + np.arange(3) for site in sites]
    )
    return ExplorationHand(
        name,
        model,
        fingers,
        low,
        high,
        default,
        round(steps),
        index,
        hand_max_step(name),
        sim_physics,
        joint_ids,
    )


def hand_max_step(name: str) -> float:
    """The largest change of a target per control period: the hand spec's joint speed limit
    over one period (:func:`devices.robots.limits.max_step`, as the app's safety filter)."""
    from assets.hands import HAND_SPECS
    from devices.robots.limits import max_step

    source = HAND_SPECS.get(name) or EXTRA_HANDS[name]
    return max_step(float(source.max_joint_speed_rad_s), CONTROL_DT)


def _far_end(model: mujoco.MjModel, body: int) -> np.ndarray:
    """Body-frame point at the far (+z) end of the body's geoms: the fingertip."""
    best = None
    for g in range(model.ngeom):
        if model.geom_bodyid[g] != body:
            continue
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.geom_quat[g])
        center, half = model.geom_aabb[g][:3], model.geom_aabb[g][3:]
        p = model.geom_pos[g] + rot.reshape(3, 3) @ (center + np.array([0.0, 0.0, half[2]]))
        if best is None or p[2] > best[2]:
            best = p
    if best is None:
        raise ValueError(f"body {model.body(body).name} has no geoms")
    return best


def initial_state(hand: ExplorationHand) -> np.ndarray:
    """The default pose at rest, as a full physics state (what every episode starts from)."""
    m = hand.model
    d = mujoco.MjData(m)
    d.ctrl[:] = hand.default_ctrl
    # hold the default targets for 1 s so the hand starts at rest
    mujoco.mj_step(m, d, nstep=round(1.0 / m.opt.timestep))
    size = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    state = np.empty(size)
    mujoco.mj_getState(m, d, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    return state


def fingertips(hand: ExplorationHand, sensordata: np.ndarray) -> np.ndarray:
    return np.asarray(sensordata[..., hand.tip_index], dtype=np.float32)
