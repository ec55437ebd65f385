"""Grasp generation for the Anygrasp-to-Anygrasp task (DexterityGen, Appendix B, Alg. 2-5).

A grasp is a hand configuration and an object pose, both in the palm frame, with the
fingertips that touch the object. Generation runs in two stages:

1. **Heuristic sampling** (Alg. 3): place the object at a random pose under the palm, sample
   2-4 surface points with their normals, keep them if the simplified net-force analysis
   (Alg. 4, :func:`training.grasps.geometry.net_force_residual`) finds a balanced squeeze,
   assign them to fingertips (the thumb always takes one) by per-finger inverse kinematics,
   and keep the result if nothing penetrates.
2. **RRT expansion** (Alg. 5): sample a random (joints, object pose), take its nearest grasp,
   step toward the sample, re-seat the touching fingertips on the surface (closest point,
   IK), and keep the new grasp if it is collision-free and still balanced. This spreads the
   set across configurations that sampling alone rarely finds.

Each grasp also carries ``q_target``: the joint targets that press each touching fingertip
``squeeze_m`` into the object along its normal, so that a PD-controlled hand holds it.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from assets.hands import FINGERS, Hand
from assets.objects import ObjectSpec
from assets.physics import DEFAULT_PHYSICS, Physics
from assets.rotations import quat_angle
from devices.robots.scene import HAND_PREFIX, OBJECT_BODY, SceneObject, build_scene
from training.grasps.geometry import closest_surface, net_force_residual, sample_surface

log = logging.getLogger(__name__)

THUMB = FINGERS.index("thumb")


@dataclass
class GraspSet:
    """Grasps of one hand on one object, palm frame.

    Attributes:
        q: (M, n) joint positions (hand joint order) with the fingertips touching.
        q_target: (M, n) joint targets that squeeze the object.
        obj_pos: (M, 3) object centre, m. obj_quat: (M, 4) object orientation (wxyz).
        contacts: (M, 4) which fingertips (FINGERS order) touch the object.
        source: (M,) 0 = heuristic sample, 1 = RRT expansion.
        meta: hand, object, counts and generation times.
    """

    q: np.ndarray
    q_target: np.ndarray
    obj_pos: np.ndarray
    obj_quat: np.ndarray
    contacts: np.ndarray
    source: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.q.shape[0])

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` atomically (a crash never leaves half a cache)."""
        import json

        from assets.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "xb") as f:
            np.savez_compressed(
                f,
                q=self.q.astype(np.float32),
                q_target=self.q_target.astype(np.float32),
                obj_pos=self.obj_pos.astype(np.float32),
                obj_quat=self.obj_quat.astype(np.float32),
                contacts=self.contacts,
                source=self.source.astype(np.int8),
                meta=np.array(json.dumps(self.meta)),
            )

    @classmethod
    def load(cls, path: str | Path) -> GraspSet:
        import json

        try:
            with np.load(path, allow_pickle=False) as z:
                out = cls(
                    q=z["q"].astype(float),
                    q_target=z["q_target"].astype(float),
                    obj_pos=z["obj_pos"].astype(float),
                    obj_quat=z["obj_quat"].astype(float),
                    contacts=z["contacts"].astype(bool),
                    source=z["source"].astype(int),
                    meta=json.loads(str(z["meta"])),
                )
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"grasp cache {path} is unreadable or incomplete: {e}") from e
        if not all(
            np.all(np.isfinite(a)) for a in (out.q, out.q_target, out.obj_pos, out.obj_quat)
        ):
            raise ValueError(f"grasp cache {path} holds non-finite values")
        return out

    def subset(self, idx: np.ndarray) -> GraspSet:
        return GraspSet(
            self.q[idx],
            self.q_target[idx],
            self.obj_pos[idx],
            self.obj_quat[idx],
            self.contacts[idx],
            self.source[idx],
            dict(self.meta),
        )


