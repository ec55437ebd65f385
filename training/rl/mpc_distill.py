"""Rotation specialists from the sampling-MPC expert: DAgger into a PPO-shaped actor
(``dexteleop train rotate-mpc``).

The expert (:class:`training.rl.mpc.RotationMPC`) plans from the exact simulator state and
is far too slow to run in the app (it steps ``samples x horizon`` worlds per control step).
A specialist is distilled from it with DAgger (Ross et al. 2011): in round 0 the expert
drives; in later rounds each world is driven by the student with probability
``1 - beta`` (beta halving per round), and every visited state is labelled with the
expert's action, so that the student learns to recover from its own mistakes. Actions are
``delta`` targets scaled by the hand's rate limit per step (the expert's own change of
target, in [-1, 1]); observations are the rotate task's oracle actor observations.

The student is rsl-rl's actor, built exactly as :func:`training.rl.ppo.train` builds it,
and is written as both files of a PPO run: ``policy.pt`` (what ``bench/rotation_eval.py``,
the generalist's distillation and data generation read) and ``checkpoint.pt`` (a PPO
training state at iteration 0), so that ``dexteleop train rl --task rotate --out DIR``
continues with PPO from the distilled actor (demonstration-initialised PPO, as in DAPG,
Rajeswaran et al. 2018). Runs resume: the labelled data (``data.npz``) and the student are
saved after every round.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assets.atomic import atomic_path, write_atomic
from training.rl.mpc import MPCSettings, RotationMPC

log = logging.getLogger(__name__)


@dataclass
class DaggerSettings:
    """DAgger (see the module docstring).

    Attributes:
        worlds: episodes run in parallel (each plans in ``mpc.samples + 1`` worlds).
        rounds: rounds of collection and training.
        steps: control steps collected per round (episodes run on across rounds).
        beta0 / beta_decay: the expert drives each world with probability
            ``beta0 * beta_decay ** round`` (round 0: always).
        epochs / batch / lr: behaviour cloning per round, on all data so far (MSE).
        init_std: the actor's exploration noise if PPO continues from it.
    """

    worlds: int = 8
    rounds: int = 8
    steps: int = 100
    beta0: float = 1.0
    beta_decay: float = 0.5
    epochs: int = 30
    batch: int = 512
    lr: float = 1e-3
    init_std: float = 0.2
    seed: int = 0
    mpc: MPCSettings = field(default_factory=MPCSettings)


def student_env_overrides(env_overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The rotate settings a distilled student runs with: oracle observations and delta
    actions at the hand's rate limit per step (what the expert's targets need)."""
    over = dict(env_overrides or {})
    over.update(action_mode="delta", oracle=True)
    return over


