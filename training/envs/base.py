"""Parallel hand environments for RL: many MuJoCo worlds stepped together.

A :class:`HandEnv` holds ``num_envs`` worlds of one scene (the app's scene from
``devices.robots.scene``: the hand on its mount, optionally an object) in a
:class:`Backend` and exposes torch tensors as rsl-rl's ``VecEnv`` expects: observations as a
``TensorDict`` with a ``policy`` group (what the actor sees: proprioception history and the
goal) and a ``critic`` group (plus privileged state), rewards, dones, and ``extras`` with
``time_outs`` and logging values. Done worlds reset automatically inside :meth:`step`.

Rates and physics. Control runs at 20 Hz (the app's rate). The physics is the hand's
(``assets.physics``, ``physics_model``): ``servo`` (the default), its actuator model (rotor
inertia, friction, the servo's torque limit and PD gains) at the timestep chosen for it by
the grasp hold test, 10 ms (5 substeps per control step), or ``menagerie``, the published
model at 2 ms (25 substeps), what the environments ran on before issue 18. Without the actuator
model, fingertip contacts chatter at longer steps and grasps fall (held for 1 s: 89 % at
2 ms, 10 % at 10 ms); with it they hold at 10 ms as at 2 ms (BENCHMARKS.md, Physics).

Wrist orientation. The mount stays palm-down (palm frame = world axes) and the *gravity
vector* turns instead: for a wrist that moves slowly this is the same physics, and it is
one per-world model field (``opt.gravity``) rather than a moving body. Gravity is drawn per
episode and keeps drifting toward new directions during the episode, so policies learn to
hold against it from any side.

Backends (``physics``). :class:`BatchBackend` runs on ``mujoco.batch`` threads (this
machine); :class:`~training.envs.warp_backend.WarpBackend` runs MuJoCo Warp on a GPU (or on
Warp's CPU backend). Both implement the same small :class:`Backend` surface: state arrays,
per-world model fields, reset, step, so the tasks do not change.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np
import torch
from tensordict import TensorDict

from assets.hands import FINGERS, ROBOT_KEYPOINT_NAMES, Hand, load_hand
from assets.physics import DEFAULT_PHYSICS, Physics, substeps
from devices.robots import limits
from devices.robots.scene import HAND_PREFIX, MOUNT_BODY, SceneObject, build_scene, site_names
from training.envs import RANDOMIZATION

log = logging.getLogger(__name__)

STATE_FIELDS = ("qpos", "qvel", "ctrl", "xfrc_applied")
_DIVERGENCE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)
DERIVED_FIELDS = ("site_xpos", "site_xmat", "actuator_force", "qfrc_actuator")


class Backend(abc.ABC):
    """Many worlds of one model: state arrays (N, ...), per-world model fields, stepping."""

    nsim: int
    #: whether worlds may differ in geom types (``mujoco.batch``: yes; MuJoCo Warp: no)
    per_world_geom_type: bool = True

    @abc.abstractmethod
    def state(self, name: str) -> np.ndarray:
        """A live (N, ...) array of an MjData field (state fields are writable)."""

    @abc.abstractmethod
    def model_field(self, name: str) -> np.ndarray:
        """A live, writable (N, ...) array of per-world values of an MjModel field."""

    @abc.abstractmethod
    def set_const(self, ids: np.ndarray) -> None:
        """Recompute derived model constants after writing masses/inertias."""

    @abc.abstractmethod
    def reset(self, ids: np.ndarray) -> None:
        """Reset worlds to the model's defaults (no forward pass)."""

    @abc.abstractmethod
    def forward(self, ids: np.ndarray) -> None:
        """Make positions, velocities and sensors current for ``ids``."""

    @abc.abstractmethod
    def step(self, nstep: int) -> np.ndarray:
        """Advance every world ``nstep`` physics steps; derived fields end current.

        Returns:
            (N,) bool: worlds whose physics diverged during the step (MuJoCo then resets
            them to the model's defaults; the caller must end their episodes).
        """

    @abc.abstractmethod
    def world(self, i: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Model and data of world ``i`` (for rendering or inspection)."""

    @abc.abstractmethod
    def world_data(self, i: int, model: mujoco.MjModel) -> mujoco.MjData:
        """World ``i``'s data, positions computed with ``model`` (its model, fetched once)."""


class BatchBackend(Backend):
    """``mujoco.batch.Batch`` on ``nthread`` CPU threads."""

    def __init__(self, model: mujoco.MjModel, nsim: int, nthread: int) -> None:
        from mujoco import batch as mjbatch

        if nsim < 1 or nthread < 1:
            raise ValueError("nsim and nthread must be >= 1")
        self.model = model
        self.nsim = nsim
        self.batch = mjbatch.Batch(model, nsim=nsim, nthread=nthread)
        self._bound = {n: self.batch.bind(n) for n in STATE_FIELDS + DERIVED_FIELDS}
        self._fields: dict[str, np.ndarray] = {}

    def state(self, name: str) -> np.ndarray:
        if name not in self._bound:
            self._bound[name] = self.batch.bind(name)
        return self._bound[name]

    def model_field(self, name: str) -> np.ndarray:
        if name not in self._fields:
            self._fields[name] = self.batch.expand(name)
        return self._fields[name]

    def set_const(self, ids: np.ndarray) -> None:
        self.batch.set_const([int(i) for i in ids])

    def reset(self, ids: np.ndarray) -> None:
        self.batch.reset([int(i) for i in ids], stage=mujoco.mjtStage.mjSTAGE_NONE.value)

    def forward(self, ids: np.ndarray) -> None:
        self.batch.forward([int(i) for i in ids], stage=mujoco.mjtStage.mjSTAGE_VEL.value)

    def step(self, nstep: int) -> np.ndarray:
        bad = [int(w) for w in _DIVERGENCE_WARNINGS]
        before = self.batch.warning[:, bad, 0].sum(axis=1)
        self.batch.step(nstep=nstep, stage=mujoco.mjtStage.mjSTAGE_VEL.value)
        return self.batch.warning[:, bad, 0].sum(axis=1) > before

    def world_data(self, i: int, model: mujoco.MjModel) -> mujoco.MjData:
        d = self.batch.get_data(i)
        mujoco.mj_kinematics(model, d)
        return d

    def world(self, i: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        m = self.batch.get_model(i)
        d = self.batch.get_data(i)
        mujoco.mj_forward(m, d)
        return m, d


PHYSICS = ("batch", "warp")


def make_backend(
    physics: str, model: mujoco.MjModel, nsim: int, nthread: int, device: str | None = None
) -> Backend:
    """The backend named ``physics`` (see :data:`PHYSICS`) for ``nsim`` worlds of ``model``."""
    if physics == "batch":
        return BatchBackend(model, nsim, nthread)
    if physics == "warp":
        from training.envs.warp_backend import WarpBackend

        return WarpBackend(model, nsim, device=device)
    raise ValueError(f"physics must be one of {PHYSICS}, got {physics!r}")


@dataclass
class Randomization:
    """Domain randomization (DexterityGen Table III; the values are ours where the paper's
    table lost them: only the force decay, 0.99 every 0.1 s, survived).

    Attributes:
        kp_scale / kd_scale: PD gains scaled per episode and joint by U(lo, hi).
        force_scale: random object force, N per kg of object (DexNDM: 2 m).
        force_prob: chance per control step that the force is redrawn.
        force_decay / force_decay_s: the force shrinks by this factor every interval.
        joint_noise_step / joint_noise_episode: observed joint angles get white noise
            N(0, step) every step plus an offset U(-episode, episode) per episode, rad.
        action_noise: N(0, this) added to every joint target sent, rad. Small on purpose:
            white target noise shakes objects out of these grasps (targets held at the
            start grasp, all else randomized: mean time to drop 7.9 s of 10 with 0.005 rad,
            7.2 s with 0.01, 4.3 s with 0.02).
        mass_scale / friction: object mass scale and sliding friction, per episode.
        gravity_turn_rad_s: how fast the gravity direction (wrist) drifts, per episode.
        gravity_hold_s: how long gravity drifts toward one direction before a new one.
    """

    enabled: bool = True
    kp_scale: tuple[float, float] = (0.8, 1.2)
    kd_scale: tuple[float, float] = (0.7, 1.3)
    force_scale: float = 2.0
    force_prob: float = 0.25
    force_decay: float = 0.99
    force_decay_s: float = 0.1
    joint_noise_step: float = 0.005
    joint_noise_episode: float = 0.01
    action_noise: float = 0.005
    mass_scale: tuple[float, float] = (0.7, 1.3)
    friction: tuple[float, float] = (0.5, 1.2)
    gravity_turn_rad_s: tuple[float, float] = (0.0, 0.6)
    gravity_hold_s: tuple[float, float] = (1.0, 4.0)

    @classmethod
    def named(cls, name: str) -> Randomization:
        """A named setting (:data:`RANDOMIZATION`): ``on`` (as trained), ``no-force`` (all
        but the random pushes on the object), ``off`` (nominal physics)."""
        if name not in RANDOMIZATION:
            raise ValueError(f"randomization {name!r}: one of {', '.join(RANDOMIZATION)}")
        if name == "off":
            return cls(enabled=False)
        return cls(force_scale=0.0) if name == "no-force" else cls()


#: Style weightings (DexterityGen Appendix C): a penalty on fingertip speed and on effort.
#: One policy is trained for all of them, with the style as an input (one network instead of
#: one per weighting, the same spread of motion in the data at a fraction of the compute).
STYLES: dict[str, tuple[float, float]] = {
    "fast": (0.0, 0.5),
    "steady": (0.5, 1.0),
    "slow": (2.0, 2.0),
}


@dataclass
class EnvConfig:
    """Settings shared by every hand task.

    Attributes:
        num_envs / nthread: worlds and CPU threads stepping them.
        rate_hz: control rate (see the module docstring).
        physics_model: the hand's physics (``assets.physics``: ``servo``, the default, or
            ``menagerie``); ``timestep_s`` overrides its timestep (None: its own).
        episode_s: episode length (timeout).
        history: proprioception steps the policy sees (DexGen uses 4).
        action_mode / residual_scale_rad: see :meth:`HandEnv.action_to_targets`.
        action_scale_rad: a policy action in [-1, 1] moves each joint target this far per
            step (0.1 rad at 20 Hz = 2 rad/s, a third of the safety filter's limit).
        styles: which STYLES worlds draw from (per episode).
        device: torch device of the tensors handed to the learner.
        physics: ``batch`` (``mujoco.batch`` on ``nthread`` CPU threads) or ``warp``
            (MuJoCo Warp on ``physics_device``: a CUDA GPU by default when there is one).
    """

    hand: str = "leap"
    num_envs: int = 64
    nthread: int = 2
    seed: int = 0
    rate_hz: float = 20.0
    physics_model: str | Physics = DEFAULT_PHYSICS
    timestep_s: float | None = None
    episode_s: float = 10.0
    history: int = 4
    action_scale_rad: float = 0.1
    action_mode: str = "reference"
    residual_scale_rad: float = 0.3
    styles: tuple[str, ...] = tuple(STYLES)
    device: str = "cpu"
    physics: str = "batch"
    physics_device: str | None = None
    dr: Randomization = field(default_factory=Randomization)


class HandEnv(abc.ABC):
    """N worlds of a hand task, rsl-rl ``VecEnv`` style (see the module docstring).

    Subclasses build the scene (:meth:`_scene`), reset worlds (:meth:`_reset_task`), add
    their goal to the observations (:meth:`_task_obs`) and compute rewards
    (:meth:`_reward`). Shapes: N = num_envs, n = hand joints, H = history, K = 8 keypoints.
    """

    name: str = ""

    def __init__(self, cfg: EnvConfig) -> None:
        self.cfg = cfg
        self.hand: Hand = load_hand(cfg.hand)
        self.rng = np.random.default_rng(cfg.seed)
        self.num_envs = cfg.num_envs
        self.device = torch.device(cfg.device)
        self.sim_physics = self.hand.physics(cfg.physics_model)
        if cfg.timestep_s is not None:
            self.sim_physics = self.sim_physics.replace(timestep_s=cfg.timestep_s)
        spec = self._scene()
        self.model = spec.compile()
        self.substeps = substeps(cfg.rate_hz, self.model.opt.timestep)
        self.dt = 1.0 / cfg.rate_hz
        self.max_episode_length = round(cfg.episode_s * cfg.rate_hz)
        self.backend: Backend = make_backend(
            cfg.physics, self.model, cfg.num_envs, cfg.nthread, cfg.physics_device
        )
        m = self.model
        n = self.hand.n_joints
        self.n = n
        self.num_actions = n
        jids = [m.joint(HAND_PREFIX + j).id for j in self.hand.joint_names]
        self.qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self.dofadr = np.array([m.jnt_dofadr[j] for j in jids])
        act_of_joint = {int(m.actuator_trnid[a, 0]): a for a in range(m.nu)}
        self.act = np.array([act_of_joint[j] for j in jids])
        sites = [m.site(s).id for s in site_names()]
        self.palm_site, self.kp_sites = sites[0], np.array(sites[1:])
        self.tip_sites = self.kp_sites[1::2]
        d = mujoco.MjData(m)
        mujoco.mj_kinematics(m, d)
        self.palm_pos = d.site_xpos[self.palm_site].copy()
        self.palm_rot = d.site_xmat[self.palm_site].reshape(3, 3).copy()
        if not np.allclose(self.palm_rot, np.eye(3), atol=1e-6):
            raise RuntimeError("training scenes keep the mount palm-down (palm frame = world)")
        self.mount = m.body(MOUNT_BODY).id
        self.lower, self.upper = self.hand.lower, self.hand.upper
        self.max_step = limits.max_step(self.hand.spec.max_joint_speed_rad_s, self.dt)
        self.kp0 = self.model.actuator_gainprm[self.act, 0].copy()
        self.kv0 = -self.model.actuator_biasprm[self.act, 2].copy()

        N, H = self.num_envs, cfg.history
        self.target = np.tile(self.hand.default_open, (N, 1))
        self.hist_q = np.zeros((N, H, n))
        self.hist_target = np.zeros((N, H, n))
        self.hist_kp = np.zeros((N, H, len(ROBOT_KEYPOINT_NAMES), 3))
        self.q_offset = np.zeros((N, n))
        self.q_obs = np.zeros((N, n))
        self.kp_scale = np.ones((N, n))
        self.gravity = np.tile([0.0, 0.0, -1.0], (N, 1))
        self.gravity_goal = self.gravity.copy()
        self.gravity_rate = np.zeros(N)
        self.gravity_left = np.zeros(N)
        self.force = np.zeros((N, 3))
        self.style = np.zeros(N, dtype=int)
        self.style_w = np.array([STYLES[s] for s in cfg.styles])
        self.tips_prev = np.zeros((N, len(FINGERS), 3))
        self.last_action = np.zeros((N, n))
        self.episode_length_buf = torch.zeros(N, dtype=torch.long, device=self.device)
        self.diverged_count = 0
        self._ep_return = np.zeros(N)
        self.goal_age = np.zeros(N)  # seconds since each world's goal was set
        self._gains_gain = self.backend.model_field("actuator_gainprm")
        self._gains_bias = self.backend.model_field("actuator_biasprm")
        self._grav_field = self.backend.model_field("opt.gravity")
        self._init_task()
        self.reset()

    # -- what subclasses provide ---------------------------------------------------------
    @abc.abstractmethod
    def _scene(self) -> mujoco.MjSpec:
        """The task's scene, built with :meth:`scene`."""

    def scene(self, obj: SceneObject | None = None) -> mujoco.MjSpec:
        """The app's scene (``devices.robots.scene``) palm-down, with this env's physics."""
        return build_scene(self.hand, wrist="palm_down", obj=obj, physics=self.sim_physics)

    def _init_task(self) -> None:  # noqa: B027 - optional hook
        """Task buffers (called once the backend exists, before the first reset)."""

    @abc.abstractmethod
    def _reset_task(self, ids: np.ndarray) -> None:
        """Write the start state of worlds ``ids`` (hand, object) and their goals."""

    @abc.abstractmethod
    def _task_obs(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, a) goal features for the actor and (N, c) privileged ones for the critic."""

    @abc.abstractmethod
    def _reward(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(N,) reward, (N,) terminated, and per-world metrics to log."""

    # -- state helpers -------------------------------------------------------------------
    @property
    def q(self) -> np.ndarray:
        """(N, n) true joint positions."""
        return self.backend.state("qpos")[:, self.qadr]

    @property
    def dq(self) -> np.ndarray:
        return self.backend.state("qvel")[:, self.dofadr]

    def keypoints(self) -> np.ndarray:
        """(N, K, 3) the 8 keypoints in the palm frame, m."""
        return (self.backend.state("site_xpos")[:, self.kp_sites] - self.palm_pos) @ self.palm_rot

    def tips(self) -> np.ndarray:
        return self.keypoints()[:, 1::2]

    def torque(self) -> np.ndarray:
        return self.backend.state("actuator_force")[:, self.act]

    def joint_effort(self) -> np.ndarray:
        """(N, n) the torque each joint's actuator applies, N m: the actuator's force after
        the joint's torque limit (``torque`` is before it), as a hand backend reads it
        (``HandState.effort``)."""
        return self.backend.state("qfrc_actuator")[:, self.dofadr]

    # -- episode start ---------------------------------------------------------------------
    def reset(self) -> tuple[TensorDict, dict]:
        self._reset_worlds(np.arange(self.num_envs))
        return self.get_observations(), {}

    def _reset_worlds(self, ids: np.ndarray) -> None:
        if ids.size == 0:
            return
        b, dr, rng = self.backend, self.cfg.dr, self.rng
        k = ids.size
        b.reset(ids)
        # gains
        if dr.enabled:
            s_p = rng.uniform(*dr.kp_scale, (k, self.n))
            s_d = rng.uniform(*dr.kd_scale, (k, self.n))
            self.q_offset[ids] = rng.uniform(-1, 1, (k, self.n)) * dr.joint_noise_episode
        else:
            s_p = np.ones((k, self.n))
            s_d = np.ones((k, self.n))
            self.q_offset[ids] = 0.0
        self.kp_scale[ids] = s_p
        kp, kv = self.kp0 * s_p, self.kv0 * s_d
        g, bias = self._gains_gain, self._gains_bias
        for j, a in enumerate(self.act):
            g[ids, a, 0] = kp[:, j]
            bias[ids, a, 1] = -kp[:, j]
            bias[ids, a, 2] = -kv[:, j]
        # wrist orientation: a random gravity direction that drifts
        self.gravity[ids] = _random_unit(rng, k)
        self._new_gravity_goal(ids)
        self.force[ids] = 0.0
        self.style[ids] = rng.integers(0, len(self.cfg.styles), k)
        self.last_action[ids] = 0.0
        self._ep_return[ids] = 0.0
        self._reset_task(ids)
        self._write_gravity(ids)
        b.forward(ids)
        self.target[ids] = self.backend.state("ctrl")[ids][:, self.act]
        q = self.q[ids]
        self.q_obs[ids] = q + self.q_offset[ids]
        self.hist_q[ids] = self.q_obs[ids][:, None]
        self.hist_target[ids] = self.target[ids][:, None]
        self.hist_kp[ids] = self.keypoints()[ids][:, None]
        self.tips_prev[ids] = self.tips()[ids]
        self.episode_length_buf[torch.as_tensor(ids, device=self.device)] = 0

    def _new_gravity_goal(self, ids: np.ndarray) -> None:
        dr, rng = self.cfg.dr, self.rng
        k = ids.size
        self.gravity_goal[ids] = _random_unit(rng, k)
        lo, hi = dr.gravity_turn_rad_s if dr.enabled else (0.0, 0.0)
        self.gravity_rate[ids] = rng.uniform(lo, hi, k)
        self.gravity_left[ids] = rng.uniform(*dr.gravity_hold_s, k)

    def _write_gravity(self, ids: np.ndarray | slice) -> None:
        self._grav_field[ids] = 9.81 * self.gravity[ids] @ self.palm_rot.T

    def _goals_due(self, reached: np.ndarray, timeout_s: float | None) -> np.ndarray:
        """Age every world's goal by one step; the worlds whose goal is to be replaced:
        reached, or set ``timeout_s`` ago or more (None: never). Tasks zero ``goal_age``
        when they set a goal."""
        self.goal_age += self.dt
        if timeout_s is None:
            return reached.copy()
        return reached | (self.goal_age >= timeout_s - 1e-9)

    def physics(self) -> dict[str, Any]:
        """The simulation these worlds run, as a trained model records it
        (:meth:`assets.physics.Physics.describe`; the values before randomisation)."""
        jids = [self.model.joint(HAND_PREFIX + j).id for j in self.hand.joint_names]
        return self.sim_physics.describe(self.model, jids, substeps=self.substeps)

    # -- the step ----------------------------------------------------------------------------
    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        """Apply (N, n) actions in [-1, 1] (delta joint targets), advance one control step."""
        a = np.clip(np.nan_to_num(actions.detach().cpu().numpy().astype(float)), -1.0, 1.0)
        return self.step_targets(self.action_to_targets(a), actions=a)

    def action_to_targets(self, a: np.ndarray) -> np.ndarray:
        """(N, n) actions in [-1, 1] -> joint targets (before limits and rate limit).

        ``delta``: the last target plus ``action_scale_rad * a``. ``reference``: the task's
        reference targets (:meth:`reference_targets`, e.g. the goal grasp's squeeze) plus
        ``residual_scale_rad * a``, so that a = 0 heads for the goal and the policy learns
        the corrections.
        """
        if self.cfg.action_mode == "reference":
            return self.reference_targets() + a * self.cfg.residual_scale_rad
        return self.target + a * self.cfg.action_scale_rad

    def reference_targets(self) -> np.ndarray:
        """(N, n) the task's reference joint targets (default: hold the current targets)."""
        return self.target

    def step_targets(
        self, targets: np.ndarray, actions: np.ndarray | None = None
    ) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        """Advance one control step with absolute (N, n) joint targets.

        Targets go through the app's safety filter's rule
        (:func:`devices.robots.limits.limit_step`): joint limits and the hand's rate limit per
        control period. Used by :meth:`step` and by operators (and DexGen) that produce joint
        targets directly. Before it, NaN becomes 0 rad (and +-inf the largest float, so the
        limits): the filter would hold the whole target instead, but training results
        depend on this mapping, so the environments keep it.
        """
        dr, rng = self.cfg.dr, self.rng
        prev = self.target
        targets = np.nan_to_num(np.asarray(targets, dtype=float), nan=0.0)
        self.target = limits.limit_step(
            targets, prev, lower=self.lower, upper=self.upper, max_step=self.max_step
        )
        self.last_action = (self.target - prev) if actions is None else actions
        ctrl = self.target
        if dr.enabled and dr.action_noise > 0:
            ctrl = np.clip(
                ctrl + rng.normal(0, dr.action_noise, ctrl.shape), self.lower, self.upper
            )
        self.backend.state("ctrl")[:, self.act] = ctrl
        self._apply_disturbances()
        diverged = self.backend.step(self.substeps)
        self.episode_length_buf += 1

        rew, terminated, metrics = self._reward()
        # a diverged world was reset by MuJoCo mid-step: its episode ends there, as a
        # failure (the data generator drops the steps before it, as before a drop)
        if diverged.any():
            rew = np.where(diverged, np.minimum(rew, 0.0), rew)
            terminated = terminated | diverged
            self.diverged_count += int(diverged.sum())
            log.warning("physics diverged in %d world(s); their episodes end", int(diverged.sum()))
        metrics["diverged"] = diverged.astype(float)
        self._ep_return += rew
        timeout = self.timed_out()
        done = terminated | timeout
        q = self.q
        noise = rng.normal(0, dr.joint_noise_step, q.shape) if dr.enabled else 0.0
        self.q_obs = q + self.q_offset + noise
        self.hist_q = np.roll(self.hist_q, -1, axis=1)
        self.hist_q[:, -1] = self.q_obs
        self.hist_target = np.roll(self.hist_target, -1, axis=1)
        self.hist_target[:, -1] = self.target
        self.hist_kp = np.roll(self.hist_kp, -1, axis=1)
        self.hist_kp[:, -1] = self.keypoints()
        self.tips_prev = self.tips()
        extras: dict[str, Any] = {
            "time_outs": torch.as_tensor(timeout & ~terminated, device=self.device),
            "log": {f"/task/{k}": float(np.mean(v)) for k, v in metrics.items()},
        }
        done_ids = np.flatnonzero(done)
        if done_ids.size:
            extras["log"]["/task/episode_return"] = float(np.mean(self._ep_return[done_ids]))
        self.sent_target = self.target.copy()  # before resets overwrite done worlds' targets
        self.ended_steps = np.where(done, self.episode_length_buf.cpu().numpy(), 0)
        self.last_done = done.copy()
        self.last_terminated = terminated.copy()
        self._reset_worlds(done_ids)
        obs = self.get_observations()
        return (
            obs,
            torch.as_tensor(rew, dtype=torch.float32, device=self.device),
            torch.as_tensor(done, dtype=torch.long, device=self.device),
            extras,
        )

    def timed_out(self) -> np.ndarray:
        """(N,) bool: worlds whose episode reaches its length with this step."""
        return self.episode_length_buf.cpu().numpy() >= self.max_episode_length

    def _apply_disturbances(self) -> None:
        """Gravity drift (the wrist turning) and random forces on the object."""
        dr = self.cfg.dr
        if dr.enabled:
            self.gravity_left -= self.dt
            due = np.flatnonzero(self.gravity_left <= 0)
            if due.size:
                self._new_gravity_goal(due)
            self.gravity = _turn_toward(
                self.gravity, self.gravity_goal, self.gravity_rate * self.dt
            )
            self._write_gravity(slice(None))
        self._disturb_object()

    def _disturb_object(self) -> None:  # noqa: B027 - tasks with an object override
        """Random forces on the object (tasks with an object)."""

    # -- observations ------------------------------------------------------------------------
    def proprioception(self) -> np.ndarray:
        """(N, H * 2n) the actor's history: noisy joint angles and joint targets."""
        return np.concatenate([self.hist_q, self.hist_target], axis=2).reshape(self.num_envs, -1)

    def get_observations(self) -> TensorDict:
        task_a, task_c = self._task_obs()
        style = np.eye(len(self.cfg.styles))[self.style]
        grav = self.gravity  # the wrist orientation, known from the arm
        policy = np.concatenate([self.proprioception(), task_a, grav, style], axis=1)
        critic = np.concatenate(
            [
                policy,
                self.q,
                self.dq * 0.1,
                self.tips().reshape(self.num_envs, -1),
                self.kp_scale,
                task_c,
            ],
            axis=1,
        )
        to = lambda x: torch.as_tensor(x, dtype=torch.float32, device=self.device)  # noqa: E731
        return TensorDict({"policy": to(policy), "critic": to(critic)}, batch_size=[self.num_envs])

    # -- rendering ---------------------------------------------------------------------------
    def world(self, i: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        return self.backend.world(i)


def _turn_toward(v: np.ndarray, goal: np.ndarray, step_rad: np.ndarray) -> np.ndarray:
    """Rotate unit vectors ``v`` (N, 3) toward ``goal`` by ``min(step, angle)`` each, in
    their common plane (exact great-circle steps)."""
    cos = np.clip(np.sum(v * goal, axis=1), -1.0, 1.0)
    ang = np.arccos(cos)
    perp = goal - v * cos[:, None]
    norm = np.linalg.norm(perp, axis=1)
    # opposite vectors: any perpendicular direction will do
    alt = np.cross(v, np.where(np.abs(v[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    perp = np.where(norm[:, None] > 1e-9, perp, alt)
    perp /= np.linalg.norm(perp, axis=1, keepdims=True)
    t = np.minimum(step_rad, ang)[:, None]
    out = v * np.cos(t) + perp * np.sin(t)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)
