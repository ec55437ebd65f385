"""PPO on the hand environments with rsl-rl (the library Isaac Lab uses).

The algorithm, storage and networks are rsl-rl's (``rsl_rl.algorithms.PPO``, ``MLPModel``);
this module supplies the asymmetric actor-critic wiring (actor: ``policy`` observations;
critic: ``critic`` observations with privileged state), scale presets, the loop with a
progress bar, TensorBoard curves of the task's own measures (goals reached per minute, hold
rate), and checkpoints that resume.

Scales (DESIGN: same code at three sizes):
- ``smoke``: 8 worlds, a few iterations (tests, seconds).
- ``demo``: this 2-core machine, about an hour in the background.
- ``full``: a GPU backend with thousands of worlds (the paper: 8192 envs, batch 8192).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assets import checkpoint
from assets.checkpoint import CheckpointError
from assets.physics import BASELINE_PHYSICS
from training.rl import SCALES

log = logging.getLogger(__name__)

#: The exported actor (``policy.pt``) and the resumable training state (``checkpoint.pt``).
POLICY_FORMAT = "dexteleop-rl-policy/1"
STATE_FORMAT = "dexteleop-rl-train/1"


@dataclass
class PPOSettings:
    """Learner settings (DexterityGen Appendix D gives lr 5e-4, clip 0.2, gamma 0.99,
    GAE 0.95, hidden [1024, 512, 512, 256, 256]; the demo scale uses smaller networks)."""

    iterations: int = 3
    steps_per_env: int = 16
    hidden: tuple[int, ...] = (256, 128, 128)
    critic_hidden: tuple[int, ...] = (256, 128, 128)
    learning_rate: float = 5e-4
    clip: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    epochs: int = 5
    minibatches: int = 4
    entropy: float = 0.0
    init_std: float = 0.03
    desired_kl: float = 0.01
    save_every: int = 20
    max_minutes: float | None = None
    #: with ``init``: after each policy update the actor's network moves this fraction of
    #: the way back to the weights it started from (an L2 pull toward the starting policy,
    #: which bounds how far fine-tuning drifts from it); 0: no pull
    anchor: float = 0.0
    #: every this many iterations the actor is also exported as ``snapshots/policy_itN.pt``
    #: (and ``generalist_itN.pt``), to evaluate and stop at; 0: none
    snapshot_every: int = 0


def uses_grasp_caches(task: str) -> bool:
    """Whether ``task`` starts from cached grasps (its config has the grasp settings)."""
    import dataclasses

    from training.envs import task_classes

    return "grasps_base" in {f.name for f in dataclasses.fields(task_classes(task)[1])}


def scale_preset(scale: str, task: str) -> tuple[dict[str, Any], PPOSettings]:
    """Environment overrides and learner settings of a scale."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    grasp = uses_grasp_caches(task)
    if scale == "smoke":
        env = {"num_envs": 8, "nthread": 1}
        if grasp:
            env.update(families=("cube",), grasps_base=3, grasps_rrt=20)
        return env, PPOSettings(
            iterations=2, steps_per_env=8, hidden=(64, 64), critic_hidden=(64, 64)
        )
    # holding tasks explore gently (a jittering hand drops the object); rotation has to find
    # a finger gait, which 0.03 of the action range does not reach
    init_std = 0.5 if task == "rotate" else PPOSettings.init_std
    if scale == "demo":
        env = {"num_envs": 96, "nthread": 2}
        if grasp:  # the shipped caches: 6 families x 2 scales, 30 + 300 grasps each
            env.update(per_family=2, grasps_base=30, grasps_rrt=300)
        return env, PPOSettings(
            iterations=2000, steps_per_env=24, max_minutes=60.0, init_std=init_std
        )
    env = {"num_envs": 4096, "nthread": os.cpu_count() or 1}
    if grasp:  # the shipped caches; more objects: `python -m training.grasps` first
        env.update(per_family=2, grasps_base=30, grasps_rrt=300)
    return env, PPOSettings(
        iterations=5000,
        steps_per_env=24,
        hidden=(1024, 512, 512, 256, 256),
        critic_hidden=(1024, 512, 512, 256, 256),
        minibatches=8,
        init_std=init_std,
    )


