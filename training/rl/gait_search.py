"""Search a periodic finger gait that turns the object about an axis (``dexteleop train gait``).

The cross-entropy method over the gait's parameters (``training.envs.gait``: per joint an
amplitude, a phase and a bias, and one period), each candidate played open loop in one world
of the rotation environment (``RotateEnv`` with zero residual actions: the very reference a
policy trained with ``gait=True`` corrects), from a random cached grasp, with the task's
randomisation. A rollout's return over ``horizon_s``::

    rad turned about the axis - off_axis_weight * rad turned off it
    - drop_weight * dropped - bias_weight * |bias|^2

counting only the time before a drop. The start grasp matters more than the gait (a gait's
return varies by about 0.1 rad/s across grasps), so every generation first plays the current
mean gait in all worlds and then the candidates from the same starts and pushes (common
random numbers, see :func:`rollout`); a candidate's score is its return minus the mean's in
its world. The elites' mean and spread become the next distribution; the mean's rollouts
are the search's curve. At the end the mean gait is evaluated in every world (fresh grasps)
and saved with the search's settings, curve and physics.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.envs.gait import Gait, gait_path

log = logging.getLogger(__name__)


@dataclass
class GaitSearchSettings:
    """CEM settings (see the module docstring)."""

    generations: int = 40
    worlds: int = 96
    elite_frac: float = 0.125
    horizon_s: float = 5.0
    smoothing: float = 0.7
    amp_init: float = 0.15
    amp_max: float = 0.6
    bias_init_std: float = 0.1
    bias_max: float = 0.5
    period_init_s: float = 1.0
    period_range_s: tuple[float, float] = (0.4, 3.0)
    std_min: float = 0.01
    off_axis_weight: float = 0.3
    drop_weight: float = 3.0
    bias_weight: float = 0.5
    seed: int = 0


def _split(theta: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    return theta[..., :n], theta[..., n : 2 * n], theta[..., 2 * n : 3 * n], theta[..., 3 * n]


def _clip(theta: np.ndarray, n: int, s: GaitSearchSettings) -> np.ndarray:
    theta = theta.copy()
    theta[..., :n] = np.clip(np.abs(theta[..., :n]), 0.0, s.amp_max)
    theta[..., 2 * n : 3 * n] = np.clip(theta[..., 2 * n : 3 * n], -s.bias_max, s.bias_max)
    lo, hi = s.period_range_s
    theta[..., 3 * n] = np.clip(theta[..., 3 * n], lo, hi)
    return theta


def to_gait(theta: np.ndarray, n: int, meta: dict[str, Any] | None = None) -> Gait:
    amp, phase, bias, period = _split(theta, n)
    return Gait(float(period), amp, np.mod(phase, 2 * np.pi), bias, meta=dict(meta or {}))


def rollout(env: Any, thetas: np.ndarray, horizon_s: float, seed: int) -> dict[str, np.ndarray]:
    """Play one candidate per world from fresh grasps; per world: rad about the axis and
    off it before a drop, whether it dropped, and seconds held.

    The environment's random numbers restart from ``seed``: two rollouts with one seed give
    world ``i`` the same object, grasp, randomisation and pushes, so that candidates are
    compared on equal terms (common random numbers).
    """
    import torch

    n, N = env.n, env.num_envs
    env.rng = np.random.default_rng(seed)
    env.reset()
    for w in range(N):
        env.set_gait(np.array([w]), to_gait(thetas[w], n))
    env.episode_length_buf.zero_()  # every gait starts at its phase 0, from the grasp
    about, off, held = np.zeros(N), np.zeros(N), np.zeros(N)
    alive = np.ones(N, dtype=bool)
    dropped = np.zeros(N, dtype=bool)
    zero = torch.zeros(N, n)
    for _ in range(round(horizon_s / env.dt)):
        env.step(zero)
        om, k = env.last_omega, env.last_axis
        about += alive * np.sum(om * k, axis=1) * env.dt
        off += alive * np.linalg.norm(np.cross(om, k), axis=1) * env.dt
        held += alive * env.dt
        ended = env.last_done & alive
        dropped |= ended & env.last_terminated
        alive &= ~env.last_done
    return {"about": about, "off": off, "dropped": dropped, "held_s": held}


def search(
    hand: str = "leap",
    wrist: str = "palm_up",
    axis: str = "z+",
    families: tuple[str, ...] = ("cube",),
    settings: GaitSearchSettings | None = None,
    start: str = "grasp",
    *,
    init: Gait | None = None,
    threads: int = 2,
    env_overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[Gait, dict[str, Any]]:
    """Run the search; returns the gait (with its report in ``meta``) and the report."""
    from training.envs import make_env

    s = settings or GaitSearchSettings()
    rng = np.random.default_rng(s.seed)
    env = make_env(
        "rotate",
        hand=hand,
        num_envs=s.worlds,
        nthread=threads,
        seed=s.seed,
        axes=(axis,),
        wrists=(wrist,),
        families=tuple(families),
        episode_s=s.horizon_s + 1.0,
        action_mode="reference",
        start=start,
        **(env_overrides or {}),
    )
    n = env.n
    if init is not None:
        mu = np.concatenate([init.amplitude, init.phase, init.bias, [init.period_s]])
        sd = np.concatenate([np.full(n, 0.05), np.full(n, 0.5), np.full(n, 0.05), [0.1]])
    else:
        mu = np.concatenate(
            [np.full(n, s.amp_init), rng.uniform(0, 2 * np.pi, n), np.zeros(n), [s.period_init_s]]
        )
        sd = np.concatenate(
            [np.full(n, s.amp_init), np.full(n, np.pi), np.full(n, s.bias_init_std), [0.3]]
        )
    n_elite = max(2, round(s.elite_frac * s.worlds))
    curve: list[dict[str, float]] = []
    t0 = time.perf_counter()
    steps = 0
    for g in range(s.generations):
        seed = int(rng.integers(2**31))
        base_thetas = np.tile(_clip(mu, n, s), (s.worlds, 1))
        base = rollout(env, base_thetas, s.horizon_s, seed)
        thetas = _clip(mu + sd * rng.standard_normal((s.worlds, mu.size)), n, s)
        r = rollout(env, thetas, s.horizon_s, seed)
        steps += 2 * s.worlds * round(s.horizon_s / env.dt)
        score = _returns(r, thetas, n, s) - _returns(base, base_thetas, n, s)
        elite = thetas[np.argsort(score)[-n_elite:]]
        mu = s.smoothing * elite.mean(axis=0) + (1 - s.smoothing) * mu
        sd = np.maximum(s.smoothing * elite.std(axis=0) + (1 - s.smoothing) * sd, s.std_min)
        row = {
            "generation": g + 1,
            "env_steps": steps,
            "seconds": round(time.perf_counter() - t0, 1),
            "rad_s": float(base["about"].mean() / s.horizon_s),
            "off_axis_rad_s": float(base["off"].mean() / s.horizon_s),
            "drop_rate": float(base["dropped"].mean()),
            "gain_elite": float(np.sort(score)[-n_elite:].mean()),
            "period_s": float(mu[3 * n]),
        }
        curve.append(row)
        if progress:
            log.info(
                "gen %d: mean gait %.3f rad/s (off-axis %.2f, drops %.2f), elite gain %.2f, "
                "period %.2f s (%.0f s)",
                g + 1,
                row["rad_s"],
                row["off_axis_rad_s"],
                row["drop_rate"],
                row["gain_elite"],
                row["period_s"],
                row["seconds"],
            )
    mu = _clip(mu, n, s)
    final = rollout(env, np.tile(mu, (s.worlds, 1)), s.horizon_s, s.seed + 12345)
    report = {
        "hand": hand,
        "start": start,
        "wrist": wrist,
        "axis": axis,
        "families": list(families),
        "env_overrides": {
            k: list(v) if isinstance(v, tuple) else v for k, v in (env_overrides or {}).items()
        },
        "settings": asdict(s),
        "final": {
            "rad_s": float(final["about"].mean() / s.horizon_s),
            "rad_s_median": float(np.median(final["about"]) / s.horizon_s),
            "off_axis_rad_s": float(final["off"].mean() / s.horizon_s),
            "drop_rate": float(final["dropped"].mean()),
            "worlds": s.worlds,
            "horizon_s": s.horizon_s,
        },
        "physics": env.physics(),
        "env_steps": steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "curve": curve,
    }
    gait = to_gait(mu, n, meta={k: report[k] for k in ("hand", "start", "wrist", "axis", "final")})
    gait.meta.update(
        families=list(families),
        settings=asdict(s),
        env_overrides=report["env_overrides"],
        physics_name=env.physics().get("name"),
    )
    return gait, report


def _returns(r: dict, thetas: np.ndarray, n: int, s: GaitSearchSettings) -> np.ndarray:
    bias = thetas[:, 2 * n : 3 * n]
    return (
        r["about"]
        - s.off_axis_weight * r["off"]
        - s.drop_weight * r["dropped"]
        - s.bias_weight * np.sum(bias**2, axis=1)
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gait_arguments(p)
    return run_gait(p.parse_args(argv))


def add_gait_arguments(p: Any) -> None:
    p.add_argument("--hand", default="leap")
    p.add_argument("--wrist", default="palm_up")
    p.add_argument("--start", choices=("grasp", "palm"), default="grasp")
    p.add_argument("--axis", default="z+")
    p.add_argument("--families", nargs="+", default=["cube"])
    p.add_argument("--generations", type=int, default=GaitSearchSettings.generations)
    p.add_argument("--worlds", type=int, default=GaitSearchSettings.worlds)
    p.add_argument("--horizon", type=float, default=GaitSearchSettings.horizon_s)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--amp-init", type=float, default=GaitSearchSettings.amp_init, metavar="RAD")
    p.add_argument(
        "--bias-std", type=float, default=GaitSearchSettings.bias_init_std, metavar="RAD"
    )
    p.add_argument("--drop-weight", type=float, default=GaitSearchSettings.drop_weight)
    init = p.add_mutually_exclusive_group()
    init.add_argument("--init", help="start from this gait file (refine) instead of at random")
    init.add_argument(
        "--from-policy",
        metavar="POLICY",
        help="start from the periodic gait fitted to this rotate specialist's motion "
        "(its own axis, start and object); --generations 0 keeps it as fitted",
    )
    p.add_argument(
        "--mirror",
        action="store_true",
        help="with --init / --from-policy: start from the gait played backwards (the "
        "opposite axis)",
    )
    p.add_argument("--out", help="gait file (default assets/gaits/HAND/START_WRIST_AXIS.json)")
    p.add_argument("--report", help="also write the search's report (JSON) here")
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="other rotate settings (e.g. the palm start's rest_q=... scale_range=1.4,1.4), "
        "which a policy trained on the gait must share",
    )


def run_gait(args: Any) -> int:
    from assets.atomic import write_atomic
    from training.rl.cli import task_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    init = Gait.load(args.init) if args.init else None
    fitted = None
    if args.from_policy:
        init, fitted = policy_gait(
            args.from_policy, args.hand, seed=args.seed, threads=args.threads
        )
        log.info(
            "fitted to %s: period %.3f s, %.0f %% of its motion", args.from_policy,
            fitted["period_s"], 100 * fitted["explained"],
        )  # fmt: skip
    if init is None and args.mirror:
        raise ValueError("--mirror plays a gait backwards: give --init or --from-policy")
    if init is not None and args.mirror:
        init = reversed_gait(init)
    s = GaitSearchSettings(
        generations=args.generations,
        worlds=args.worlds,
        horizon_s=args.horizon,
        seed=args.seed,
        amp_init=args.amp_init,
        bias_init_std=args.bias_std,
        drop_weight=args.drop_weight,
    )
    gait, report = search(
        args.hand,
        args.wrist,
        args.axis,
        tuple(args.families),
        s,
        start=args.start,
        init=init,
        threads=args.threads,
        env_overrides=task_settings("rotate", args.set),
    )
    out = (
        Path(args.out)
        if args.out
        else gait_path(args.hand, args.wrist, args.axis, start=args.start)
    )
    report["init"] = {
        "gait": args.init,
        "fitted": fitted,
        "mirrored": bool(args.mirror),
    }
    gait.meta["init"] = report["init"]
    out.parent.mkdir(parents=True, exist_ok=True)
    gait.save(out)
    if args.report:
        write_atomic(args.report, json.dumps(report, indent=1) + "\n")
    f = report["final"]
    print(
        f"{out}: {f['rad_s']:.3f} rad/s about {args.axis} (median {f['rad_s_median']:.3f}), "
        f"off-axis {f['off_axis_rad_s']:.3f} rad/s, drops {f['drop_rate']:.2f} "
        f"over {f['worlds']} worlds x {f['horizon_s']:.0f} s; search {report['seconds']:.0f} s"
    )
    return 0


def fit_gait(
    t: np.ndarray, offsets: np.ndarray, period_range_s: tuple[float, float] = (0.4, 3.0)
) -> tuple[Gait, float]:
    """The gait closest to joint-target ``offsets`` (T, n) at times ``t`` (T,): per joint
    ``bias + amplitude * sin(2 pi t / period + phase)`` by least squares, the one period (on
    a 5 ms grid within ``period_range_s``) that explains most; returns it and
    the share of the offsets' variance it explains."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(offsets, dtype=float)
    if y.ndim != 2 or len(t) != len(y) or len(t) < 8:
        raise ValueError(f"fit_gait needs (T >= 8, n) offsets at T times, got {y.shape}")
    lo, hi = period_range_s
    best: tuple[float, float, np.ndarray] | None = None
    for period in np.arange(lo, hi + 1e-9, 0.005):
        w = 2 * np.pi * t / period
        X = np.stack([np.ones_like(t), np.sin(w), np.cos(w)], axis=1)
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        r = float(np.sum((X @ coef - y) ** 2))
        if best is None or r < best[0]:
            best = (r, float(period), coef)
    assert best is not None
    r, period, (bias, s, c) = best
    # A sin(w t + p) = A cos(p) sin(w t) + A sin(p) cos(w t)
    gait = Gait(period, np.hypot(s, c), np.mod(np.arctan2(c, s), 2 * np.pi), bias)
    total = float(np.sum((y - y.mean(axis=0)) ** 2))
    return gait, (1.0 - r / total) if total > 0 else 0.0


