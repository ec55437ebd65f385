"""Roll out trained policies to make the DexGen pretraining dataset (DexterityGen Alg. 1).

Every world runs the policy with domain randomization, random objects, wrist orientations
(gravity) and styles; each finished episode becomes a segment of the dataset, except that an
episode ending in a drop loses its last 2 s (the paper's filter: those steps led to the
drop). Segments too short to hold one transition are skipped.
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
) -> dict:
    """Roll ``policy`` out in ``env`` until the dataset at ``out`` holds ``transitions``.

    Args:
        policy: callable(obs TensorDict) -> (N, n) actions in [-1, 1].
        expert: how the actions were made, stored in the manifest (``ppo`` or another label).

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
        with torch.inference_mode():
            actions = policy(obs)
        obs, _, _, _ = env.step(actions)
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
                writer.add({f: buf[f][i, :keep] for f in FIELDS})
                counts["rows_kept"] += keep
                counts["episodes_kept"] += 1
            length[i] = 0
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
