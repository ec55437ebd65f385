"""Chaos-box data collection (DexNDM Sec. 3.3): dynamics data under random contact, no resets.

The hand sits in a box of soft balls (in simulation ``SimHandConfig.chaos_box``; on hardware
the operator's box) and replays, open loop, the joint-target sequences of the rotation
generalist's simulated rollouts (a coarse prior on the states the policy will visit). Each
trajectory draws one rollout; with probability ``noise_prob`` (0.5) every step of the
replay gets Gaussian noise of ``noise_std`` (0.01 rad) on its target step, widening what
the data covers. The balls' contacts change every time, the replays never need a reset,
and every target goes through the hand's safety filter (limits and rate limit) like any
other: a trajectory starts from wherever the last one left the hand, and the filter walks
the hand to its first target.

Rows are written in the dataset format (:mod:`training.datagen.dataset`): ``q`` measured
at the step, ``target`` the filtered target sent at the step, keypoints, gravity (the
wrist), no object (NaN) and mode :data:`~training.datagen.dataset.NO_MODE`, and ``effort``
(the actuators' torques) where the hand measures them; one segment per trajectory. The
manifest records the hand backend and its settings (a real hand's or the stand-in's), the
source rollouts, the noise, and for each trajectory whether it was noisy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controllers.dexndm.controller import gravity_in_palm
from training.datagen.dataset import NO_MODE, DatasetWriter, iter_segments

log = logging.getLogger(__name__)

#: DexNDM's replay noise: probability of a noisy trajectory and its per-step std (rad).
NOISE_PROB = 0.5
NOISE_STD_RAD = 0.01
#: Trajectories per chunk written (a resumed collection restarts after the last chunk).
FLUSH_EVERY = 10


@dataclass
class ChaosBoxConfig:
    """A collection run.

    Attributes:
        trajectories: how many to collect. steps: control steps per trajectory (the source
        rollout's own length when longer; shorter rollouts end early). noise_prob /
        noise_std_rad: the replay noise. settle_s: holding still at the start while the
        balls settle. seed: the draws (rollouts, noise).
    """

    trajectories: int = 100
    steps: int = 400
    noise_prob: float = NOISE_PROB
    noise_std_rad: float = NOISE_STD_RAD
    settle_s: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.trajectories < 1 or self.steps < 2:
            raise ValueError("need at least one trajectory of at least 2 steps")
        if not (0.0 <= self.noise_prob <= 1.0) or not (self.noise_std_rad >= 0.0):
            raise ValueError("noise_prob must be in [0, 1] and noise_std_rad >= 0")


def source_sequences(root: str | Path, min_steps: int = 20) -> list[np.ndarray]:
    """The joint-target sequences of a rollout dataset's segments (``data generate``)."""
    seqs = [seg["target"].astype(float) for seg in iter_segments(root, ("target",))]
    seqs = [s for s in seqs if len(s) >= min_steps]
    if not seqs:
        raise ValueError(f"{root}: no rollout of at least {min_steps} steps to replay")
    return seqs


def collect(
    robot: Any,
    sequences: list[np.ndarray],
    out: str | Path,
    cfg: ChaosBoxConfig,
    *,
    meta: dict | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Replay ``sequences`` on ``robot`` (connected) into a dataset at ``out``; returns the
    counts. Appends to a dataset already there (a resumed collection)."""
    n = len(robot.hand.joint_names)
    if any(s.ndim != 2 or s.shape[1] != n for s in sequences):
        raise ValueError(f"source sequences must be (T, {n}) joint targets")
    rng = np.random.default_rng([cfg.seed, 9103])
    writer = DatasetWriter(out, meta={"task": "chaos_box", **(meta or {})})
    done = int(writer.manifest.get("trajectories_done", 0))
    noisy_flags: list[bool] = list(writer.manifest.get("noisy", []))
    # the same draws whether or not this run resumes: skip those already collected
    for _ in range(done):
        rng.integers(len(sequences))
        rng.random()
    dt = 1.0 / robot.rate_hz
    state = robot.read()
    for _ in range(round(cfg.settle_s / dt)):
        robot.send(state.target)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.trajectories, initial=done, desc="chaos box", unit="traj")
    t0 = time.perf_counter()
    events: dict[str, int] = {}
    for _ in range(done, cfg.trajectories):
        seq = sequences[int(rng.integers(len(sequences)))]
        noisy = bool(rng.random() < cfg.noise_prob)
        steps = min(cfg.steps, len(seq))
        noise = rng.normal(0.0, cfg.noise_std_rad, (steps, n)) if noisy else np.zeros((steps, n))
        rows: dict[str, list] = {k: [] for k in ("q", "target", "keypoints", "gravity")}
        efforts: list = []  # the actuators' torques, where the hand measures them
        command = seq[0].copy()
        for t in range(steps):
            if t > 0:
                command = robot.hand.clip(command + (seq[t] - seq[t - 1]) + noise[t])
            state = robot.read()
            sent, evs = robot.send(command)
            for e in evs:
                events[e] = events.get(e, 0) + 1
            rows["q"].append(state.q)
            rows["target"].append(sent)
            rows["keypoints"].append(state.keypoints)
            rows["gravity"].append(gravity_in_palm(state.wrist))
            efforts.append(state.effort)
        k = len(rows["q"])
        if all(e is not None for e in efforts):
            rows["effort"] = efforts
        writer.add(
            {
                **{f: np.asarray(v) for f, v in rows.items()},
                "object": np.full((k, 7), np.nan),
                "style": np.zeros(k, np.int8),
                "mode": np.full(k, NO_MODE, np.int8),
            }
        )
        noisy_flags.append(noisy)
        done += 1
        if done % FLUSH_EVERY == 0:  # a cut-off loses at most the trajectories since
            writer.flush()
            writer.write_manifest(trajectories_done=done, noisy=noisy_flags)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    counts = {
        "trajectories": done,
        "rows": writer.rows,
        "noisy": int(sum(noisy_flags)),
        "seconds": round(time.perf_counter() - t0, 1),
        "filter_events": events,
        "limit_violations": int(robot.limit_violations),
    }
    writer.close(trajectories_done=done, noisy=noisy_flags, counts=counts)
    return counts