def rsl_config(s: PPOSettings) -> dict[str, Any]:
    """The rsl-rl runner/algorithm dictionary for these settings."""
    return {
        "num_steps_per_env": s.steps_per_env,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "actor": {
            "class_name": "rsl_rl.models.MLPModel",
            "hidden_dims": list(s.hidden),
            "activation": "elu",
            "obs_normalization": True,
            "distribution_cfg": {
                "class_name": "rsl_rl.modules.distribution.GaussianDistribution",
                "init_std": s.init_std,
            },
        },
        "critic": {
            "class_name": "rsl_rl.models.MLPModel",
            "hidden_dims": list(s.critic_hidden),
            "activation": "elu",
            "obs_normalization": True,
        },
        "algorithm": {
            "class_name": "rsl_rl.algorithms.PPO",
            "num_learning_epochs": s.epochs,
            "num_mini_batches": s.minibatches,
            "clip_param": s.clip,
            "gamma": s.gamma,
            "lam": s.lam,
            "value_loss_coef": 1.0,
            "entropy_coef": s.entropy,
            "learning_rate": s.learning_rate,
            "max_grad_norm": 1.0,
            "schedule": "adaptive",
            "desired_kl": s.desired_kl,
        },
        "multi_gpu": None,
    }


@dataclass
class TrainResult:
    iterations: int
    env_steps: int
    seconds: float
    curve: list[dict[str, float]] = field(default_factory=list)
    checkpoint: str = ""