@dataclass
class GraspConfig:
    """Settings of the generator (lengths in m, angles in rad)."""

    force_residual_max: float = 0.15  # Alg. 4 threshold: |net force| with one force at 1
    ik_tol_m: float = 0.003  # a fingertip counts as placed within this
    squeeze_m: float = 0.012  # q_target pushes each touching fingertip this far in
    penetration_m: float = 0.003  # deeper hand-object or hand-hand overlap is a collision
    region_x: tuple[float, float] = (-0.01, 0.04)  # object centre, relative to palm_surface
    region_y: tuple[float, float] = (-0.03, 0.03)
    gap_z: tuple[float, float] = (0.0, 0.04)  # extra distance below the palm surface
    rrt_step_q: float = 0.25  # joint-space step toward the random sample (norm)
    rrt_step_pos: float = 0.01
    rrt_step_rot: float = 0.25


def random_quat(rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Uniform random unit quaternion(s), wxyz."""
    q = rng.normal(size=(4,) if n is None else (n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    r = np.zeros(9)
    mujoco.mju_quat2Mat(r, np.asarray(q, dtype=float))
    return r.reshape(3, 3)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    if np.dot(a, b) < 0:
        b = -b
    ang = np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))
    if ang < 1e-6:
        return a.copy()
    out = (np.sin((1 - t) * ang) * a + np.sin(t * ang) * b) / np.sin(ang)
    return out / np.linalg.norm(out)


class GraspGenerator:
    """Samples and expands grasps of ``hand`` on ``obj`` (Alg. 2).

    The scene is the app's (``build_scene``), with the wrist palm-down so that the palm
    frame's axes are the world's and every pose is stored in the palm frame. ``physics``
    (``assets.physics``) is what the hold test runs; the grasps themselves are kinematic.
    """

    def __init__(
        self,
        hand: Hand,
        obj: ObjectSpec,
        *,
        seed: int = 0,
        config: GraspConfig | None = None,
        physics: str | Physics = DEFAULT_PHYSICS,
    ) -> None:
        self.hand, self.obj = hand, obj
        self.cfg = config or GraspConfig()
        self.rng = np.random.default_rng(seed)
        self.physics = hand.physics(physics)
        spec = build_scene(
            hand,
            wrist="palm_down",
            obj=SceneObject(obj, obj.mass_kg, obj.friction),
            physics=self.physics,
        )
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        mujoco.mj_kinematics(m, self.data)
        jids = [m.joint(HAND_PREFIX + j).id for j in hand.joint_names]
        self.qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self.dofadr = np.array([m.jnt_dofadr[j] for j in jids])
        act_of_joint = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        self.acts = np.array([act_of_joint[j] for j in jids])  # each joint's actuator
        oj = m.body_jntadr[m.body(OBJECT_BODY).id]
        self.obj_qadr = int(m.jnt_qposadr[oj])
        self.obj_geom = m.geom("object_geom").id
        self.obj_body = m.body(OBJECT_BODY).id
        psite = m.site(HAND_PREFIX + "palm_frame").id
        self.palm_pos = self.data.site_xpos[psite].copy()
        self.palm_rot = self.data.site_xmat[psite].reshape(3, 3).copy()
        # per finger: its joints (hand order), tip site, tip geom
        self.finger_joints: list[np.ndarray] = []
        self.tip_sites, self.tip_geoms = [], []
        hand_geoms = set()
        for f, base in enumerate(hand.spec.finger_base_bodies):
            bodies = self._subtree(m.body(HAND_PREFIX + base).id)
            self.finger_joints.append(
                np.array([i for i, j in enumerate(jids) if m.jnt_bodyid[j] in bodies])
            )
            sid = m.site(f"{HAND_PREFIX}kp_{FINGERS[f]}_tip").id
            self.tip_sites.append(sid)
            tip_body = m.site_bodyid[sid]
            cands = [
                g
                for g in range(m.ngeom)
                if m.geom_bodyid[g] == tip_body and (m.geom_contype[g] or m.geom_conaffinity[g])
            ]
            mujoco.mj_kinematics(m, self.data)
            dist = [
                np.linalg.norm(self.data.geom_xpos[g] - self.data.site_xpos[sid]) for g in cands
            ]
            self.tip_geoms.append(cands[int(np.argmin(dist))])
        for g in range(m.ngeom):
            if m.body(m.geom_bodyid[g]).name.startswith(HAND_PREFIX):
                hand_geoms.add(g)
        self.hand_geoms = hand_geoms
        # radius of the fingertip pad: the tip site's distance to its geom's surface
        self.pad_m = float(np.mean([self._pad_radius(f) for f in range(len(FINGERS))]))
        self.surface_palm = np.array(hand.spec.palm_surface_m)
        # each finger's reach: the farthest its tip site gets from its base site (sampled)
        self.base_palm = np.array(hand.finger_base_palm)
        reach = np.zeros(len(FINGERS))
        for q in self.rng.uniform(hand.lower, hand.upper, size=(300, hand.n_joints)):
            self.data.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, self.data)
            for f in range(len(FINGERS)):
                reach[f] = max(reach[f], np.linalg.norm(self.tip_palm(f) - self.base_palm[f]))
        self.reach_m = reach * 1.02
        self.half_extent = float(np.max(obj.size))

    # -- helpers -----------------------------------------------------------------------------
    def start_hold(self, grasps: GraspSet, i: int, gravity_palm: np.ndarray) -> np.ndarray:
        """Start grasp ``i`` of a hold test: the world reset, the hand at the grasp with its
        squeeze targets, the object at rest, gravity of 9.81 m/s^2 along ``gravity_palm``
        (palm frame; normalised here). Returns the object's start position (world)."""
        m, d = self.model, self.data
        g = np.asarray(gravity_palm, dtype=float)
        m.opt.gravity[:] = 9.81 * self.palm_rot @ (g / np.linalg.norm(g))
        mujoco.mj_resetData(m, d)
        self.set_state(grasps.q[i], grasps.obj_pos[i], grasps.obj_quat[i])
        d.ctrl[self.acts] = grasps.q_target[i]
        mujoco.mj_forward(m, d)
        return d.xpos[self.obj_body].copy()

    def _subtree(self, root: int) -> set[int]:
        m = self.model
        out = {root}
        for b in range(m.nbody):
            p = b
            while p > 0:
                if p == root:
                    out.add(b)
                    break
                p = m.body_parentid[p]
        return out

    def _pad_radius(self, f: int) -> float:
        """Distance from the tip site to the tip geom's surface, toward the palm side."""
        m, d = self.model, self.data
        d.qpos[self.qadr] = self.hand.default_open
        mujoco.mj_kinematics(m, d)
        gid = self.tip_geoms[f]
        # the tip site sits at the tip geom's centre; its thinnest half-extent is the pad's
        return float(np.clip(np.min(m.geom_size[gid]), 0.004, 0.02))

    def to_world(
        self, pos_palm: np.ndarray, quat_palm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        pw = self.palm_pos + self.palm_rot @ pos_palm
        qw = np.zeros(4)
        mujoco.mju_mat2Quat(qw, (self.palm_rot @ quat_to_mat(quat_palm)).reshape(-1))
        return pw, qw

    def set_state(self, q: np.ndarray, pos_palm: np.ndarray, quat_palm: np.ndarray) -> None:
        d = self.data
        d.qpos[self.qadr] = q
        pw, qw = self.to_world(pos_palm, quat_palm)
        d.qpos[self.obj_qadr : self.obj_qadr + 3] = pw
        d.qpos[self.obj_qadr + 3 : self.obj_qadr + 7] = qw

    def random_pose(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.cfg
        pos = self.surface_palm + np.array(
            [
                self.rng.uniform(*c.region_x),
                self.rng.uniform(*c.region_y),
                -(self.half_extent + self.rng.uniform(*c.gap_z)),
            ]
        )
        return pos, random_quat(self.rng)

    def ik_finger(
        self, f: int, q: np.ndarray, target_palm: np.ndarray, iters: int = 40
    ) -> tuple[np.ndarray, float]:
        """Damped least squares on finger ``f``'s joints to put its tip site at
        ``target_palm``. Returns the new full ``q`` and the remaining error (m)."""
        m, d = self.model, self.data
        q = q.copy()
        js = self.finger_joints[f]
        lo, hi = self.hand.lower[js], self.hand.upper[js]
        sid = self.tip_sites[f]
        target = self.palm_pos + self.palm_rot @ target_palm
        jac = np.zeros((3, m.nv))
        err = np.inf
        for _ in range(iters):
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            e = target - d.site_xpos[sid]
            err = float(np.linalg.norm(e))
            if err < 2e-4:
                break
            mujoco.mj_comPos(m, d)
            mujoco.mj_jacSite(m, d, jac, None, sid)
            j = jac[:, self.dofadr[js]]
            dq = j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(3), e)
            q[js] = np.clip(q[js] + np.clip(dq, -0.3, 0.3), lo, hi)
        return q, err

    def tip_palm(self, f: int) -> np.ndarray:
        return self.palm_rot.T @ (self.data.site_xpos[self.tip_sites[f]] - self.palm_pos)

    def collision_free(
        self, q: np.ndarray, pos: np.ndarray, quat: np.ndarray, touching: np.ndarray
    ) -> bool:
        """No deep hand-object or hand-hand overlap, and every touching tip is on the surface."""
        m, d = self.model, self.data
        self.set_state(q, pos, quat)
        mujoco.mj_fwdPosition(m, d)
        pen = self.cfg.penetration_m
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = c.geom1, c.geom2
            h1, h2 = g1 in self.hand_geoms, g2 in self.hand_geoms
            touches = (h1 and h2) or self.obj_geom in (g1, g2)
            if touches and (h1 or h2) and c.dist < -pen:
                return False
        fromto = np.zeros(6)
        for f in np.flatnonzero(touching):
            dist = mujoco.mj_geomDistance(m, d, self.tip_geoms[f], self.obj_geom, 0.02, fromto)
            if not (-pen <= dist <= 0.002):
                return False
        return True

    def squeeze_target(self, q: np.ndarray, normals_palm: dict[int, np.ndarray]) -> np.ndarray:
        """Joint targets pushing each touching tip ``squeeze_m`` against its normal."""
        m, d = self.model, self.data
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        out = q.copy()
        jac = np.zeros((3, m.nv))
        for f, n in normals_palm.items():
            js = self.finger_joints[f]
            mujoco.mj_jacSite(m, d, jac, None, self.tip_sites[f])
            j = jac[:, self.dofadr[js]]
            dx = -self.palm_rot @ n * self.cfg.squeeze_m
            out[js] += j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(3), dx)
        return np.clip(out, self.hand.lower, self.hand.upper)

    def _place(
        self,
        q0: np.ndarray,
        pos: np.ndarray,
        quat: np.ndarray,
        pts_obj: np.ndarray,
        fingers: list[int],
    ) -> tuple[np.ndarray, float, dict[int, np.ndarray]] | None:
        """IK each assigned tip onto its surface point, the pad resting on the surface.

        The pad's thickness depends on which side of the tip faces the object, so each
        placement is corrected twice by the measured tip-object distance (FixContact).
        """
        m, d = self.model, self.data
        r = quat_to_mat(quat)
        q = q0.copy()
        self.set_state(q, pos, quat)
        mujoco.mj_kinematics(m, d)
        normals = {}
        worst = 0.0
        fromto = np.zeros(6)
        for f, p in zip(fingers, pts_obj, strict=True):
            _, n, _ = closest_surface(self.obj.shape, np.array(self.obj.size), p[None])
            n_palm = r @ n[0]
            target = pos + r @ p + n_palm * self.pad_m
            for _ in range(3):
                q, err = self.ik_finger(f, q, target)
                if err > self.cfg.ik_tol_m:
                    return None
                d.qpos[self.qadr] = q
                mujoco.mj_kinematics(m, d)
                gap = mujoco.mj_geomDistance(m, d, self.tip_geoms[f], self.obj_geom, 0.05, fromto)
                if abs(gap) < 0.0015:
                    break
                target = target - n_palm * gap
            worst = max(worst, err)
            normals[f] = n_palm
        return q, worst, normals

    # -- Alg. 3 ------------------------------------------------------------------------------
    def sample_points(self, npts: int, pool: int = 24) -> tuple[np.ndarray, np.ndarray]:
        """``npts`` contact candidates: a random surface point, one of the three points of a
        random pool whose normals oppose it most (an opposing pair: what any stable grasp
        needs, and what uniform sampling on a sphere almost never draws), then random ones.
        """
        size = np.array(self.obj.size)
        p, n = sample_surface(self.obj.shape, size, pool, self.rng)
        first = 0
        opp = np.argsort(n[1:] @ n[first])[:3] + 1
        second = int(self.rng.choice(opp))
        rest = [i for i in range(1, pool) if i != second]
        others = self.rng.choice(rest, size=npts - 2, replace=False) if npts > 2 else []
        idx = [first, second, *others]
        return p[idx], n[idx]

    def heuristic_sample(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """One attempt of HeuristicSample; returns (q, q_target, pos, quat, touching) or None."""
        npts = int(self.rng.choice([2, 3, 4]))
        pts, normals = self.sample_points(npts)
        if net_force_residual(normals) > self.cfg.force_residual_max:
            return None
        pos, quat = self.random_pose()
        r = quat_to_mat(quat)
        # cheap reachability: each finger's IK error for each point, from the open pose
        errs = np.full((len(FINGERS), npts), np.inf)
        targets = pos + pts @ r.T + (normals @ r.T) * self.pad_m
        for f in range(len(FINGERS)):
            for i in range(npts):
                if np.linalg.norm(targets[i] - self.base_palm[f]) > self.reach_m[f]:
                    continue  # out of this finger's reach: no IK needed
                _, errs[f, i] = self.ik_finger(f, self.hand.default_open, targets[i], iters=20)
        best, best_cost = None, np.inf
        for fingers in itertools.permutations(range(len(FINGERS)), npts):
            if THUMB not in fingers:
                continue
            cost = sum(errs[f, i] for i, f in enumerate(fingers))
            if cost < best_cost:
                best, best_cost = list(fingers), cost
        if best is None or max(errs[f, i] for i, f in enumerate(best)) > 3 * self.cfg.ik_tol_m:
            return None
        placed = self._place(self.hand.default_open, pos, quat, pts, best)
        if placed is None:
            return None
        q, _, normals_palm = placed
        touching = np.zeros(len(FINGERS), bool)
        touching[best] = True
        if not self.collision_free(q, pos, quat, touching):
            return None
        return q, self.squeeze_target(q, normals_palm), pos, quat, touching

    # -- Alg. 5 ------------------------------------------------------------------------------
    def rrt_expand(
        self, s: GraspSet
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """One RRT step from the set ``s``: random sample, nearest grasp, step, re-seat."""
        c = self.cfg
        q_rand = self.rng.uniform(self.hand.lower, self.hand.upper)
        pos_rand, quat_rand = self.random_pose()
        dist = (
            np.linalg.norm(s.q - q_rand, axis=1) / 1.0
            + np.linalg.norm(s.obj_pos - pos_rand, axis=1) / 0.02
            + quat_angle(s.obj_quat, quat_rand) / 0.5
        )
        k = int(np.argmin(dist))
        q0, pos0, quat0, touching = s.q[k], s.obj_pos[k], s.obj_quat[k], s.contacts[k]
        dq = q_rand - q0
        q = q0 + dq * min(1.0, c.rrt_step_q / max(np.linalg.norm(dq), 1e-9))
        dp = pos_rand - pos0
        pos = pos0 + dp * min(1.0, c.rrt_step_pos / max(np.linalg.norm(dp), 1e-9))
        ang = float(quat_angle(quat0, quat_rand))
        quat = slerp(quat0, quat_rand, min(1.0, c.rrt_step_rot / max(ang, 1e-9)))
        q = np.clip(q, self.hand.lower, self.hand.upper)
        # FixContactAndCollision: each touching tip back onto the nearest surface point
        r = quat_to_mat(quat)
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        fingers = list(np.flatnonzero(touching))
        pts = []
        for f in fingers:
            tip_obj = r.T @ (self.tip_palm(f) - pos)
            surf, _, _ = closest_surface(self.obj.shape, np.array(self.obj.size), tip_obj[None])
            pts.append(surf[0])
        placed = self._place(q, pos, quat, np.array(pts), fingers)
        if placed is None:
            return None
        q, _, normals_palm = placed
        normals_obj = np.array([r.T @ normals_palm[f] for f in fingers])
        if len(fingers) < 2 or net_force_residual(normals_obj) > c.force_residual_max:
            return None
        if not self.collision_free(q, pos, quat, touching):
            return None
        return q, self.squeeze_target(q, normals_palm), pos, quat, touching.copy()

    # -- Alg. 2 ------------------------------------------------------------------------------
    def generate(
        self, n_base: int, n_rrt: int, *, max_seconds: float | None = None, progress=None
    ) -> GraspSet:
        """``n_base`` heuristic grasps, then ``n_rrt`` RRT expansions (Alg. 2).

        Args:
            max_seconds: stop each stage early after this long (the counts say what was made).
            progress: optional callable(n_done) for a progress bar.
        """
        t0 = time.perf_counter()
        n = self.hand.n_joints
        cap = n_base + n_rrt  # the set grows in place; RRT steps search a view of it
        store = GraspSet(
            np.zeros((cap, n)),
            np.zeros((cap, n)),
            np.zeros((cap, 3)),
            np.zeros((cap, 4)),
            np.zeros((cap, len(FINGERS)), bool),
            np.zeros(cap, int),
        )
        count = 0

        def add(g: tuple, source: int) -> None:
            nonlocal count
            for arr, v in zip(
                (store.q, store.q_target, store.obj_pos, store.obj_quat, store.contacts),
                g,
                strict=True,
            ):
                arr[count] = v
            store.source[count] = source
            count += 1
            if progress:
                progress(1)

        tries = 0
        while count < n_base:
            tries += 1
            g = self.heuristic_sample()
            if g is not None:
                add(g, 0)
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                break
            if tries > 2000 and not count:
                raise RuntimeError(
                    f"no grasp of {self.obj.name} by the {self.hand.name} hand in {tries} tries"
                )
        t_base = time.perf_counter() - t0
        n_ok_base = count
        rrt_tries = 0
        t1 = time.perf_counter()
        while count and count - n_ok_base < n_rrt:
            rrt_tries += 1
            g = self.rrt_expand(store.subset(slice(0, count)))
            if g is not None:
                add(g, 1)
            if max_seconds is not None and time.perf_counter() - t1 > max_seconds:
                break
        meta = {
            "hand": self.hand.name,
            "object": self.obj.name,
            "shape": self.obj.shape,
            "size": list(self.obj.size),
            "heuristic": n_ok_base,
            "heuristic_tries": tries,
            "heuristic_s": round(t_base, 2),
            "rrt": count - n_ok_base,
            "rrt_tries": rrt_tries,
            "rrt_s": round(time.perf_counter() - t1, 2),
            "squeeze_m": self.cfg.squeeze_m,
            "physics": self.physics.name,
        }
        log.info("grasps %s", meta)
        out = store.subset(slice(0, count))
        return GraspSet(
            out.q.copy(),
            out.q_target.copy(),
            out.obj_pos.copy(),
            out.obj_quat.copy(),
            out.contacts.copy(),
            out.source.copy(),
            meta,
        )


def hold_test(
    gen: GraspGenerator,
    grasps: GraspSet,
    gravity_palm: np.ndarray,
    *,
    duration_s: float = 1.0,
    timestep_s: float | None = None,
    tolerance_m: float = 0.02,
) -> np.ndarray:
    """Whether each grasp holds its object for ``duration_s`` under gravity.

    The hand starts at the grasp with its targets at ``q_target`` and the object at rest;
    a grasp holds if the object's centre ends within ``tolerance_m`` of where it started.

    Args:
        gravity_palm: (3,) or (M, 3) gravity direction(s) in the palm frame (normalised here).

    Returns:
        (M,) bool.
    """
    m, d = gen.model, gen.data
    old_dt, old_g = m.opt.timestep, m.opt.gravity.copy()
    if timestep_s is not None:
        m.opt.timestep = timestep_s
    g = np.broadcast_to(np.asarray(gravity_palm, dtype=float), (len(grasps), 3))
    nstep = round(duration_s / m.opt.timestep)
    out = np.zeros(len(grasps), bool)
    try:
        for i in range(len(grasps)):
            start = gen.start_hold(grasps, i, g[i])
            mujoco.mj_step(m, d, nstep=nstep)
            out[i] = np.linalg.norm(d.xpos[gen.obj_body] - start) < tolerance_m
    finally:
        m.opt.timestep, m.opt.gravity[:] = old_dt, old_g
    return out
