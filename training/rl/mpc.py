"""A sampling model-predictive expert for in-hand rotation: the simulator is the model.

PPO from scratch did not learn to turn an object on this machine's budget (BENCHMARKS.md,
In-hand rotation: 0.027 rad/s after 6.9 M steps). A planner that uses the simulator itself
does: at every control step it copies each world's full state (joints, object, targets,
forces, its randomised gains, masses and gravity) into ``samples`` planning worlds, rolls
``samples`` sequences of joint-target changes ``horizon`` control steps ahead, scores them
with a rotation objective, and sends the first step of their exponentially weighted mean
(MPPI, Williams et al. 2017; predictive sampling as in MuJoCo MPC). The best sequence is
kept and shifted as the next step's nominal, so the plan is warm-started.

It is an *oracle* expert: it sees the exact state and the random force of the moment (held
over the horizon). It labels states for behaviour cloning (``training.rl.mpc_distill``)
and is evaluated like a policy (``bench/rotation_eval.py --mpc``).

Objective per planning world, summed over the horizon (per control step)::

    w_rot * clip(omega . k, -c, c) - w_off * |omega x k| - w_pos * max(|p - p0| - r, 0)
    - w_pose * |q - q0|^2 ,  and  -fall_cost per step once |p - p0| > fall_m

plus a terminal ``- w_final_pose * |q_H - q0|^2``. ``p0`` and ``q0`` are the object's
position ``settle_s`` into the episode and the task's start joints (``q_start``): the position
term keeps the object in the hand without pinning it, the pose terms pull the fingers back
toward their start so that they can regrasp (finger gaiting) instead of winding up against a
joint limit.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from assets.rotations import quat_conj, quat_mul, quat_rotvec
from devices.robots import limits

#: the state a planning world copies from the world it plans for
SYNC_STATE = ("qpos", "qvel", "ctrl", "xfrc_applied", "qacc_warmstart")
#: per-world model fields the tasks randomise (besides the object's own, ``env._fields``)
SYNC_MODEL = ("actuator_gainprm", "actuator_biasprm", "opt.gravity")


@dataclass
class MPCSettings:
    """The planner (see the module docstring).

    Attributes:
        samples: sequences per world and step (plus the nominal, always scored).
        horizon: control steps looked ahead.
        noise_rad: standard deviation of each sampled joint-target change per step, rad.
        temperature: MPPI's lambda (score units); small: nearly the best sequence.
        rot_clip: clip of the angular speed about the axis, rad/s.
        w_rot / w_off / w_pos / w_pose: objective weights.
        pos_free_m: how far the object may move from its start position for free.
        w_final_pose: the pose term once more at the horizon's end (a terminal cost: the
            fingers should end a plan ready for the next stroke).
        noise_scales: the samples' noise is ``noise_rad`` times these, in turn (several
            scales explore near the plan and far from it at once).
        settle_s: the object's start position is taken this far into each episode.
        fall_m / fall_cost: a planning world whose object is further than this from its
            start counts as fallen and pays ``fall_cost`` every remaining step.
        nthread: threads of the planning worlds.
        seed: the sampling noise's seed.
    """

    samples: int = 64
    horizon: int = 8
    noise_rad: float = 0.15
    temperature: float = 0.5
    rot_clip: float = 1.0
    w_rot: float = 1.0
    w_off: float = 0.3
    w_pos: float = 50.0
    pos_free_m: float = 0.015
    w_pose: float = 0.1
    w_final_pose: float = 1.0
    noise_scales: tuple[float, ...] = (1.0,)
    fall_m: float = 0.04
    settle_s: float = 0.5
    fall_cost: float = 5.0
    nthread: int = 2
    seed: int = 0


class RotationMPC:
    """Plans joint targets for every world of a ``rotate`` environment (``env``)."""

    def __init__(self, env: Any, settings: MPCSettings | None = None) -> None:
        from training.envs.base import Randomization

        self.env = env
        self.s = s = settings or MPCSettings()
        if s.samples < 1 or s.horizon < 1:
            raise ValueError("samples and horizon must be >= 1")
        self.group = s.samples + 1  # the nominal plus the samples
        cfg = replace(
            copy.deepcopy(env.cfg),
            num_envs=env.num_envs * self.group,
            nthread=s.nthread,
            dr=Randomization(enabled=False),
            seed=s.seed,
            gait=False,
        )
        self.plan_env = type(env)(cfg)
        pe = self.plan_env
        if pe.model.nq != env.model.nq or pe.model.nu != env.model.nu:
            raise RuntimeError("the planning worlds do not match the environment's model")
        self.rng = np.random.default_rng(s.seed)
        self.nominal = np.zeros((env.num_envs, s.horizon, env.n))
        self.p0 = np.zeros((env.num_envs, 3))
        self._last_len = np.full(env.num_envs, -1)
        self.last_scores: np.ndarray | None = None
        self._all_rows = np.arange(env.num_envs * self.group)

    def settings(self) -> dict[str, Any]:
        return asdict(self.s)

    # -- copying worlds ------------------------------------------------------------------------
    def _rows(self, worlds: np.ndarray) -> np.ndarray:
        """The planning worlds of real worlds ``worlds``: (len, group) indices."""
        return worlds[:, None] * self.group + np.arange(self.group)[None]

    def _sync_models(self, worlds: np.ndarray) -> None:
        env, pe = self.env, self.plan_env
        rows = self._rows(worlds)
        for name, f in env._fields.items():
            pe._fields[name][rows] = f[worlds][:, None]
        for name in SYNC_MODEL:
            src = env.backend.model_field(name)
            pe.backend.model_field(name)[rows] = src[worlds][:, None]
        pe.backend.set_const(rows.ravel())

    def _new_episodes(self) -> np.ndarray:
        """Worlds that started an episode since the last plan (their plans start over)."""
        length = self.env.episode_length_buf.cpu().numpy()
        new = (length < self._last_len) | (self._last_len < 0) | (length == 0)
        self._last_len = length.copy()
        return np.flatnonzero(new)

    # -- planning ----------------------------------------------------------------------------
    def plan(self) -> np.ndarray:
        """(N, n) joint targets for the environment's next step (limits and rate limit
        applied, as :meth:`HandEnv.step_targets` will apply them again)."""
        env, pe, s = self.env, self.plan_env, self.s
        N, G, H, n = env.num_envs, self.group, s.horizon, env.n
        new = self._new_episodes()
        length = env.episode_length_buf.cpu().numpy()
        if new.size:
            self._sync_models(new)
            self.nominal[new] = 0.0
        # the object's start position: where it is ``settle_s`` into the episode (a
        # palm start drops it into the palm first)
        settling = np.flatnonzero(length * env.dt <= s.settle_s + 1e-9)
        if settling.size:
            pos, _ = env.obj_pose()
            self.p0[settling] = pos[settling]
        # gravity drifts in the base env with random wrists: keep it current every step
        pe.backend.model_field("opt.gravity")[:] = np.repeat(
            env.backend.model_field("opt.gravity"), G, axis=0
        )
        for name in SYNC_STATE:
            pe.backend.state(name)[:] = np.repeat(env.backend.state(name), G, axis=0)
        # the backends step from current derived quantities (positions, contacts): make
        # them the copied state's
        pe.backend.forward(self._all_rows)
        scales = np.asarray(s.noise_scales, dtype=float)[np.arange(G) % len(s.noise_scales)]
        noise = self.rng.normal(0.0, s.noise_rad, (N, G, H, n))
        noise = noise * scales[None, :, None, None]
        noise[:, 0] = 0.0  # the nominal itself
        seqs = self.nominal[:, None] + noise  # (N, G, H, n)
        flat = seqs.reshape(N * G, H, n)
        target = np.repeat(env.target, G, axis=0)
        p0 = np.repeat(self.p0, G, axis=0)
        q0 = np.repeat(env.q_start, G, axis=0)
        axis = np.repeat(env.axis, G, axis=0)
        _, quat_prev = pe.obj_pose()
        quat_prev = quat_prev.copy()
        score = np.zeros(N * G)
        fallen = np.zeros(N * G, dtype=bool)
        applied = np.zeros_like(flat)
        for h in range(H):
            new_target = limits.limit_step(
                target + flat[:, h],
                target,
                lower=env.lower,
                upper=env.upper,
                max_step=env.max_step,
            )
            applied[:, h] = new_target - target
            target = new_target
            pe.backend.state("ctrl")[:, pe.act] = target
            pe.backend.step(pe.substeps)
            pos, quat = pe.obj_pose()
            omega = quat_rotvec(quat_mul(quat, quat_conj(quat_prev))) / env.dt
            omega = np.where(np.isfinite(omega), omega, 0.0)
            quat_prev = quat.copy()
            about = np.sum(omega * axis, axis=1)
            off = np.linalg.norm(np.cross(omega, axis), axis=1)
            d = np.linalg.norm(pos - p0, axis=1)
            d = np.where(np.isfinite(d), d, np.inf)
            fallen |= d > s.fall_m
            pose = np.sum((pe.q - q0) ** 2, axis=1)
            turn = np.clip(about, -s.rot_clip, s.rot_clip)
            r = (
                s.w_rot * turn
                - s.w_off * off
                - s.w_pos * np.maximum(np.minimum(d, 1.0) - s.pos_free_m, 0.0)
                - s.w_pose * pose
            )
            score += np.where(fallen, -s.fall_cost, r)
        score -= s.w_final_pose * np.sum((pe.q - q0) ** 2, axis=1)
        score = score.reshape(N, G)
        w = np.exp((score - score.max(axis=1, keepdims=True)) / max(s.temperature, 1e-9))
        w /= w.sum(axis=1, keepdims=True)
        plan = np.einsum("ng,nghj->nhj", w, applied.reshape(N, G, H, n))
        self.last_scores = score
        self.nominal = np.concatenate([plan[:, 1:], np.zeros((N, 1, n))], axis=1)
        return limits.limit_step(
            env.target + plan[:, 0],
            env.target,
            lower=env.lower,
            upper=env.upper,
            max_step=env.max_step,
        )