class EpisodeStats:
    """Per iteration: goals reached per simulated minute, success rate (the share of goals
    set that were reached) and hold rate (the share of ended episodes that ended without a
    drop)."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.reset()

    def reset(self) -> None:
        self.goals = 0
        self.steps = 0
        self.episodes = 0
        self.drops = 0
        self.ended_steps = 0

    def update(self, reached: np.ndarray | None) -> None:
        env = self.env
        self.steps += env.num_envs
        if reached is not None:
            self.goals += int(np.sum(reached))
        done = env.last_done
        self.episodes += int(done.sum())
        self.drops += int(env.last_terminated.sum())
        self.ended_steps += int(env.ended_steps.sum())

    def summary(self) -> dict[str, float]:
        minutes = self.steps * self.env.dt / 60.0
        # every goal ends reached or abandoned when its episode ends (a drop or the timeout)
        tried = self.goals + self.episodes
        return {
            "goals_per_min": self.goals / max(minutes, 1e-9),
            "success_rate": self.goals / tried if tried else float("nan"),
            "hold_rate": 1.0 - self.drops / self.episodes if self.episodes else float("nan"),
            "episodes": float(self.episodes),
            "episode_s": self.ended_steps * self.env.dt / self.episodes
            if self.episodes
            else float("nan"),
        }


def train(
    task: str,
    *,
    scale: str = "smoke",
    hand: str = "leap",
    out: str | Path = "out/rl",
    seed: int = 0,
    resume: bool = True,
    env_overrides: dict[str, Any] | None = None,
    settings: PPOSettings | None = None,
    progress: bool = True,
    device: str | None = None,
    init: str | Path | None = None,
    critic_warmup: int | None = None,
) -> TrainResult:
    """Train a PPO policy on ``task``; checkpoints in ``out/checkpoint.pt`` (resumed).

    ``init``: a new run (no checkpoint in ``out``) starts from this policy's actor (a
    ``policy.pt``, e.g. a specialist of another axis) instead of a zero action head; the
    critic and the optimizer start fresh. The policy must match the task's observations
    and actions; its action layout and start pose (:meth:`Policy.env_overrides`) become the
    run's defaults, so resume with the same ``init`` (its weights then come from the
    checkpoint, not from ``init``). ``critic_warmup``: for a run started from ``init``, its
    first iterations train the fresh critic only (the actor, its action noise and the
    learning rate held), so that the first policy updates follow a critic that has seen
    the policy rather than an untrained one; default :data:`CRITIC_WARMUP` iterations.

    Returns the curve: per iteration, mean reward, goals per minute, hold rate.
    The learner runs on ``device`` (default: CUDA when available, else the CPU); the
    environment hands its tensors over on the same device.
    """
    from rsl_rl.algorithms import PPO
    from torch.utils.tensorboard import SummaryWriter

    from training.envs import make_env

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    ck = None
    if resume and ckpt_path.exists():
        try:
            ck = load_training_state(ckpt_path)
        except CheckpointError as e:
            raise ValueError(f"checkpoint {ckpt_path} is unreadable ({e}); use --no-resume") from e
    # a resumed run continues with fresh random streams, not a replay of the first ones
    offset = ck["iteration"] if ck is not None else 0
    torch.manual_seed(seed + offset)
    env_kw, preset = scale_preset(scale, task)
    gen = None  # a rotation generalist to fine-tune (its own network as the actor)
    if init is not None:
        from training.rl.distill import is_generalist

        if is_generalist(init):
            from controllers.dexndm.generalist import RotationGeneralist
            from training.rl import generalist_actor

            gen = RotationGeneralist.load(init, hand=hand)
            env_kw.update(generalist_actor.env_overrides(init))
        else:  # the layout the starting policy acts in; the caller's settings win
            env_kw.update(Policy.env_overrides(init))
    env_kw.update(env_overrides or {})
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    env_kw.update(hand=hand, seed=seed + offset, device=device)
    s = settings or preset
    env = make_env(task, **env_kw)
    if not 0.0 <= s.anchor < 1.0:
        raise ValueError(f"anchor is a fraction per update in [0, 1), got {s.anchor}")
    if s.anchor > 0 and init is None and (ck is None or not ck.meta.get("init")):
        raise ValueError("anchor pulls the actor back toward the policy it started from: give init")
    cfg = rsl_config(s)
    if gen is not None:
        generalist_actor.check_env(env, gen)
        cfg["actor"] = generalist_actor.actor_config(gen, s.init_std)
    obs = env.get_observations()
    alg = PPO.construct_algorithm(obs, env, copy.deepcopy(cfg), device)
    start_it, curve, env_steps, seconds = 0, [], 0, 0.0
    if ck is None and gen is not None:
        generalist_actor.load_into(alg.get_policy(), gen)
    elif ck is None and init is not None:
        init_actor(alg.get_policy(), init, env)
    elif ck is None:
        zero_action_head(alg.get_policy())
    if ck is not None:
        alg.load(ck["alg"], None, True)
        start_it, curve = ck["iteration"], ck["curve"]
        env_steps, seconds = ck["env_steps"], ck["seconds"]
        if hasattr(env, "load_curriculum_state"):
            # the env's curriculum (rotate: the off-axis penalty's) continues, not restarts
            state = ck.record.get("env_curriculum") or {
                "episodes": sum(r.get("episodes", 0.0) for r in curve)
            }
            env.load_curriculum_state(state)
        log.info("resumed %s at iteration %d", ckpt_path, start_it)
    anchor = None
    if s.anchor > 0:  # the weights the run started from (kept in the training state)
        if ck is not None and ck.record.get("anchor") is None:
            raise ValueError(
                f"{ckpt_path} was trained without anchor, so the weights it started from are "
                "not kept; start a new run (--no-resume) to anchor it"
            )
        anchor = ck.record["anchor"] if ck is not None else _network_state(alg.get_policy())
    writer = SummaryWriter(log_dir=str(out / "tb"))
    meta = policy_meta(task, scale, hand, seed, device, env, s)
    # where the first iteration's actor came from, kept through resumes
    started_from = ck.meta.get("init") if ck is not None else init
    if started_from is not None:
        meta["init"] = str(started_from)
    (out / "config.json").write_text(json.dumps(meta, indent=2))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=s.iterations, initial=start_it, desc=f"PPO {task} {hand}", unit="it")
    stats = EpisodeStats(env)
    t_start = time.perf_counter()
    alg.train_mode()
    it = start_it
    warmup = (CRITIC_WARMUP if critic_warmup is None else critic_warmup) if started_from else 0
    lr0 = alg.learning_rate
    try:
        for it in range(start_it, s.iterations):
            _hold_actor(alg, it < warmup)
            t0 = time.perf_counter()
            stats.reset()
            rewards = []
            task_logs: dict[str, list[float]] = {}
            with torch.inference_mode():
                for _ in range(s.steps_per_env):
                    actions = alg.act(obs)
                    obs, rew, dones, extras = env.step(actions)
                    reached = getattr(env, "last_reached", None)
                    alg.process_env_step(obs, rew, dones, extras)
                    stats.update(reached)
                    rewards.append(float(rew.mean()))
                    for k, v in extras.get("log", {}).items():
                        task_logs.setdefault(k, []).append(v)
                alg.compute_returns(obs)
            t1 = time.perf_counter()
            losses = alg.update()
            if it < warmup:  # the held actor's KL is 0: the adaptive rate must not climb
                alg.learning_rate = lr0
                for group in alg.optimizer.param_groups:
                    group["lr"] = lr0
            elif anchor is not None:
                losses["anchor_distance"] = pull_toward(alg.get_policy(), anchor, s.anchor)
            t2 = time.perf_counter()
            env_steps += s.steps_per_env * env.num_envs
            seconds += t2 - t0
            row = {
                "iteration": it + 1,
                "env_steps": env_steps,
                "seconds": round(seconds, 2),
                "reward": float(np.mean(rewards)),
                **{k: float(v) for k, v in stats.summary().items()},
                "collect_s": t1 - t0,
                "learn_s": t2 - t1,
                "action_std": float(alg.get_policy().output_std.detach().mean()),
                # the task's own measures, mean over the iteration (rotate: rot_rad_s, ...)
                **{
                    "task_" + k.rsplit("/", 1)[-1]: float(np.mean(v))
                    for k, v in task_logs.items()
                    if k != "/task/episode_return"
                },
                **{f"loss_{k}": float(v) for k, v in losses.items()},
            }
            if it < warmup:
                row["critic_warmup"] = 1.0
            curve.append(row)
            for k, v in row.items():
                if k != "iteration" and np.isfinite(v):
                    writer.add_scalar(f"train/{k}", v, it + 1)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    rew=f"{row['reward']:.2f}",
                    gpm=f"{row['goals_per_min']:.1f}",
                    hold=f"{row['hold_rate']:.2f}",
                )
            last = it + 1 == s.iterations
            timed_out = (
                s.max_minutes is not None and (time.perf_counter() - t_start) > 60 * s.max_minutes
            )
            if (it + 1) % s.save_every == 0 or last or timed_out:
                _save(ckpt_path, alg, it + 1, curve, env_steps, seconds, cfg, meta, env, anchor)
            if s.snapshot_every and (it + 1) % s.snapshot_every == 0:
                run = _run_record(init, out, curve, env_steps, meta)
                _export(alg, cfg, meta, gen, run, out / "snapshots", f"_it{it + 1}", curve)
            if timed_out:
                log.info("stopping after %.1f min (max_minutes)", s.max_minutes)
                break
    finally:
        if bar is not None:
            bar.close()
        writer.close()
    if not ckpt_path.exists() or (
        curve and load_training_state(ckpt_path)["iteration"] != curve[-1]["iteration"]
    ):
        _save(ckpt_path, alg, len(curve), curve, env_steps, seconds, cfg, meta, env, anchor)
    _export(alg, cfg, meta, gen, _run_record(init, out, curve, env_steps, meta), out, "", curve)
    return TrainResult(len(curve), env_steps, seconds, curve, str(ckpt_path))


def _run_record(init: Any, out: Path, curve: list, env_steps: int, meta: dict) -> dict:
    """What a fine-tuned generalist's file records about the run it came from."""
    return {
        "init": str(init),
        "out": str(out),
        "iterations": len(curve),
        "env_steps": env_steps,
        "env": meta["env"],
        "env_fingerprint": meta["data_fingerprint"],
        "ppo": meta["ppo"],
    }


