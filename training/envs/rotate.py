"""In-hand rotation about a commanded axis (DexNDM Sec. 3.1, Appendix A.1; Hora).

Every episode starts from a cached grasp of the world's object (the Anygrasp machinery:
instances, grasp caches, per-world object fields, random forces, drop detection), with a
rotation axis ``k`` in the palm frame and a wrist orientation drawn from the task's sets.
The wrist is one of DexNDM's six (palm up / down, base up / down, thumb up / down), applied
as the gravity direction in the palm frame and held for the episode, or ``random`` (the
base environment's drifting gravity). Episodes last 20 s (400 steps at 20 Hz); a drop ends
one.

Reward (DexNDM A.1, which follows Hora / RotateIt), per control step::

    alive + w_rot * clip(omega . k, -c, c) + w_goal * r_goal - min(P, penalty_cap)
    - drop_penalty * dropped,
    P = w_rotp(t) * |omega x k|_1 + s * (w_lin * |v|^2 + w_pose * |q - q_start|^2
        + w_torque * |tau|^2 + w_work * |tau . dq|)

(the alive bonus, the cap and the scale ``s`` of the regularisers are ours, see the config).

``omega`` is the object's angular velocity in the palm frame over the last control step
(from its orientations, so it is the rotation actually made), ``v`` its linear velocity.
The off-axis weight ``w_rotp`` follows DexNDM's curriculum: 0 for the first 10 resets per
world, rising linearly to 0.1 at 100. ``r_goal`` is the intermediate waypoint: an
orientation 90 degrees ahead about ``k``, moved on whenever the object comes within 15
degrees of it; ``r_goal = min(g / (angle + eps), c_goal) + bonus * [angle < 15 deg]``
(the paper does not give g, eps, c_goal and the bonus; ours are in the config).

Observations: the actor sees the proprioception history (the base), the axis and the wrist
(gravity in the palm frame), and, as DexNDM's oracle specialists (``oracle``, on by
default), the object's pose, velocities and waypoint and the fingertips; the critic adds
mass, friction and the random force (asymmetric, as the other tasks).

Actions: ``reference`` mode by default, a residual on the start grasp's squeezing targets
(a = 0 holds the grasp), or ``delta``. With ``gait`` on, the reference is the start grasp
plus the shipped periodic finger gait of the world's (wrist, axis) (``training.envs.gait``),
and the actor also sees the gait's phase (its sine and cosine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assets.objects import FAMILIES, sample_instances
from assets.rotations import (
    axis_angle_quat,
    quat_angle,
    quat_canonical,
    quat_conj,
    quat_mul,
    quat_rotvec,
    random_unit,
)
from devices.robots.scene import rotation_start_palm, wrist_gravity
from devices.tick import axis_vector, tilt_origin
from training.envs.anygrasp import AnygraspConfig, AnygraspEnv
from training.envs.gait import Gait, find_gait, gait_offsets, gait_path

#: An axis drawn uniformly on the sphere per episode.
ANY_AXIS = "any"
#: The base environment's random, drifting gravity instead of a fixed wrist.
RANDOM_WRIST = "random"
#: The palm start of the LEAP cube specialists (``rest_q``): the start pose of Judo's LEAP
#: cube task (RAI Institute): index and ring spread 0.75 rad, fingers half closed, thumb
#: opposed; a 7 cm cube (``scale_range=1.4,1.4``) lies in the palm inside the fingers.
LEAP_CUPPED_POSE: tuple[float, ...] = (0.5, -0.75, 0.75, 0.25, 0.5, 0.0, 0.75, 0.25,
                                       0.5, 0.75, 0.75, 0.25, 0.65, 0.9, 0.75, 0.6)  # fmt: skip


#: ``lie``: the turn that lays an object's own z axis along the palm's y
_LAY_DOWN = axis_angle_quat(np.array([1.0, 0.0, 0.0]), np.array(np.pi / 2))


#: the object's features at the head of the critic's task observation, which the oracle
#: actor sees too: position 3, orientation 4, velocities 3 + 3, waypoint 4
OBJECT_SLOTS = 17


@dataclass
class RotateConfig(AnygraspConfig):
    """Rotation settings (see the module docstring); objects, grasps and randomization as
    in :class:`AnygraspConfig`.

    Attributes:
        axes: the commanded axes, drawn per episode: names of :data:`devices.tick.AXES`,
            ``any``, or an axis between two named ones, ``A>B:DEG``
            (:func:`devices.tick.axis_vector`), which the tilt curricula turn as they turn
            tilted wrists.
        wrists: the wrist orientations, drawn per episode: names of
            ``devices.robots.scene.WRIST_ORIENTATIONS`` or ``random``.
        rot_clip: ``c``, the clip of the angular speed about the axis, rad/s.
        w_rot / w_goal / w_lin / w_pose / w_torque / w_work: reward weights (DexNDM A.1).
        rotp_max / rotp_resets: the off-axis penalty's curriculum: 0 until the first
            number of resets per world, then linear to ``rotp_max`` at the second.
        waypoint_rad / waypoint_reached_rad: the waypoint's lead about the axis and how
            close counts as reached.
        goal_gain / goal_eps / goal_clip / goal_bonus: ``r_goal``'s constants.
        penalty_scale: multiplies the linear-velocity, pose, torque and work penalties (1:
            DexNDM's weights, which were set for Hora's weak kp = 3 PD hand; our servo
            model's torques and speeds are larger, and at 1 these terms outweigh the
            largest rotation reward several times over while a policy explores).
        alive_bonus / penalty_cap: every step in hand earns ``alive_bonus`` and the penalties
            (off-axis included) are capped at ``penalty_cap``, so that a step in hand is never
            worth less than 0 before the rotation terms. Without them a step costs about 1.4
            while a policy explores and the drop penalty is cheaper than the rest of the
            episode: our first runs learned to drop the cube (episodes 7 s -> 2.3 s, drops
            per step 0.7 % -> 2.8 % over 0.55 M steps). Anygrasp has the same fix.
        history: proprioception steps the actor sees: 10, the generalist's T (DexNDM
            Sec. 3.2), so that specialists and the generalist distilled from them see alike.
        start: ``grasp``: a random cached grasp (the Anygrasp caches: fingertips pinching the
            object anywhere in the hand). ``palm``: the object dropped onto the palm from
            just above it, at a random yaw about the palm normal, with the hand in its rest
            pose (``rest_frac`` of the way from open to the object's mean cached grasp, or
            ``rest_q`` if given: joint angles in the hand's order) and that pose as the
            reference: the start of MuJoCo Playground's LEAP cube task, where the object
            lies in the palm and fingers push it round instead of having to regrasp it.
            Not for wrists that turn the palm down. Where the palm is sideways, the hand
            must grip the object in time: holding still in the cupped pose keeps a 7 cm cube
            with the fingers pointing down tilted 60-75 degrees from palm up
            (``palm_up>base_up:60``) and toward the thumb 60 degrees; it drops it at 90
            degrees (``base_up``), and tilted 60 degrees toward the little finger or the
            wrist (BENCHMARKS, in-hand rotation).
        lie: with ``start=palm``, the object's own z axis laid along the palm's y before the
            random yaw: a cylinder or long cuboid lies in the palm instead of standing on its
            end (where the cupped fingers tip it over). A cube or sphere is unchanged by it.
        oracle: the actor also sees the object's position, orientation, velocities and
            waypoint and the fingertips (DexNDM A.1: the specialists are oracle policies
            with the object's state; the generalist distilled from them sees only
            proprioception, the axis and the wrist). Off: proprioception only.
        blind: with ``oracle``, the object's slots of the actor's observation (its pose,
            velocities and waypoint) are filled with zeros; the fingertips stay (they follow
            from the joint angles). An oracle policy trained on with it (``--init``) keeps
            its network and learns to act without the object: a teacher whose actions
            depend only on what the generalist sees (its joint history, with the gait's
            phase where it has one).
        gait: add the periodic finger gait of each world's (wrist, axis) to the reference
            (``reference`` actions); every named axis and fixed wrist needs one under
            ``gait_dir`` (default ``assets/gaits``); a tilted one (``A>B:DEG``) takes
            ``A``'s.
        gait_axes: with ``gait``, only these of ``axes`` take a gait; worlds about the
            others keep the start grasp as their reference, as without ``gait`` (their
            actor's phase features are there but mean nothing). Empty: every axis. For
            policies of both kinds in one environment (distilling specialists with and
            without gaits together).
        gait_from_switch: a world switched to an axis with a gait (``set_axis``) starts
            that gait anew, ramp included, from the switch; off: the gait runs from the
            episode's start, as if the world had turned about that axis all along.
        axis_flip_s: > 0: an operator switching axes: every episode starts about the first
            of ``axes`` and switches to the next of them (cyclically) every ``axis_flip_s``
            seconds (:meth:`RotateEnv.set_axis`). 0: one axis per episode, drawn at random.
        tilt_resets: the tilt curriculum of tilted wrists (``A>B:DEG``, :func:`wrist_gravity`):
            episodes start at wrist ``A`` until the first number of resets per world, then
            tilted linearly more, to ``DEG`` at the second. (0, 0): the whole tilt at once.
            Drops end episodes sooner and so speed this clock up as a policy fails.
        tilt_keep / tilt_step: > 0: the adaptive tilt curriculum instead (0-1 of ``DEG``,
            from 0): every episode kept to the end tilts the next ones ``tilt_step`` more,
            every drop ``tilt_step * tilt_keep / (1 - tilt_keep)`` less, so the tilt climbs
            only as fast as the policy keeps ``tilt_keep`` of its episodes. It tilts wrists
            and axes (``A>B:DEG``) alike.
        tilt_rate: with ``tilt_keep``, an episode counts as kept only if it also turned the
            object at least this fast about its axis (rad/s, over the whole episode); one
            kept without turning so counts as a drop. For tilted axes, where holding still
            keeps the object as well as turning does. 0: kept is kept.
        tilt_start: the adaptive curriculum's level at the start of a run (0-1; a resumed run
            continues from its saved level instead), e.g. to go on from where another run's
            tilt stopped.
        tilt_replay: with ``tilt_keep`` (refused without it), the share of episodes that
            start at a tilt drawn uniformly between 0 and the level instead of at the level,
            so that a policy keeps the wrists (or axes) it has passed; only the episodes at
            the level move it.
    """

    families: tuple[str, ...] = ("cube", "cylinder", "cuboid_ar3", "sphere")
    episode_s: float = 20.0
    history: int = 10
    styles: tuple[str, ...] = ("steady",)
    axes: tuple[str, ...] = ("z+",)
    wrists: tuple[str, ...] = ("palm_up",)
    rot_clip: float = 0.5
    w_rot: float = 1.0
    w_goal: float = 1.0
    w_lin: float = 0.3
    w_pose: float = 0.3
    w_torque: float = 0.1
    w_work: float = 2.0
    rotp_max: float = 0.1
    rotp_resets: tuple[float, float] = (10.0, 100.0)
    waypoint_rad: float = np.pi / 2
    waypoint_reached_rad: float = np.radians(15.0)
    goal_gain: float = 0.05
    goal_eps: float = 0.1
    goal_clip: float = 0.5
    goal_bonus: float = 1.0
    drop_penalty: float = 20.0
    penalty_scale: float = 1.0
    start: str = "grasp"
    rest_frac: float = 0.5
    rest_q: tuple[float, ...] = ()
    lie: bool = False
    oracle: bool = True
    blind: bool = False
    alive_bonus: float = 0.5
    penalty_cap: float = 0.5
    gait: bool = False
    gait_dir: str | None = None
    gait_axes: tuple[str, ...] = ()
    gait_from_switch: bool = False
    axis_flip_s: float = 0.0
    tilt_resets: tuple[float, float] = (0.0, 0.0)
    tilt_keep: float = 0.0
    tilt_step: float = 0.001
    tilt_rate: float = 0.0
    tilt_start: float = 0.0
    tilt_replay: float = 0.0


class RotateEnv(AnygraspEnv):
    """Turn the held object about the commanded axis (one object per world)."""

    name = "rotate"
    cfg: RotateConfig

    def __init__(self, cfg: RotateConfig) -> None:
        if not cfg.axes or not cfg.wrists:
            raise ValueError("rotate needs at least one axis and one wrist")
        for a in cfg.axes:
            if a != ANY_AXIS:
                try:
                    axis_vector(a)
                except ValueError as e:
                    raise ValueError(f"{e}; or {ANY_AXIS!r} (one drawn per episode)") from None
        if not (0.0 <= cfg.tilt_keep < 1.0 and cfg.tilt_step > 0):
            raise ValueError(
                f"tilt_keep must be in [0, 1) and tilt_step > 0, got {cfg.tilt_keep}, "
                f"{cfg.tilt_step}"
            )
        if not (0.0 <= cfg.tilt_start <= 1.0 and cfg.tilt_rate >= 0.0):
            raise ValueError(
                f"tilt_start must be in [0, 1] and tilt_rate >= 0, got {cfg.tilt_start}, "
                f"{cfg.tilt_rate}"
            )
        if not 0.0 <= cfg.tilt_replay <= 1.0:
            raise ValueError(f"tilt_replay must be in [0, 1], got {cfg.tilt_replay}")
        if cfg.blind and not cfg.oracle:
            raise ValueError("blind empties the oracle's object slots: it needs oracle=True")
        if cfg.tilt_replay > 0 and cfg.tilt_keep == 0:
            raise ValueError(
                "tilt_replay replays episodes below the adaptive curriculum's level: it needs "
                f"tilt_keep > 0 (got tilt_replay={cfg.tilt_replay}, tilt_keep=0)"
            )
        if cfg.axis_flip_s > 0 and ANY_AXIS in cfg.axes:
            raise ValueError("axis_flip_s switches between named axes, not 'any'")
        for w in cfg.wrists:
            if w != RANDOM_WRIST:
                try:
                    wrist_gravity(w)
                except ValueError as e:
                    raise ValueError(f"{e}; or {RANDOM_WRIST!r} (drifting gravity)") from None
        unknown = sorted(set(cfg.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown object families {unknown}; known: {', '.join(FAMILIES)}")
        if not cfg.instances:
            # the instances Anygrasp draws for all families, kept for ours: the same scales,
            # so the shipped grasp caches serve both tasks
            every = sample_instances(
                tuple(FAMILIES), cfg.per_family, cfg.scale_range, cfg.object_seed
            )
            cfg.instances = [o for o in every if o.name.rsplit("_s", 1)[0] in cfg.families]
            if not cfg.instances:
                raise ValueError(
                    f"no object families among {cfg.families}; known: {list(FAMILIES)}"
                )
        if cfg.start not in ("grasp", "palm"):
            raise ValueError(f"start must be 'grasp' or 'palm', got {cfg.start!r}")
        if cfg.start == "palm":
            # the palm facing down at all: the object falls off it before a finger moves
            up = [w for w in cfg.wrists if w == RANDOM_WRIST or wrist_gravity(w)[2] < -1e-9]
            if up:
                raise ValueError(
                    f"start='palm' needs wrists that do not turn the palm down, not {up}"
                )
        self.gaits: dict[tuple[str, str], Gait] = {}
        if cfg.gait:
            self.gaits = self._load_gaits(cfg)
        super().__init__(cfg)

    @staticmethod
    def _load_gaits(cfg: RotateConfig) -> dict[tuple[str, str], Gait]:
        if cfg.action_mode != "reference":
            raise ValueError("a gait is a reference: use action_mode='reference' with gait")
        other = sorted(set(cfg.gait_axes) - set(cfg.axes))
        if other:
            raise ValueError(f"gait_axes {other} are not among the axes {list(cfg.axes)}")
        gaits, missing = {}, []
        for w in cfg.wrists:
            for a in cfg.gait_axes or cfg.axes:
                if w == RANDOM_WRIST or a == ANY_AXIS:
                    missing.append(f"{w}/{a} (gaits exist only for fixed wrists and named axes)")
                    continue
                wa, aa = tilt_origin(w), tilt_origin(a)  # a tilted one: its origin's gait
                g = find_gait(cfg.hand, wa, aa, cfg.gait_dir, cfg.start)
                if g is None:
                    p = gait_path(cfg.hand, wa, aa, cfg.gait_dir, cfg.start)
                    missing.append(f"{w}/{a} ({p})")
                else:
                    gaits[(w, a)] = g
        if missing:
            raise ValueError(
                f"no {cfg.hand} gait for: {'; '.join(missing)}; find one with "
                "`dexteleop train gait --hand H --start S --wrist W --axis A` (a policy "
                "trained about a tilted axis, e.g. x->y-:90, takes x-'s: command it so)"
            )
        return gaits

    def _init_task(self) -> None:
        super()._init_task()
        N = self.num_envs
        self.axis = np.tile([0.0, 0.0, 1.0], (N, 1))
        self.axis_name = np.zeros(N, dtype=int)  # index into cfg.axes
        self.wrist_id = np.full(N, -1)  # index into cfg.wrists; -1: random gravity
        self.q_start = np.zeros((N, self.n))
        self.quat_prev = np.tile([1.0, 0.0, 0.0, 0.0], (N, 1))
        self.omega = np.zeros((N, 3))
        self.waypoints = np.zeros(N, dtype=int)
        self.rotated_rad = np.zeros(N)  # the episode's rotation about the axis so far
        self.resets = 0  # episodes started, all worlds (the curriculum's clock)
        self.tilt_level = self.cfg.tilt_start  # the adaptive curriculum's share (tilt_keep > 0)
        self.tilt = np.zeros(N)  # each world's episode's tilt (share of A>B:DEG)
        self.tilt_at_level = np.ones(N, dtype=bool)  # False: a replayed, easier tilt
        # start=palm: each instance's rest pose, part of the way to its mean cached grasp
        rest = [self.cfg.rest_frac * gs.q.mean(axis=0) for gs in self.grasps]
        if self.cfg.rest_q:
            if len(self.cfg.rest_q) != self.n:
                raise ValueError(f"rest_q has {len(self.cfg.rest_q)} joints, the hand {self.n}")
            rest = [np.asarray(self.cfg.rest_q, dtype=float)] * len(self.grasps)
        self.rest_q = np.clip(rest, self.lower, self.upper)
        # each world's gait (zero: hold the grasp), set per episode from its wrist and axis
        self.gait_amp = np.zeros((N, self.n))
        self.gait_phase = np.zeros((N, self.n))
        self.gait_bias = np.zeros((N, self.n))
        self.gait_period = np.ones(N)
        self.gait_ramp_s = 0.5
        #: the control step each world's gait started at (0: the episode's start)
        self.gait_t0 = np.zeros(N, dtype=int)

    # -- episode start ---------------------------------------------------------------------
    def _reset_task(self, ids: np.ndarray) -> None:
        cfg, rng = self.cfg, self.rng
        k = ids.size
        names = rng.integers(0, len(cfg.axes), k)
        if cfg.axis_flip_s > 0:  # the operator's sequence starts at the first axis
            names[:] = 0
        self.axis_name[ids] = names
        level = self.tilt_share()
        self.tilt_at_level[ids] = True
        self.tilt[ids] = level
        if cfg.tilt_replay > 0:  # (needs tilt_keep; draws nothing otherwise: same stream)
            replay = ids[rng.random(k) < cfg.tilt_replay]
            self.tilt_at_level[replay] = False
            self.tilt[replay] = rng.uniform(0.0, level, replay.size)
        for w, i in zip(ids, names, strict=True):
            name = cfg.axes[i]
            self.axis[w] = (
                random_unit(rng, 1)[0] if name == ANY_AXIS else axis_vector(name, self.tilt[w])
            )
        wrists = rng.integers(0, len(cfg.wrists), k)
        for w, i in zip(ids, wrists, strict=True):
            name = cfg.wrists[i]
            self.wrist_id[w] = -1 if name == RANDOM_WRIST else i
            if name != RANDOM_WRIST:
                self.gravity[w] = self.gravity_goal[w] = wrist_gravity(name, self.tilt[w])
                self.gravity_rate[w] = 0.0
        self.gait_t0[ids] = 0
        for w, ia, iw in zip(ids, names, wrists, strict=True):
            self._take_gait(w, self.gaits.get((cfg.wrists[iw], cfg.axes[ia])))
        super()._reset_task(ids)  # the grasp, the object's fields; calls _next_goal
        if cfg.start == "palm":
            self._palm_start(ids)
        ctrl = self.backend.state("ctrl")
        self.goal_q_target[ids] = ctrl[ids][:, self.act]  # the reference: hold the grasp
        self.q_start[ids] = self.backend.state("qpos")[ids][:, self.qadr]
        _, quat = self.obj_pose()
        self.quat_prev[ids] = quat[ids]
        self.omega[ids] = 0.0
        self.waypoints[ids] = 0
        self.rotated_rad[ids] = 0.0
        self.resets += k

    def _palm_start(self, ids: np.ndarray) -> None:
        """The object just above the palm at a random yaw, the hand in its rest pose."""
        rng, b = self.rng, self.backend
        qpos, ctrl = b.state("qpos"), b.state("ctrl")
        rbound = self._fields["geom_rbound"][:, self.obj_geom]
        for w in ids:
            q = self.rest_q[self.inst[w]]
            qpos[w, self.qadr] = q
            ctrl[w, self.act] = q
            # palm frame = world frame in training scenes; the palm faces -z
            pos = rotation_start_palm(self.hand, float(rbound[w]))
            qpos[w, self.obj_qadr : self.obj_qadr + 3] = self.palm_pos + pos
            yaw = axis_angle_quat(np.array([0.0, 0.0, 1.0]), np.array(rng.uniform(0, 2 * np.pi)))
            if self.cfg.lie:  # the object's z along the palm's y, then the yaw
                yaw = quat_mul(yaw, _LAY_DOWN)
            qpos[w, self.obj_qadr + 3 : self.obj_qadr + 7] = yaw
            self.goal_q[w] = q
            self.goal_q_target[w] = q
            self._next_goal(w)

    def set_axis(self, ids: np.ndarray, name: str) -> None:
        """Command worlds ``ids`` to turn about axis ``name`` (one of the task's ``axes``)
        from now on, mid-episode, as an operator switching axes does: the waypoint restarts
        from the object's pose and the world takes the (wrist, axis) gait, if any."""
        if name not in self.cfg.axes or name == ANY_AXIS:
            raise ValueError(f"axis {name!r} is not one of this task's axes {self.cfg.axes}")
        ids = np.atleast_1d(np.asarray(ids, dtype=int))
        self.axis_name[ids] = self.cfg.axes.index(name)
        if self.cfg.gait_from_switch:
            self.gait_t0[ids] = self.episode_length_buf.cpu().numpy()[ids]
        for w in ids:
            self.axis[w] = axis_vector(name, self.tilt[w])  # at its episode's tilt
            iw = self.wrist_id[w]
            self._take_gait(w, self.gaits.get((self.cfg.wrists[iw], name)) if iw >= 0 else None)
            self._next_goal(int(w))

    # -- the gait ----------------------------------------------------------------------------
    def set_gait(self, ids: np.ndarray, gait: Gait) -> None:
        """Give worlds ``ids`` this gait (gait search sets one candidate per world)."""
        if gait.n != self.n:
            raise ValueError(f"gait for {gait.n} joints, hand has {self.n}")
        self.gait_amp[ids] = gait.amplitude
        self.gait_phase[ids] = gait.phase
        self.gait_bias[ids] = gait.bias
        self.gait_period[ids] = gait.period_s
        self.gait_ramp_s = gait.ramp_s

    def _take_gait(self, w: int, gait: Gait | None) -> None:
        """World ``w`` follows ``gait``; None: the start grasp (no offset)."""
        if gait is not None:
            self.set_gait(np.array([w]), gait)
        else:
            self.gait_amp[w] = self.gait_phase[w] = self.gait_bias[w] = 0.0

    def object_columns(self) -> slice | None:
        """Where the oracle's object slots (position, orientation, velocities, waypoint: 17)
        sit in the actor's observation (None without ``oracle``): after the proprioception
        history and the axis. ``blind`` fills them with zeros."""
        if not self.cfg.oracle:
            return None
        start = self.hist_q.shape[1] * 2 * self.n + 3
        return slice(start, start + OBJECT_SLOTS)

    def gait_phase_columns(self) -> slice | None:
        """Where the gait's phase (sine, cosine) sits in the actor's observation (None
        without a gait): the last of its task features, before the gravity and styles."""
        if not self.cfg.gait:
            return None
        end = -(3 + len(self.cfg.styles))
        return slice(end - 2, end)

    def gait_time(self) -> np.ndarray:
        """(N,) seconds into each world's gait at the next control step: since the
        episode's start (or, with ``gait_from_switch``, since the switch to its axis)."""
        return (self.episode_length_buf.cpu().numpy() - self.gait_t0 + 1) * self.dt

    def reference_targets(self) -> np.ndarray:
        """The start grasp's targets plus each world's gait offset."""
        off = gait_offsets(
            self.gait_time(),
            self.gait_amp,
            self.gait_phase,
            self.gait_bias,
            self.gait_period,
            self.gait_ramp_s,
        )
        return self.goal_q_target + off

    def _new_gravity_goal(self, ids: np.ndarray) -> None:
        """Worlds with a fixed wrist keep their gravity; the others drift (the base)."""
        super()._new_gravity_goal(ids)
        fixed = ids[self.wrist_id[ids] >= 0]
        self.gravity_goal[fixed] = self.gravity[fixed]
        self.gravity_rate[fixed] = 0.0

    def _next_goal(self, w: int) -> None:
        """The waypoint: the object's orientation turned ``waypoint_rad`` about the axis."""
        quat = self.backend.state("qpos")[w, self.obj_qadr + 3 : self.obj_qadr + 7]
        turn = axis_angle_quat(self.axis[w], np.array(self.cfg.waypoint_rad))
        self.goal_quat[w] = quat_mul(turn, quat)  # both in the palm (= world) frame
        self.goal_age[w] = 0.0

    # -- state -------------------------------------------------------------------------------
    def rotation_rate(self) -> np.ndarray:
        """(N, 3) the object's mean angular velocity over the last control step, palm frame,
        rad/s (from its orientations: what it actually turned)."""
        return self.omega

    def _update_omega(self) -> None:
        _, quat = self.obj_pose()
        turn = quat_mul(quat, quat_conj(self.quat_prev))  # the world-frame turn this step
        omega = quat_rotvec(turn) / self.dt
        self.omega = np.where(np.isfinite(omega), omega, 0.0)
        self.quat_prev = quat.copy()

    def rotp_weight(self) -> float:
        """The off-axis penalty's weight now (the curriculum, in resets per world)."""
        lo, hi = self.cfg.rotp_resets
        per_world = self.resets / self.num_envs
        return self.cfg.rotp_max * float(np.clip((per_world - lo) / max(hi - lo, 1e-9), 0, 1))

    def tilt_share(self) -> float:
        """How much of a tilted wrist's tilt (``A>B:DEG``) episodes start with now: 0 until
        the first of ``tilt_resets`` resets per world, then linear to 1 at the second; with
        ``tilt_keep``, the adaptive curriculum's level (:meth:`_adapt_tilt`)."""
        if self.cfg.tilt_keep > 0:
            return self.tilt_level
        lo, hi = self.cfg.tilt_resets
        if hi <= 0:
            return 1.0
        per_world = self.resets / self.num_envs
        return float(np.clip((per_world - lo) / max(hi - lo, 1e-9), 0, 1))

    def curriculum_state(self) -> dict:
        """What a resumed run needs to continue the curriculum where it stopped."""
        return {"resets_per_world": self.resets / self.num_envs, "tilt_level": self.tilt_level}

    def load_curriculum_state(self, state: dict) -> None:
        """Continue the curriculum of a saved run (:meth:`curriculum_state`; a run saved
        before it was kept passes ``{"episodes": N}``, its ended episodes, all worlds)."""
        if "resets_per_world" in state:
            per_world = float(state["resets_per_world"])
        else:
            per_world = float(state.get("episodes", 0.0)) / self.num_envs
        self.resets = round(max(per_world, 0.0) * self.num_envs)
        self.tilt_level = float(np.clip(state.get("tilt_level", 0.0), 0.0, 1.0))

    # -- observations and reward --------------------------------------------------------------
    def _task_obs(self) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = self.obj_pose()
        lin, _ = self.obj_vel()
        rel = quat_canonical(quat_mul(self.goal_quat, quat_conj(quat)))
        critic = np.concatenate(
            [
                (pos - self.region_centre) / 0.02,
                quat_canonical(quat),
                lin * 0.1,
                self.omega * 0.2,
                rel,
                self.mass[:, None] * 10,
                self.friction[:, None],
                self.force * 0.5,
            ],
            axis=1,
        )
        actor = self.axis.copy()
        if self.cfg.oracle:  # DexNDM's oracle specialists see the object and fingertips
            tips = self.tips().reshape(self.num_envs, -1) / 0.05
            obj = critic[:, :OBJECT_SLOTS]
            seen = np.zeros_like(obj) if self.cfg.blind else obj
            actor = np.concatenate([actor, seen, tips], axis=1)
        if self.cfg.gait:
            w = 2 * np.pi * self.gait_time() / self.gait_period
            actor = np.concatenate([actor, np.sin(w)[:, None], np.cos(w)[:, None]], axis=1)
        return actor, critic

    def _reward(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        cfg = self.cfg
        self._update_omega()
        omega, k = self.omega, self.axis
        # this step's turn and axis, kept for evaluations (a reset clears omega and may
        # draw a new axis before the step returns)
        self.last_omega, self.last_axis = omega.copy(), k.copy()
        about = np.sum(omega * k, axis=1)
        off = np.abs(np.cross(omega, k)).sum(axis=1)
        r_rot = np.clip(about, -cfg.rot_clip, cfg.rot_clip)
        _, quat = self.obj_pose()
        ang = quat_angle(self.goal_quat, quat)
        reached = ang < cfg.waypoint_reached_rad
        r_goal = np.minimum(cfg.goal_gain / (ang + cfg.goal_eps), cfg.goal_clip)
        r_goal = r_goal + cfg.goal_bonus * reached
        lin, _ = self.obj_vel()
        tau = self.torque()
        pose = np.sum((self.q - self.q_start) ** 2, axis=1)
        work = np.abs(np.sum(tau * self.dq, axis=1))
        torque = np.sum(tau**2, axis=1)
        penalty = self.rotp_weight() * off + cfg.penalty_scale * (
            cfg.w_lin * np.sum(lin**2, axis=1)
            + cfg.w_pose * pose
            + cfg.w_torque * torque
            + cfg.w_work * work
        )
        dropped = self.dropped()
        penalty = np.minimum(penalty, cfg.penalty_cap)
        rew = (
            cfg.alive_bonus
            + cfg.w_rot * r_rot
            + cfg.w_goal * r_goal
            - penalty
            - cfg.drop_penalty * dropped
        )
        rew = np.nan_to_num(rew, nan=-cfg.drop_penalty, posinf=0.0, neginf=-cfg.drop_penalty)
        self.rotated_rad += about * self.dt
        reached &= ~dropped
        self.waypoints[reached] += 1
        self.goals_reached[reached] += 1  # what evaluations count as goals
        self.last_reached = reached
        for w in np.flatnonzero(reached):
            self._next_goal(w)
        if cfg.axis_flip_s > 0:  # for the next step (this one's axis is last_axis)
            every = max(1, round(cfg.axis_flip_s / self.dt))
            due = np.flatnonzero(self.episode_length_buf.cpu().numpy() % every == 0)
            for w in due:
                self.set_axis(np.array([w]), cfg.axes[(self.axis_name[w] + 1) % len(cfg.axes)])
        metrics = {
            "rot_rad_s": about,
            "off_axis_rad_s": np.linalg.norm(np.cross(omega, k), axis=1),
            "waypoints": reached.astype(float),
            "dropped": dropped.astype(float),
            "pose": pose,
            "penalty": penalty,
            "rotp_weight": np.full(self.num_envs, self.rotp_weight()),
        }
        if cfg.tilt_keep > 0:
            self._adapt_tilt(dropped)
            metrics["tilt_share"] = np.full(self.num_envs, self.tilt_level)
        return rew, dropped, metrics

    def _adapt_tilt(self, dropped: np.ndarray) -> None:
        """The adaptive tilt curriculum: each episode that ends this step raises the tilt by
        ``tilt_step`` if it kept the object to the end, and lowers it by ``tilt_step *
        tilt_keep / (1 - tilt_keep)`` if it dropped it, so that the tilt settles where
        ``tilt_keep`` of the episodes are kept, and climbs as the policy learns to keep it.
        With ``tilt_rate``, an episode kept without turning that fast counts as a drop; with
        ``tilt_replay``, episodes replayed at an easier tilt do not count."""
        cfg = self.cfg
        timeout = self.timed_out()
        ended = (timeout | dropped) & self.tilt_at_level
        kept = timeout & ~dropped & self.tilt_at_level
        if cfg.tilt_rate > 0:  # and turned: the episode's mean speed about its axis
            kept &= self.rotated_rad >= cfg.tilt_rate * self.max_episode_length * self.dt
        down = cfg.tilt_step * cfg.tilt_keep / (1.0 - cfg.tilt_keep)
        n_kept = int(np.sum(kept))
        level = self.tilt_level + cfg.tilt_step * n_kept - down * (int(np.sum(ended)) - n_kept)
        self.tilt_level = float(np.clip(level, 0.0, 1.0))
