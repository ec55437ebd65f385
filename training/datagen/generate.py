"""Roll out trained policies to make the DexGen pretraining dataset (DexterityGen Alg. 1).

Every world runs the policy with domain randomization, random objects, wrist orientations
(gravity) and styles; each finished episode becomes a segment of the dataset, except that an
episode ending in a drop loses its last 2 s (the paper's filter: those steps led to the
drop). Segments too short to hold one transition are skipped.

Exploration (``explore_rad``): a policy that has learned to hold moves little, and a prior
trained on its rollouts only learns to hold (our first LEAP dataset: median keypoint motion
0.4 mm per 0.1 s). So the rollouts can carry smooth random offsets on the joint targets,
an Ornstein-Uhlenbeck process per joint with time constant ``explore_tau_s`` and a
stationary spread drawn per episode from U(0, ``explore_rad``) (some episodes calm, some
lively). The policy keeps reacting to the state it perturbed, and the drop filter removes
the 2 s before every drop, so what is kept is motion that did not lose the object: the
data shows the prior which motions are safe, not only the expert's few.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.datagen.dataset import FIELDS, MODES, DatasetWriter

log = logging.getLogger(__name__)

#: Steps dropped before a drop: 2 s at 20 Hz.
DISCARD_S = 2.0


def generate(
    env: Any,
    policy: Any,
    out: str | Path,
    *,
    transitions: int,
    history: int = 4,
    future: int = 2,
    expert: str = "ppo",
    meta: dict | None = None,
    progress: bool = True,
    max_seconds: float | None = None,
    explore_rad: float = 0.0,
    explore_tau_s: float = 0.5,
) -> dict:
    """Roll ``policy`` out in ``env`` until the dataset at ``out`` holds ``transitions``.

    Args:
        policy: callable(obs TensorDict) -> (N, n) actions in [-1, 1].
        expert: how the actions were made, stored in the manifest (``ppo`` or another label).
        explore_rad / explore_tau_s: smooth target offsets (see the module docstring);
            0 rolls the policy out as it is.

    Returns:
        The manifest's counts.
    """
    N, n = env.num_envs, env.n
    max_len = env.max_episode_length + 1
    buf = {
        "q": np.zeros((N, max_len, n), np.float32),
        "target": np.zeros((N, max_len, n), np.float32),
        "keypoints": np.zeros((N, max_len, 8, 3), np.float32),
        "object": np.zeros((N, max_len, 7), np.float32),
        "gravity": np.zeros((N, max_len, 3), np.float32),
        "style": np.zeros((N, max_len), np.int8),
        "mode": np.zeros((N, max_len), np.int8),
    }
    # rotation data carries each step's commanded axis (the generalist's input)
    # and the actuators' torques (DexNDM's dynamics models may learn them)
    fields = FIELDS + (("axis", "effort") if hasattr(env, "axis") else ())
    if "axis" in fields:
        buf["axis"] = np.zeros((N, max_len, 3), np.float32)
        buf["effort"] = np.zeros((N, max_len, n), np.float32)
    length = np.zeros(N, dtype=int)
    mode = MODES[env.name]
    from training.envs.base import STYLES

    style_ids = np.array([list(STYLES).index(s) for s in env.cfg.styles], dtype=np.int8)
    discard = round(DISCARD_S / env.dt)
    writer = DatasetWriter(
        out,
        meta={
            "task": env.name,
            "hand": env.cfg.hand,
            "expert": expert,
            "rate_hz": env.cfg.rate_hz,
            "discard_before_drop_s": DISCARD_S,
            "history": history,
            "future": future,
            "explore_rad": explore_rad,
            "explore_tau_s": explore_tau_s,
            "physics": env.physics(),  # recorded by the models trained on the data
            **(meta or {}),
        },
    )
    counts = writer.manifest.setdefault(
        "counts", {"episodes": 0, "drops": 0, "rows_kept": 0, "rows_discarded": 0, "seconds": 0.0}
    )
    per_seg = history + future + 1  # shortest useful segment
    # resuming: count what the finished chunks hold (segments buffered at a crash are lost)
    counts["rows_kept"] = int(writer.manifest["rows"])
    counts["episodes_kept"] = int(writer.manifest["segments"])

    def transitions_now() -> int:
        # a segment of L rows holds L - history - future transitions
        return counts["rows_kept"] - counts["episodes_kept"] * (history + future)

    explorer = Explorer(env, explore_rad, explore_tau_s, seed=env.cfg.seed)
    obs = env.get_observations()
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=transitions, initial=min(transitions_now(), transitions), desc="data", unit="tr"
        )
    while transitions_now() < transitions:
        w = np.arange(N)
        li = length
        buf["q"][w, li] = env.q
        buf["keypoints"][w, li] = env.keypoints()
        if hasattr(env, "obj_pose"):
            pos, quat = env.obj_pose()
            buf["object"][w, li, :3] = pos
            buf["object"][w, li, 3:] = quat
        buf["gravity"][w, li] = env.gravity
        buf["style"][w, li] = style_ids[env.style]
        buf["mode"][w, li] = mode
        if "axis" in buf:
            buf["axis"][w, li] = env.axis
            buf["effort"][w, li] = env.joint_effort()
        with torch.inference_mode():
            actions = policy(obs)
        obs = explorer.step(actions)
        buf["target"][w, li] = env.sent_target
        length += 1
        for i in np.flatnonzero(env.last_done):
            L = int(length[i])
            counts["episodes"] += 1
            if env.last_terminated[i]:
                counts["drops"] += 1
                keep = max(L - discard, 0)
            else:
                keep = L
            counts["rows_discarded"] += L - keep
            if keep >= per_seg:
                writer.add({f: buf[f][i, :keep] for f in fields})
                counts["rows_kept"] += keep
                counts["episodes_kept"] += 1
            length[i] = 0
        explorer.restart(env.last_done)
        if bar is not None:
            bar.n = min(transitions_now(), transitions)
            bar.refresh()
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            log.info("data generation stopped after %.0f s (max_seconds)", max_seconds)
            break
    counts["seconds"] = round(counts["seconds"] + time.perf_counter() - t0, 1)
    counts["transitions"] = transitions_now()
    writer.close(counts=counts)
    if bar is not None:
        bar.close()
    return counts


class Explorer:
    """Smooth random joint-target offsets on top of a policy (see the module docstring).

    ``step`` turns the policy's actions into targets the way the env does and adds the
    offset; in the ``delta`` action mode, where the env integrates targets, only the
    offset's change is added so the offset stays bounded. With ``scale_rad`` 0 it is the
    env's own ``step``.
    """

    def __init__(self, env: Any, scale_rad: float, tau_s: float, seed: int = 0) -> None:
        if scale_rad < 0 or tau_s <= 0:
            raise ValueError("explore_rad must be >= 0 and explore_tau_s > 0")
        self.env, self.max_scale, self.tau = env, scale_rad, tau_s
        self.rng = np.random.default_rng(seed + 7919)
        N, n = env.num_envs, env.n
        self.offset = np.zeros((N, n))
        self.scale = np.zeros(N)
        self.restart(np.ones(N, bool))

    def restart(self, ids: np.ndarray) -> None:
        """New episodes (boolean mask): a fresh spread, the offset back to 0."""
        k = int(np.sum(ids))
        if k:
            self.scale[ids] = self.rng.uniform(0.0, self.max_scale, k)
            self.offset[ids] = 0.0

    def step(self, actions: torch.Tensor) -> Any:
        env = self.env
        if self.max_scale == 0:
            return env.step(actions)[0]
        a = np.clip(np.nan_to_num(actions.detach().cpu().numpy().astype(float)), -1.0, 1.0)
        dt = env.dt
        prev = self.offset
        noise = self.rng.normal(size=prev.shape)
        self.offset = (
            prev
            - prev * (dt / self.tau)
            + self.scale[:, None] * np.sqrt(2.0 * dt / self.tau) * noise
        )
        targets = env.action_to_targets(a) + self.offset
        if env.cfg.action_mode == "delta":
            targets -= prev
        return env.step_targets(targets, actions=a)[0]