def _export(
    alg: Any,
    cfg: dict,
    meta: dict,
    gen: Any,
    run: dict,
    folder: Path,
    tag: str = "",
    curve: list | None = None,
) -> None:
    """``policy{tag}.pt`` in ``folder``, and for a generalist run ``generalist{tag}.pt``
    (the DexNDM controller's format)."""
    folder.mkdir(parents=True, exist_ok=True)
    export_policy(alg, cfg, meta, folder / f"policy{tag}.pt")
    if gen is not None:
        from training.rl import generalist_actor

        path = folder / f"generalist{tag}.pt"
        generalist_actor.export_generalist(alg.get_policy(), gen.meta, path, run, curve)


def _network_state(actor: Any) -> dict[str, torch.Tensor]:
    """A copy of the actor's network weights (its ``mlp``: not the action noise)."""
    return {k: v.detach().clone() for k, v in actor.mlp.state_dict().items()}


def pull_toward(actor: Any, anchor: dict[str, torch.Tensor], fraction: float) -> float:
    """Move the actor's network ``fraction`` of the way back to ``anchor`` (weights as
    :func:`_network_state` gives); returns its relative distance from them afterwards."""
    num = den = 0.0
    with torch.no_grad():
        for k, v in actor.mlp.state_dict().items():
            if not v.is_floating_point():
                continue
            a = anchor[k].to(v.device)
            v.lerp_(a, fraction)
            num += float(((v - a) ** 2).sum())
            den += float((a**2).sum())
    return (num / max(den, 1e-12)) ** 0.5


