"""Evaluate a hand policy on Anygrasp-to-Anygrasp: time to drop and goals per minute.

One episode per world, all run in parallel: every world starts from a random cached grasp
with randomized physics, gravity and style, and runs until it drops the object or
``episode_s`` passes (then its time to drop is ``episode_s``: censored, as the paper's
evaluation over a fixed time). Worlds that finish early keep stepping but are not counted
again, so short (dropped) episodes are not over-represented.

Operators (DexterityGen Sec. IV-B) built from the expert pi:
- ``noise=a``: the noisy expert, pi(s) + U(-a, a) per joint and step, in the policy's action
  units (with the default ``reference`` action mode, a unit of action is a joint-target
  residual of ``residual_scale_rad`` = 0.3 rad; in ``delta`` mode ``action_scale_rad``);
- ``slow=a``: the slow expert: each step the joint targets move only U(0, a) of the way from
  where they are to where pi sends them (the paper's U(0, a) pi(s) for delta actions; here
  in target space, so it slows the hand in either action mode);
- ``hold=True``: no policy, the targets stay at the starting grasp (the do-nothing floor).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

#: The demo instances the shipped policy was trained on (the shipped grasp caches).
DEMO_OBJECTS = {"per_family": 2, "grasps_base": 30, "grasps_rrt": 300}


def make_eval_env(
    hand: str, episodes: int, seed: int, episode_s: float, nthread: int = 2, **over: Any
):
    from training.envs import make_env

    kw = {**DEMO_OBJECTS, **over}
    return make_env(
        "anygrasp",
        hand=hand,
        num_envs=episodes,
        nthread=nthread,
        seed=seed,
        episode_s=episode_s,
        **kw,
    )


def evaluate(
    env: Any,
    policy: Any,
    *,
    noise: float = 0.0,
    slow: float | None = None,
    hold: bool = False,
    seed: int = 0,
    video: str | Path | None = None,
    targets_fn: Any = None,
    on_step: Any = None,
) -> dict:
    """Run one episode in every world of ``env`` and summarise.

    Args:
        policy: callable(obs) -> (N, n) actions.
        targets_fn: optional callable(env, targets (N, n)) -> (N, n) joint targets: an
            assistant between the operator and the hand (DexGen sits here).
        video: render world 0's episode to this .mp4.
        on_step: optional callable(env, counted (N,) bool) after every step, ``counted``
            the worlds whose episode the step belongs to (a task's own measures).

    Returns:
        ``{episodes, time_to_drop_s_mean, goals_per_min, episode_s, drops, goals}``.
    """
    rng = np.random.default_rng(seed)
    N = env.num_envs
    steps = env.max_episode_length
    env.reset()
    obs = env.get_observations()
    g0 = env.gravity.copy()  # the starting wrist orientation of each episode
    active = np.ones(N, bool)
    drop_t = np.full(N, np.nan)
    goals = np.zeros(N, int)
    alive_steps = np.zeros(N, int)
    frames = []
    renderer = _Renderer(env) if video else None
    for t in range(steps):
        if hold:
            target = env.target.copy()
        else:
            with torch.inference_mode():
                a = policy(obs).detach().cpu().numpy().astype(float)
            a = np.clip(a, -1.0, 1.0)
            if noise > 0:
                a = np.clip(a + rng.uniform(-noise, noise, a.shape), -1.0, 1.0)
            target = env.action_to_targets(a)
            if slow is not None:
                target = env.target + rng.uniform(0.0, slow, a.shape) * (target - env.target)
            if targets_fn is not None:
                target = targets_fn(env, target)
        obs, _, _, _ = env.step_targets(target)
        reached = env.last_reached
        goals[active] += reached[active]
        alive_steps[active] += 1
        if on_step is not None:
            on_step(env, active.copy())
        dropped = env.last_terminated & active
        drop_t[dropped] = (t + 1) * env.dt
        active &= ~env.last_done
        if renderer is not None and active[0]:
            frames.append(renderer.frame())
        if not active.any():
            break
    ttd = np.where(np.isnan(drop_t), steps * env.dt, drop_t)
    minutes = alive_steps.sum() * env.dt / 60.0
    out = {
        "episodes": int(N),
        "time_to_drop_s_mean": float(ttd.mean()),
        "goals_per_min": float(goals.sum() / max(minutes, 1e-9)),
        "episode_s": float(steps * env.dt),
        "drops": int(np.isfinite(drop_t).sum()),
        "goals": int(goals.sum()),
        "noise": float(noise),
        "slow": slow,
        "hold": hold,
        "by_wrist": {},
    }
    # palm frame: the palm faces -z; gravity along -z pulls the object out of the hand
    kind = np.where(g0[:, 2] > 0.5, "palm_up", np.where(g0[:, 2] < -0.5, "palm_down", "sideways"))
    for k in ("palm_up", "sideways", "palm_down"):
        sel = kind == k
        if sel.any():
            out["by_wrist"][k] = {
                "episodes": int(sel.sum()),
                "time_to_drop_s_mean": float(ttd[sel].mean()),
                "goals_per_min": float(
                    goals[sel].sum() / max(alive_steps[sel].sum() * env.dt / 60, 1e-9)
                ),
            }
    if renderer is not None and frames:
        import imageio.v2 as imageio

        Path(video).parent.mkdir(parents=True, exist_ok=True)
        imageio.mimwrite(str(video), frames, fps=round(1 / env.dt), macro_block_size=1)
        out["video"] = str(video)
    return out


class _Renderer:
    """World 0 from the front camera, with an arrow along gravity (the wrist's "down")."""

    def __init__(self, env: Any, width: int = 480, height: int = 360) -> None:
        import mujoco

        self.env, self.mj = env, mujoco
        self.m, _ = env.world(0)  # world 0 keeps its object for its first episode
        self.m.vis.headlight.ambient[:] = 0.35  # lit from the camera: the scene's light is above
        self.m.vis.headlight.diffuse[:] = 0.6
        self.r = mujoco.Renderer(self.m, height, width)
        # from below and to the side: the palm faces down, objects hang under it
        self.cam = mujoco.MjvCamera()
        self.cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.cam.lookat[:] = env.palm_pos + np.array([0.07, 0.0, -0.04])
        self.cam.distance, self.cam.azimuth, self.cam.elevation = 0.32, 215.0, 12.0
        self.opt = mujoco.MjvOption()
        self.opt.geomgroup[env.hand.spec.collision_group] = 1
        if env.hand.spec.heavy_visuals:
            self.opt.geomgroup[env.hand.spec.visual_group] = 0

    def frame(self, extra: Any = None) -> np.ndarray:
        """World 0 now; ``extra(scene)`` may add geoms (markers) before rendering."""
        mj = self.mj
        d = self.env.backend.world_data(0, self.m)
        self.r.update_scene(d, camera=self.cam, scene_option=self.opt)
        sc = self.r.scene
        if sc.ngeom < sc.maxgeom:
            start = self.env.palm_pos + np.array([0.02, -0.07, -0.09])
            end = start + 0.05 * self.env.gravity[0] @ self.env.palm_rot.T
            mj.mjv_initGeom(
                sc.geoms[sc.ngeom],
                mj.mjtGeom.mjGEOM_ARROW,
                np.zeros(3),
                np.zeros(3),
                np.zeros(9),
                np.array([0.2, 0.4, 1.0, 1.0], np.float32),
            )
            mj.mjv_connector(sc.geoms[sc.ngeom], mj.mjtGeom.mjGEOM_ARROW, 0.004, start, end)
            sc.ngeom += 1
        if extra is not None:
            extra(sc)
        return self.r.render().copy()