def train_dagger(
    *,
    hand: str = "leap",
    out: str | Path,
    env_overrides: dict[str, Any] | None = None,
    settings: DaggerSettings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) DAgger into ``out``; returns the report (also ``out/report.json``)."""
    from rsl_rl.algorithms import PPO
    from tensordict import TensorDict

    from training.envs import make_env
    from training.rl.ppo import (
        PPOSettings,
        _save,
        export_policy,
        load_training_state,
        policy_meta,
        rsl_config,
        zero_action_head,
    )

    s = settings or DaggerSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    over = student_env_overrides(env_overrides)
    env = make_env("rotate", hand=hand, num_envs=s.worlds, seed=s.seed, **over)
    env.cfg.action_scale_rad = float(env.max_step)
    mpc = RotationMPC(env, s.mpc)
    ppo = PPOSettings(init_std=s.init_std)
    cfg = rsl_config(ppo)
    obs = env.get_observations()
    alg = PPO.construct_algorithm(obs, env, copy.deepcopy(cfg), "cpu")
    actor = alg.get_policy()
    meta = policy_meta("rotate", "dagger", hand, s.seed, "cpu", env, ppo)
    meta["expert"] = {"kind": "sampling-mpc", "dagger": asdict(s)}
    ckpt_path, data_path, report_path = out / "checkpoint.pt", out / "data.npz", out / "report.json"
    report: dict[str, Any] = {"settings": asdict(s), "rounds": []}
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    if ckpt_path.exists() and data_path.exists() and report_path.exists():
        alg.load(load_training_state(ckpt_path)["alg"], None, True)
        with np.load(data_path) as d:
            xs, ys = [d["obs"]], [d["act"]]
        report = json.loads(report_path.read_text())
        log.info("resumed %s at round %d", out, len(report["rounds"]))
    else:
        zero_action_head(actor)
    write_atomic(out / "config.json", json.dumps(meta, indent=2))
    rng = np.random.default_rng(s.seed + len(report["rounds"]))
    torch.manual_seed(s.seed + len(report["rounds"]))
    opt = torch.optim.Adam(actor.parameters(), lr=s.lr)
    scale = float(env.max_step)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=s.rounds, initial=len(report["rounds"]), desc="DAgger rotate", unit="round"
        )
    try:
        for r in range(len(report["rounds"]), s.rounds):
            t0 = time.perf_counter()
            beta = s.beta0 * s.beta_decay**r
            rot, steps_in_hand, drops, expert_steps = 0.0, 0, 0, 0
            obs_r, act_r = [], []
            obs = env.get_observations()
            for _ in range(s.steps):
                expert_t = mpc.plan()
                label = np.clip((expert_t - env.target) / scale, -1.0, 1.0)
                with torch.inference_mode():
                    a_student = actor(obs).numpy().astype(float)
                student_t = env.action_to_targets(np.clip(a_student, -1.0, 1.0))
                by_expert = rng.uniform(size=env.num_envs) < beta
                expert_steps += int(by_expert.sum())
                obs_r.append(obs["policy"].numpy().copy())
                act_r.append(label)
                targets = np.where(by_expert[:, None], expert_t, student_t)
                obs, _, _, _ = env.step_targets(targets)
                rot += float(np.sum(env.last_omega * env.last_axis) * env.dt)
                steps_in_hand += env.num_envs
                drops += int(env.last_terminated.sum())
            t1 = time.perf_counter()
            xs.append(np.concatenate(obs_r).astype(np.float32))
            ys.append(np.concatenate(act_r).astype(np.float32))
            X, Y = torch.as_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(ys))
            loss = _fit(actor, opt, X, Y, torch.as_tensor(xs[-1]), s, TensorDict)
            t2 = time.perf_counter()
            row = {
                "round": r + 1,
                "beta": beta,
                "samples": len(X),
                "expert_share": expert_steps / (s.steps * env.num_envs),
                "rot_rad_per_s": rot / (steps_in_hand * env.dt),
                "drops_per_100_steps": 100.0 * drops / steps_in_hand,
                "bc_loss": loss,
                "collect_s": round(t1 - t0, 1),
                "fit_s": round(t2 - t1, 1),
            }
            report["rounds"].append(row)
            log.info("round %s", row)
            with atomic_path(data_path) as tmp, open(tmp, "wb") as f:
                np.savez(f, obs=X.numpy(), act=Y.numpy())
            _save(ckpt_path, alg, 0, [], 0, 0.0, cfg, meta)
            export_policy(alg, cfg, meta, out / "policy.pt")
            write_atomic(report_path, json.dumps(report, indent=2))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(rot=f"{row['rot_rad_per_s']:.2f}", loss=f"{loss:.4f}")
    finally:
        if bar is not None:
            bar.close()
    return report


def _fit(
    actor: Any,
    opt: Any,
    X: torch.Tensor,
    Y: torch.Tensor,
    new: torch.Tensor,
    s: DaggerSettings,
    td: Any,
) -> float:
    """Behaviour cloning on all labelled data: the observation normaliser's running
    statistics take in the round's ``new`` observations, then ``epochs`` of MSE on the
    actor's mean. Returns the last epoch's mean loss."""
    actor.train()
    with torch.no_grad():
        actor.update_normalization(td({"policy": new}, batch_size=[len(new)]))
    last = float("nan")
    for _ in range(s.epochs):
        perm = torch.randperm(len(X))
        total, n = 0.0, 0
        for i in range(0, len(X), s.batch):
            idx = perm[i : i + s.batch]
            pred = actor(td({"policy": X[idx]}, batch_size=[len(idx)]))
            loss = torch.mean((pred - Y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        last = total / max(n, 1)
    actor.eval()
    return last