def policy_meta(
    task: str, scale: str, hand: str, seed: int, device: str, env: Any, s: PPOSettings
) -> dict[str, Any]:
    """What a policy file records about its training: the task, the environment's settings
    (its observations and actions, read back by :meth:`Policy.env_overrides`), the learner's
    settings, the commit and the physics."""
    return {
        "task": task,
        "scale": scale,
        "hand": hand,
        "seed": seed,
        "device": device,
        "env": _jsonable(asdict(env.cfg)),
        "ppo": asdict(s),
        "commit": checkpoint.git_commit(),
        "physics": env.physics(),
        # RL learns from its own rollouts: the environment's settings are its data
        "data_fingerprint": checkpoint.fingerprint(_jsonable(asdict(env.cfg))),
    }


def zero_action_head(actor: Any) -> None:
    """Start the policy at a = 0: the action mode's own behaviour (``delta``: hold the
    targets, the floor a weak policy falls below; ``reference``: head for the reference
    targets). Exploration noise (``init_std``) still varies the actions from the start; the
    head's zero weights receive gradients like any other."""
    last = [m for m in actor.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


#: iterations of critic-only training at the start of a run from another policy (--init)
CRITIC_WARMUP = 50


def _hold_actor(alg: Any, hold: bool) -> None:
    """Freeze (or release) the actor's parameters for :meth:`PPO.update`: frozen ones get no
    gradient, so the optimizer leaves them (and their moments) alone."""
    for p in alg.get_policy().parameters():
        p.requires_grad_(not hold)


def init_actor(actor: Any, path: str | Path, env: Any) -> None:
    """Load the actor (weights, observation normalizer, action noise) of the policy file at
    ``path`` into ``actor``; a policy of another hand, physics or observation layout is
    refused with the reason."""
    try:
        ck = load_policy_file(path, env)
        checkpoint.load_weights(actor, ck["actor_state_dict"], ck)
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"cannot start from policy {path}: {e}") from e


