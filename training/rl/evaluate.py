"""Evaluate a hand policy on Anygrasp-to-Anygrasp: time to drop and goals per minute.

One episode per world, all run in parallel: every world starts from a random cached grasp
with randomized physics, gravity and style, and runs until it drops the object or
``episode_s`` passes (then its time to drop is ``episode_s``: censored, as the paper's
evaluation over a fixed time). Worlds that finish early keep stepping but are not counted
again, so short (dropped) episodes are not over-represented.

Operators (DexterityGen Sec. IV-B), in the policy's action units (a in [-1, 1] moves a
joint target by ``action_scale_rad``):
- ``noise=a``: the noisy expert, pi(s) + U(-a, a) per joint and step;
- ``slow=a``: the slow expert, U(0, a) * pi(s).
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
    seed: int = 0,
    video: str | Path | None = None,
    targets_fn: Any = None,
) -> dict:
    """Run one episode in every world of ``env`` and summarise.

    Args:
        policy: callable(obs) -> (N, n) actions.
        targets_fn: optional callable(env, actions (N, n) numpy) -> (N, n) joint targets,
            applied instead of the policy's own (an assistant such as DexGen sits here).
        video: render world 0's episode to this .mp4.

    Returns:
        ``{episodes, time_to_drop_s_mean, goals_per_min, episode_s, drops, goals}``.
    """
    rng = np.random.default_rng(seed)
    N = env.num_envs
    steps = env.max_episode_length
    env.reset()
    obs = env.get_observations()
    active = np.ones(N, bool)
    drop_t = np.full(N, np.nan)
    goals = np.zeros(N, int)
    alive_steps = np.zeros(N, int)
    frames = []
    renderer = _Renderer(env) if video else None
    for t in range(steps):
        with torch.inference_mode():
            a = policy(obs).detach().cpu().numpy().astype(float)
        a = np.clip(a, -1.0, 1.0)
        if slow is not None:
            a = a * rng.uniform(0.0, slow, a.shape)
        if noise > 0:
            a = a + rng.uniform(-noise, noise, a.shape)
        if targets_fn is not None:
            obs, _, _, _ = env.step_targets(targets_fn(env, a))
        else:
            obs, _, _, _ = env.step(torch.as_tensor(a, dtype=torch.float32))
        reached = env.last_reached
        goals[active] += reached[active]
        alive_steps[active] += 1
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
        self.r = mujoco.Renderer(self.m, height, width)
        self.opt = mujoco.MjvOption()
        self.opt.geomgroup[env.hand.spec.collision_group] = 1
        if env.hand.spec.heavy_visuals:
            self.opt.geomgroup[env.hand.spec.visual_group] = 0

    def frame(self) -> np.ndarray:
        mj = self.mj
        d = self.env.backend.world_data(0, self.m)
        self.r.update_scene(d, camera="front", scene_option=self.opt)
        sc = self.r.scene
        if sc.ngeom < sc.maxgeom:
            start = self.env.palm_pos + np.array([0.04, -0.09, 0.0])
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
        return self.r.render().copy()