def policy_gait(
    path: str | Path,
    hand: str,
    *,
    worlds: int = 16,
    seconds: float = 12.0,
    skip_s: float = 1.0,
    seed: int = 0,
    threads: int = 1,
    randomization: str = "no-force",
    period_range_s: tuple[float, float] = (0.4, 3.0),
) -> tuple[Gait, dict[str, Any]]:
    """The periodic gait in a rotate specialist's own motion: the policy plays ``worlds``
    episodes on its axis, wrist, object and start (its physics randomised as
    ``randomization``), and :func:`fit_gait` fits its targets' offsets from the task's
    reference in the episode it held longest (after ``skip_s``). Played open loop, or
    backwards (:func:`reversed_gait`) for the opposite axis, it is a reference for PPO."""
    from training.envs import make_env
    from training.envs.base import Randomization
    from training.rl.distill import specialist_settings
    from training.rl.evaluate import evaluate
    from training.rl.ppo import Policy

    over = specialist_settings(path)
    over["axes"] = over["axes"][:1]
    over["wrists"] = over["wrists"][:1]
    env = make_env(
        "rotate",
        hand=hand,
        num_envs=worlds,
        nthread=threads,
        seed=seed,
        episode_s=seconds,
        per_family=1,
        dr=Randomization.named(randomization),
        **over,
    )
    offsets: list[np.ndarray] = []
    held = np.zeros(worlds, dtype=int)
    about = np.zeros(worlds)

    def record(env: Any, target: np.ndarray) -> np.ndarray:
        offsets.append(target - env.goal_q_target)
        return target

    def count(env: Any, alive: np.ndarray) -> None:
        about[:] += alive * np.sum(env.last_omega * env.last_axis, axis=1) * env.dt
        held[:] += alive

    evaluate(env, Policy(path, env), targets_fn=record, on_step=count, seed=seed)
    w = int(np.argmax(held))
    skip = round(skip_s / env.dt)
    if held[w] - skip < 8:
        raise ValueError(f"{path}: no episode held past {skip_s + 8 * env.dt:.1f} s to fit")
    t = np.arange(held[w]) * env.dt
    gait, explained = fit_gait(t[skip:], np.stack(offsets)[skip : held[w], w], period_range_s)
    info = {
        "policy": str(path),
        "axis": over["axes"][0],
        "world": w,
        "seconds_fitted": float((held[w] - skip) * env.dt),
        "period_s": gait.period_s,
        "explained": explained,
        "policy_rad_s": float(about[w] / (held[w] * env.dt)),
    }
    return gait, info


def reversed_gait(g: Gait) -> Gait:
    """The gait played backwards in time: sin(-w t + p) = sin(w t + pi - p)."""
    return Gait(g.period_s, g.amplitude, np.mod(np.pi - g.phase, 2 * np.pi), g.bias, g.ramp_s)


if __name__ == "__main__":
    raise SystemExit(main())