def load_policy_file(path: str | Path, env: Any) -> checkpoint.Checkpoint:
    """A policy file (:func:`export_policy`) for ``env``: its hand and physics checked."""
    ck = checkpoint.load(path, format=POLICY_FORMAT, what="RL policy", physics=env.physics())
    checkpoint.check_hand(ck, ck.meta.get("hand", env.cfg.hand), env.cfg.hand, "RL policy")
    return ck


def _save(
    path: Path,
    alg: Any,
    iteration: int,
    curve: list,
    env_steps: int,
    seconds: float,
    cfg: dict,
    meta: dict,
    env: Any = None,
    anchor: dict | None = None,
) -> None:
    record = {
        "alg": alg.save(),
        "iteration": iteration,
        "curve": curve,
        "env_steps": env_steps,
        "seconds": seconds,
        "rsl_cfg": cfg,
    }
    if env is not None and hasattr(env, "curriculum_state"):
        record["env_curriculum"] = env.curriculum_state()
    if anchor is not None:
        record["anchor"] = anchor
    checkpoint.save(path, record, format=STATE_FORMAT, meta=meta)


def load_training_state(path: Path) -> checkpoint.Checkpoint:
    """A training state written by :func:`_save` (or, untagged, before the format tag)."""
    return checkpoint.load(path, format=STATE_FORMAT, what="PPO training state", untagged=True)


def export_policy(alg: Any, cfg: dict, meta: dict, path: Path) -> None:
    """The actor alone (weights + its observation normalizer) with what rebuilds it."""
    record = {
        "actor_state_dict": alg.get_policy().state_dict(),
        "actor_cfg": cfg["actor"],
        "obs_groups": cfg["obs_groups"],
    }
    checkpoint.save(path, record, format=POLICY_FORMAT, meta=meta)


class Policy:
    """A trained actor, loaded for evaluation or data generation (deterministic mean)."""

    def __init__(self, path: str | Path, env: Any) -> None:
        from rsl_rl.utils import resolve_class

        try:
            ck = load_policy_file(path, env)
            cls, kw = resolve_class(ck["actor_cfg"])
            obs = env.get_observations()
            self.actor = cls(
                obs, {"actor": ck["obs_groups"]["actor"]}, "actor", env.num_actions, **kw
            )
            checkpoint.load_weights(self.actor, ck["actor_state_dict"], ck)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise CheckpointError(f"cannot load policy {path}: {e}") from e
        self.actor.eval()
        self.meta = ck.meta

    #: Environment settings a policy depends on (its action and observation layout, and the
    #: physics it learned; policies from before the physics had names lack it).
    ENV_KEYS = (
        "action_mode",
        "residual_scale_rad",
        "action_scale_rad",
        "history",
        "styles",
        "rate_hz",
        "physics_model",
        "gait",
        "oracle",
        "rest_q",
    )
    #: Settings a policy depends on where they are on (``lie``: the long objects it learned
    #: lie in the palm; ``blind``: its actor never saw the object); off, they are left out,
    #: as in the files that predate them.
    ENV_FLAGS = ("lie", "blind")

    @staticmethod
    def env_overrides(path: str | Path) -> dict[str, Any]:
        """The settings the policy at ``path`` was trained with, to build a matching env."""
        try:
            env = checkpoint.load(path, format=POLICY_FORMAT, what="RL policy").meta["env"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"cannot load policy {path}: {e}") from e
        out = {k: env[k] for k in Policy.ENV_KEYS if k in env}
        out.update({k: True for k in Policy.ENV_FLAGS if env.get(k)})
        # policies that do not record their physics predate issue 18: the Menagerie model
        out.setdefault("physics_model", BASELINE_PHYSICS)
        if "styles" in out:
            out["styles"] = tuple(out["styles"])
        if "rest_q" in out:
            out["rest_q"] = tuple(float(v) for v in out["rest_q"])
        return out

    @torch.inference_mode()
    def __call__(self, obs: Any) -> torch.Tensor:
        return self.actor(obs)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)
