"""Inverse kinematics of an arm in a MuJoCo model: damped least squares on a site.

:class:`ArmIK` solves for the arm's joint angles that put a site (the hand's palm frame)
at a target pose, on a private ``MjData`` (the simulation it serves is not touched):
Levenberg-Marquardt steps ``dq = J^T (J J^T + lambda^2 I)^-1 e`` on the 6-D pose error
(position, and the rotation vector of ``R_target R^T``), a null-space pull toward a rest
configuration, joint limits after every step. Each solve starts from the given joint angles
(the last solution: at 20 Hz a target moves little between ticks).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


def rotvec(r: np.ndarray) -> np.ndarray:
    """The rotation vector (axis * angle, rad) of the rotation matrix ``r``."""
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r, dtype=float).reshape(-1))
    v = np.zeros(3)
    mujoco.mju_quat2Vel(v, q, 1.0)
    return v


@dataclass
class IKResult:
    q: np.ndarray
    pos_err_m: float
    rot_err_rad: float
    iterations: int


class ArmIK:
    """Damped least-squares IK for ``joints`` of ``model`` putting ``site`` at a pose.

    Args:
        model: the compiled model (the arm's joints hinge joints).
        joints: the arm's joint names, base to tip.
        site: the site to place (world pose).
        lower / upper: joint limits (rad); rest: the null-space target.
        damping: lambda (m); iterations / tol_m / tol_rad: when to stop; max_step_rad:
            the largest joint change per iteration.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        joints: list[str],
        site: str,
        lower: np.ndarray,
        upper: np.ndarray,
        rest: np.ndarray,
        *,
        damping: float = 0.02,
        iterations: int = 30,
        tol_m: float = 1e-4,
        tol_rad: float = 1e-3,
        max_step_rad: float = 0.2,
        null_gain: float = 0.005,
    ) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        jids = [model.joint(j).id for j in joints]
        self.qadr = np.array([model.jnt_qposadr[j] for j in jids])
        self.dadr = np.array([model.jnt_dofadr[j] for j in jids])
        self.site = model.site(site).id
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        self.rest = np.asarray(rest, float)
        self.damping = damping
        self.iterations = iterations
        self.tol_m, self.tol_rad = tol_m, tol_rad
        self.max_step_rad = max_step_rad
        self.null_gain = null_gain
        self._jp = np.zeros((3, model.nv))
        self._jr = np.zeros((3, model.nv))

    def pose(self, q: np.ndarray, qpos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The site's world position and rotation at arm angles ``q`` (the rest of the model
        at ``qpos``, default its reference pose)."""
        d = self.data
        d.qpos[:] = self.model.qpos0 if qpos is None else qpos
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, d)
        return d.site_xpos[self.site].copy(), d.site_xmat[self.site].reshape(3, 3).copy()

    def solve(
        self,
        q0: np.ndarray,
        pos: np.ndarray,
        rot: np.ndarray,
        qpos: np.ndarray | None = None,
    ) -> IKResult:
        m, d = self.model, self.data
        d.qpos[:] = m.qpos0 if qpos is None else qpos
        q = np.clip(np.asarray(q0, float), self.lower, self.upper)
        lam2 = self.damping**2
        e = np.zeros(6)
        it = 0
        for it in range(1, self.iterations + 1):  # noqa: B007 - reported
            d.qpos[self.qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            e[:3] = pos - d.site_xpos[self.site]
            e[3:] = rotvec(rot @ d.site_xmat[self.site].reshape(3, 3).T)
            if np.linalg.norm(e[:3]) < self.tol_m and np.linalg.norm(e[3:]) < self.tol_rad:
                break
            mujoco.mj_jacSite(m, d, self._jp, self._jr, self.site)
            jac = np.vstack([self._jp[:, self.dadr], self._jr[:, self.dadr]])
            jjt = jac @ jac.T + lam2 * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, e)
            # pull toward the rest configuration in the null space of the task
            pinv = jac.T @ np.linalg.inv(jjt)
            dq += (np.eye(len(q)) - pinv @ jac) @ (self.null_gain * (self.rest - q))
            n = np.abs(dq).max()
            if n > self.max_step_rad:
                dq *= self.max_step_rad / n
            q = np.clip(q + dq, self.lower, self.upper)
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(m, d)
        pe = float(np.linalg.norm(pos - d.site_xpos[self.site]))
        re = float(np.linalg.norm(rotvec(rot @ d.site_xmat[self.site].reshape(3, 3).T)))
        return IKResult(q, pe, re, it)

    def solve_start(
        self,
        pos: np.ndarray,
        rot: np.ndarray,
        *,
        tries: int = 24,
        seed: int = 0,
        tol_m: float = 1e-3,
        tol_rad: float = 1e-2,
        margin_rad: float = 0.3,
    ) -> IKResult | None:
        """A configuration reaching the pose from scratch: from the rest configuration and
        from ``tries`` seeded perturbations of it, the reaching solution nearest the rest
        configuration among those at least ``margin_rad`` inside every joint limit (else the
        one farthest inside; None if none reaches the pose). Deterministic for a seed."""
        rng = np.random.default_rng(seed)
        found = []
        for k in range(tries + 1):
            q0 = self.rest if k == 0 else self.rest + rng.normal(0.0, 0.8, self.rest.shape)
            r = self.solve(q0, pos, rot)
            if r.pos_err_m <= tol_m and r.rot_err_rad <= tol_rad:
                margin = float(np.minimum(r.q - self.lower, self.upper - r.q).min())
                found.append((margin, float(np.linalg.norm(r.q - self.rest)), r))
        if not found:
            return None
        inside = [f for f in found if f[0] >= margin_rad]
        if inside:
            return min(inside, key=lambda f: f[1])[2]
        return max(found, key=lambda f: f[0])[2]
