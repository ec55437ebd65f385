"""Anygrasp-to-Anygrasp (DexterityGen Sec. III-B, Appendix B) and free finger motion.

Anygrasp: every episode starts from a random cached grasp of the world's object; the goal is
a *nearby* grasp (object pose and joints) picked by nearest-neighbour search over a random
subsample of the cache; reaching it earns a bonus and sets the next goal, so an episode is a
walk from grasp to grasp. Dropping the object ends the episode.

Reward (Appendix B, with our scales): ``alive + w_goal * r_goal + bonus * reached -
drop_penalty * dropped - min(w_style * sum_tips |v|^2 + w_reg * (work + action + torque
terms), penalty_cap)`` with ``r_goal = exp(-(|dp| / 2 cm + angle / 0.4 rad + |dq| / 2 rad))``;
``w_style`` and ``w_reg`` come from the world's style (``STYLES``). The alive term and the
cap keep every step in hand worth more than a drop: without them a policy whose jitter costs
more per step than the drop penalty learns to drop the object at once (our first demo run
did: episodes shrank to 0.4 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from assets.objects import FAMILIES, ObjectSpec, sample_instances
from assets.rotations import quat_angle, quat_canonical, quat_conj, quat_mul
from devices.robots.scene import OBJECT_BODY, SceneObject
from training.envs.base import EnvConfig, HandEnv
from training.grasps.cache import load_or_generate
from training.grasps.generate import GraspSet

_OBJECT_MODEL_FIELDS = (
    "geom_type",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "geom_friction",
)
_OBJECT_BODY_FIELDS = ("body_mass", "body_inertia", "body_ipos", "body_iquat")


@dataclass
class AnygraspConfig(EnvConfig):
    """Anygrasp settings (see the module docstring).

    Attributes:
        families / per_family / scale_range: the object instances (each with a grasp cache).
        grasps_base / grasps_rrt: grasps per instance, heuristic and RRT (Alg. 2).
        grasp_cache: where generated grasp caches go.
        goal_pos_m / goal_rot_rad: a goal counts as reached within both.
        goal_step: next goals are drawn with combined distance (|dp| / 1 cm + angle /
            0.2 rad) in this range from the reached one, from ``goal_subsample`` grasps.
        drop_m: the object is dropped once its centre is this far from the grasp region's
            centre (grasps lie within about 5 cm of it).
        goal_timeout_s: a goal not reached by then is replaced by a grasp near it (None:
            never, as in training). Data generation uses it so that an expert that does not
            reach goals still walks from grasp to grasp instead of settling on one.
    """

    families: tuple[str, ...] = tuple(FAMILIES)
    per_family: int = 1
    object_seed: int = 0
    scale_range: tuple[float, float] = (0.85, 1.15)
    grasps_base: int = 40
    grasps_rrt: int = 400
    grasp_cache: str | None = None
    goal_pos_m: float = 0.01
    goal_rot_rad: float = 0.25
    goal_step: tuple[float, float] = (1.5, 4.0)
    goal_subsample: int = 256
    drop_m: float = 0.09
    goal_timeout_s: float | None = None
    w_goal: float = 1.0
    alive: float = 1.0
    penalty_cap: float = 1.0
    bonus: float = 5.0
    drop_penalty: float = 20.0
    instances: list[ObjectSpec] = field(default_factory=list)


class AnygraspEnv(HandEnv):
    """Anygrasp-to-Anygrasp on primitive objects (one object per world, any instance)."""

    name = "anygrasp"
    cfg: AnygraspConfig

    def __init__(self, cfg: AnygraspConfig) -> None:
        if not cfg.instances:
            cfg.instances = sample_instances(
                cfg.families, cfg.per_family, cfg.scale_range, cfg.object_seed
            )
        self.instances = list(cfg.instances)
        self.grasps: list[GraspSet] = [
            load_or_generate(
                cfg.hand,
                o,
                n_base=cfg.grasps_base,
                n_rrt=cfg.grasps_rrt,
                cache_dir=cfg.grasp_cache,
                seed=cfg.seed + i,
            )
            for i, o in enumerate(self.instances)
        ]
        super().__init__(cfg)

    def _scene(self) -> mujoco.MjSpec:
        o = self.instances[0]
        return self.scene(SceneObject(o, o.mass_kg, o.friction))

    def _init_task(self) -> None:
        m = self.model
        N = self.num_envs
        self.obj_body = m.body(OBJECT_BODY).id
        self.obj_geom = m.geom("object_geom").id
        jnt = m.body_jntadr[self.obj_body]
        self.obj_qadr = int(m.jnt_qposadr[jnt])
        self.obj_dofadr = int(m.jnt_dofadr[jnt])
        # per-instance object fields, from a compiled scene of each instance
        self._inst_fields: list[dict[str, np.ndarray]] = []
        for o in self.instances:
            mi = self.scene(SceneObject(o, o.mass_kg, o.friction)).compile()
            f = {n: getattr(mi, n)[self.obj_geom].copy() for n in _OBJECT_MODEL_FIELDS}
            f.update({n: getattr(mi, n)[self.obj_body].copy() for n in _OBJECT_BODY_FIELDS})
            self._inst_fields.append(f)
        names = _OBJECT_MODEL_FIELDS + _OBJECT_BODY_FIELDS
        if not self.backend.per_world_geom_type:
            # one geom type per model (MuJoCo Warp): every instance must share the scene's
            types = {int(f["geom_type"]) for f in self._inst_fields}
            if types != {int(m.geom_type[self.obj_geom])}:
                shapes = sorted({o.shape for o in self.instances})
                raise ValueError(
                    f"the {type(self.backend).__name__} physics keeps one geom type per "
                    f"model, and these objects have several ({', '.join(shapes)}): run "
                    "families of one shape (e.g. cube, cuboid_ar2, cuboid_ar3: all boxes), "
                    "one run per shape, or physics='batch'"
                )
            names = tuple(n for n in names if n != "geom_type")
        self._fields = {n: self.backend.model_field(n) for n in names}
        self.inst = np.zeros(N, dtype=int)
        self.mass = np.zeros(N)
        self.friction = np.zeros(N)
        self.goal_idx = np.zeros(N, dtype=int)
        self.goal_pos = np.zeros((N, 3))
        self.goal_quat = np.tile([1.0, 0, 0, 0], (N, 1))
        self.goal_q = np.zeros((N, self.n))
        self.goal_q_target = np.zeros((N, self.n))
        self.goals_reached = np.zeros(N, dtype=int)
        self.region_centre = np.array(self.hand.spec.palm_surface_m) + np.array(
            [0.015, 0.0, -0.045]
        )
        self.force_timer = np.zeros(N)

    # -- object state ----------------------------------------------------------------------
    def obj_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) position and (N, 4) orientation of the object in the palm frame."""
        qp = self.backend.state("qpos")
        pos = (qp[:, self.obj_qadr : self.obj_qadr + 3] - self.palm_pos) @ self.palm_rot
        return pos, qp[:, self.obj_qadr + 3 : self.obj_qadr + 7]

    def obj_vel(self) -> tuple[np.ndarray, np.ndarray]:
        qv = self.backend.state("qvel")
        return qv[:, self.obj_dofadr : self.obj_dofadr + 3], qv[
            :, self.obj_dofadr + 3 : self.obj_dofadr + 6
        ]

    # -- reset ---------------------------------------------------------------------------
    def _reset_task(self, ids: np.ndarray) -> None:
        cfg, rng, b = self.cfg, self.rng, self.backend
        k = ids.size
        new_inst = rng.integers(0, len(self.instances), k)
        self.inst[ids] = new_inst
        mass_s = rng.uniform(*cfg.dr.mass_scale, k) if cfg.dr.enabled else np.ones(k)
        fric = rng.uniform(*cfg.dr.friction, k) if cfg.dr.enabled else np.full(k, 0.8)
        for w, i, ms, fr in zip(ids, new_inst, mass_s, fric, strict=True):
            src = self._inst_fields[i]
            for n in _OBJECT_MODEL_FIELDS:
                if n in self._fields:
                    self._fields[n][w, self.obj_geom] = src[n]
            for n in _OBJECT_BODY_FIELDS:
                self._fields[n][w, self.obj_body] = src[n]
            self._fields["body_mass"][w, self.obj_body] = src["body_mass"] * ms
            self._fields["body_inertia"][w, self.obj_body] = src["body_inertia"] * ms
            self._fields["geom_friction"][w, self.obj_geom, 0] = fr
            self.mass[w] = src["body_mass"] * ms
            self.friction[w] = fr
        b.set_const(ids)
        qpos, qvel, ctrl = b.state("qpos"), b.state("qvel"), b.state("ctrl")
        for w in ids:
            gs = self.grasps[self.inst[w]]
            g = int(rng.integers(0, len(gs)))
            qpos[w, self.qadr] = gs.q[g]
            qpos[w, self.obj_qadr : self.obj_qadr + 3] = (
                self.palm_pos + self.palm_rot @ gs.obj_pos[g]
            )
            qpos[w, self.obj_qadr + 3 : self.obj_qadr + 7] = gs.obj_quat[g]
            ctrl[w, self.act] = gs.q_target[g]
            self.goal_idx[w] = g
            self._next_goal(w)
        qvel[ids] = 0.0
        self.goals_reached[ids] = 0
        self.force_timer[ids] = 0.0

    def _next_goal(self, w: int) -> None:
        """A nearby grasp of the same object: random subsample, distance in [lo, hi]."""
        cfg, rng = self.cfg, self.rng
        gs = self.grasps[self.inst[w]]
        cur = self.goal_idx[w]
        cand = rng.choice(len(gs), size=min(cfg.goal_subsample, len(gs)), replace=False)
        cand = cand[cand != cur]
        if cand.size == 0:
            cand = np.array([cur])
        dist = (
            np.linalg.norm(gs.obj_pos[cand] - gs.obj_pos[cur], axis=1) / 0.01
            + quat_angle(gs.obj_quat[cand], gs.obj_quat[cur]) / 0.2
        )
        lo, hi = cfg.goal_step
        ok = cand[(dist >= lo) & (dist <= hi)]
        g = int(rng.choice(ok)) if ok.size else int(cand[np.argmin(np.abs(dist - 0.5 * (lo + hi)))])
        self.goal_idx[w] = g
        self.goal_pos[w] = gs.obj_pos[g]
        self.goal_quat[w] = gs.obj_quat[g]
        self.goal_q[w] = gs.q[g]
        self.goal_q_target[w] = gs.q_target[g]
        self.goal_age[w] = 0.0

    def reference_targets(self) -> np.ndarray:
        """The goal grasp's squeezing joint targets."""
        return self.goal_q_target

    # -- disturbances -----------------------------------------------------------------------
    def _disturb_object(self) -> None:
        dr, rng = self.cfg.dr, self.rng
        if not dr.enabled:
            return
        N = self.num_envs
        redraw = rng.uniform(size=N) < dr.force_prob
        new = rng.normal(size=(N, 3)) * (dr.force_scale * self.mass)[:, None]
        self.force[redraw] = new[redraw]
        self.force_timer += self.dt
        decay = self.force_timer >= dr.force_decay_s - 1e-9
        self.force[decay] *= dr.force_decay
        self.force_timer[decay] = 0.0
        self.backend.state("xfrc_applied")[:, self.obj_body, :3] = self.force @ self.palm_rot.T

    # -- observations and reward --------------------------------------------------------------
    def goal_error(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos, quat = self.obj_pose()
        return (
            np.linalg.norm(self.goal_pos - pos, axis=1),
            quat_angle(self.goal_quat, quat),
            np.linalg.norm(self.goal_q - self.q, axis=1),
        )

    def _task_obs(self) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = self.obj_pose()
        rel = quat_canonical(quat_mul(self.goal_quat, quat_conj(quat)))
        actor = np.concatenate(
            [(self.goal_pos - pos) / 0.02, rel, self.goal_q - self.q_obs], axis=1
        )
        lin, ang = self.obj_vel()
        critic = np.concatenate(
            [
                (pos - self.region_centre) / 0.02,
                quat_canonical(quat),
                lin * 0.1,
                ang * 0.1,
                quat_canonical(self.goal_quat),
                self.mass[:, None] * 10,
                self.friction[:, None],
                self.force * 0.5,
            ],
            axis=1,
        )
        return actor, critic

    def dropped(self) -> np.ndarray:
        pos, _ = self.obj_pose()
        bad = ~np.all(np.isfinite(pos), axis=1)
        return bad | (np.linalg.norm(pos - self.region_centre, axis=1) > self.cfg.drop_m)

    def _reward(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        cfg = self.cfg
        dp, dr_, dq = self.goal_error()
        r_goal = np.exp(-(dp / 0.02 + dr_ / 0.4 + dq / 2.0))
        reached = (dp < cfg.goal_pos_m) & (dr_ < cfg.goal_rot_rad)
        dropped = self.dropped()
        reached &= ~dropped
        tips = self.tips()
        v_tip = (tips - self.tips_prev) / self.dt
        style = np.sum(v_tip**2, axis=(1, 2))
        tau = self.torque()
        work = np.abs(np.sum(tau * self.dq, axis=1))
        act = np.sum(self.last_action**2, axis=1)  # actions in [-1, 1]
        reg = 0.02 * work + 0.005 * act + 0.02 * np.sum(tau**2, axis=1)
        w_style, w_reg = self.style_w[self.style].T
        penalty = np.minimum(w_style * style + w_reg * reg, cfg.penalty_cap)
        rew = (
            np.where(dropped, 0.0, cfg.alive)
            + cfg.w_goal * r_goal
            + cfg.bonus * reached
            - cfg.drop_penalty * dropped
            - penalty
        )
        rew = np.nan_to_num(rew, nan=-cfg.drop_penalty, posinf=0.0, neginf=-cfg.drop_penalty)
        self.last_reached = reached
        self.goals_reached[reached] += 1
        for w in np.flatnonzero(self._goals_due(reached, cfg.goal_timeout_s)):
            self._next_goal(w)
        metrics = {
            "goal_pos_cm": dp * 100,
            "goal_rot_rad": dr_,
            "reached": reached.astype(float),
            "dropped": dropped.astype(float),
            "tip_speed": np.sqrt(style / 4),
            "penalty": penalty,
        }
        return rew, dropped, metrics


@dataclass
class FreeFingerConfig(EnvConfig):
    """Free finger motion: no object; reach random fingertip goals.

    Attributes:
        goal_tol_m: a goal is reached when every fingertip is within this of its target.
        goal_timeout_s: a goal not reached by then is replaced (random joint goals can make
            fingers meet, and a goal the hand cannot reach would freeze it for the episode).
    """

    goal_tol_m: float = 0.01
    goal_timeout_s: float = 1.5
    bonus: float = 2.0


class FreeFingerEnv(HandEnv):
    """Fingertips to random reachable targets (the forward kinematics of random joints)."""

    name = "free_finger"
    cfg: FreeFingerConfig

    def _scene(self) -> mujoco.MjSpec:
        return self.scene()

    def _init_task(self) -> None:
        self._fk_data = mujoco.MjData(self.model)
        self.goal_q = np.zeros((self.num_envs, self.n))
        self.goal_tips = np.zeros((self.num_envs, 4, 3))
        self.goals_reached = np.zeros(self.num_envs, dtype=int)

    def _new_goal(self, ids: np.ndarray) -> None:
        m, d = self.model, self._fk_data
        self.goal_age[ids] = 0.0
        for w in ids:
            q = self.rng.uniform(self.lower, self.upper)
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            self.goal_q[w] = q
            self.goal_tips[w] = (d.site_xpos[self.tip_sites] - self.palm_pos) @ self.palm_rot

    def reference_targets(self) -> np.ndarray:
        return self.goal_q

    def _reset_task(self, ids: np.ndarray) -> None:
        b = self.backend
        q0 = np.clip(
            self.hand.default_open + self.rng.normal(0, 0.2, (ids.size, self.n)),
            self.lower,
            self.upper,
        )
        qpos, ctrl = b.state("qpos"), b.state("ctrl")
        for j, w in enumerate(ids):
            qpos[w, self.qadr] = q0[j]
            ctrl[w, self.act] = q0[j]
        b.state("qvel")[ids] = 0.0
        self._new_goal(ids)
        self.goals_reached[ids] = 0

    def _task_obs(self) -> tuple[np.ndarray, np.ndarray]:
        rel = (self.goal_tips - self.tips()).reshape(self.num_envs, -1) / 0.05
        return rel, self.goal_q

    def _reward(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        tips = self.tips()
        err = np.linalg.norm(self.goal_tips - tips, axis=2)  # (N, 4)
        reached = np.all(err < self.cfg.goal_tol_m, axis=1)
        v_tip = (tips - self.tips_prev) / self.dt
        style = np.sum(v_tip**2, axis=(1, 2))
        w_style, w_reg = self.style_w[self.style].T
        act = np.sum(self.last_action**2, axis=1) * 0.01
        rew = (
            np.exp(-err.mean(axis=1) / 0.02)
            + self.cfg.bonus * reached
            - w_style * style
            - w_reg * act
        )
        self.last_reached = reached
        self.goals_reached[reached] += 1
        self._new_goal(np.flatnonzero(self._goals_due(reached, self.cfg.goal_timeout_s)))
        metrics = {"tip_error_cm": err.mean(axis=1) * 100, "reached": reached.astype(float)}
        return rew, np.zeros(self.num_envs, bool), metrics
