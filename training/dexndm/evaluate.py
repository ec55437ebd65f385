"""Rotation episodes on a hand backend (the stand-in real hand, or the nominal simulation)
with the DexNDM controller: the sim-to-"real" evaluation of DexNDM Sec. 4.2 / Table 6.

An episode starts as the rotation policies were trained to start (the generalist's rest
pose, the object just above the palm at a random yaw: ``devices.robots.scene.
rotation_start_palm``), then the controller turns it about a fixed palm axis for
``episode_s`` seconds through the hand's safety filter. The object's rotation is measured
by the run report's own meter (``teleop_app``'s ``ObjectMeter`` logic, the same numbers
``dexteleop run`` reports); an episode ends at a drop. Metrics as DexNDM's (Sec. 4.1) and
``bench/rotation_eval.py``'s: RotR (rad about the axis per episode), TTF (time to fall / the
episode), RotP (mean off-axis angular speed, rad/s), rad/s = RotR / episode time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assets.rotations import turn_about_axis
from devices.tick import PALM_AXES, Command


@dataclass
class EpisodeResult:
    rotr: float
    off_rad: float
    steps: int
    dropped: bool
    ttf: float
    #: (steps, n) measured angles and sent targets (the hand's trajectory, for the
    #: dynamics models' errors on the task itself)
    q: np.ndarray | None = None
    target: np.ndarray | None = None


def rotation_episode(
    robot: Any,
    controller: Any,
    axis: str,
    rest_q: np.ndarray,
    rng: np.random.Generator,
    episode_s: float = 20.0,
) -> EpisodeResult:
    """One episode on ``robot`` (a simulated hand with an object) driven by ``controller``
    about palm axis ``axis`` (``+z`` ...)."""
    k = np.asarray(PALM_AXES[axis], dtype=float)
    robot.start_rotation(np.asarray(rest_q, dtype=float), float(rng.uniform(0, 2 * np.pi)))
    state = robot.read()
    controller.reset(state)
    command = Command(t=0.0, axis=k)
    steps = round(episode_s * robot.rate_hz)
    rotr = off = 0.0
    prev = np.asarray(state.object_pose[3:7])
    dropped = False
    done = 0
    qs, sent_targets = [], []
    for t in range(steps):
        target, _ = controller.step(state, command)
        qs.append(np.asarray(state.q, dtype=float))
        sent, _ = robot.send(target)
        sent_targets.append(np.asarray(sent, dtype=float))
        state = robot.read()
        quat = np.asarray(state.object_pose[3:7])
        along, off_step = turn_about_axis(prev, quat, state.wrist, k)
        prev = quat
        done = t + 1
        if state.object_dropped:
            dropped = True
            break
        rotr += along
        off += off_step
    ttf = done / steps if dropped else 1.0
    return EpisodeResult(rotr, off, done, dropped, ttf, np.array(qs), np.array(sent_targets))


def summarize(results: list[EpisodeResult], episode_s: float, dt: float) -> dict[str, Any]:
    """DexNDM's metrics over episodes."""
    rotr = float(np.mean([r.rotr for r in results]))
    in_hand = sum(r.steps for r in results) * dt
    return {
        "episodes": len(results),
        "rot_rad_per_s": round(rotr / episode_s, 4),
        "rotr": round(rotr, 3),
        "rotr_std": round(float(np.std([r.rotr for r in results])), 3),
        "ttf": round(float(np.mean([r.ttf for r in results])), 3),
        "rotp": round(sum(r.off_rad for r in results) / in_hand, 4) if in_hand else None,
        "drops": int(sum(r.dropped for r in results)),
    }


def rotation_robot(
    controller: Any,
    robot: str,
    hand: str,
    *,
    wrist: str = "palm_up",
    object: str = "cube",
) -> Any:
    """The hand backend ``robot`` names (a spec as for ``run --robot``, e.g.
    ``sim:dynamics=...``; one that simulates the object, since an episode reads its pose)
    with ``object`` at the size the controller's generalist was trained on, connected, for
    :func:`evaluate_axes`."""
    from devices.robots.base import robot_from_spec

    scale = controller.gen.meta.get("trained", {}).get("scale_range", [1.0])[0]
    backend = robot_from_spec(robot, hand, wrist=wrist, object=object, object_scale=float(scale))
    if not hasattr(backend, "start_rotation"):
        raise ValueError(f"{robot}: rotation episodes need a backend that simulates the object")
    backend.connect()
    return backend


def axis_rng(seed: int, axis: str) -> np.random.Generator:
    """The episodes' random stream for (draw ``seed``, ``axis``): the same for every
    controller evaluated, so that their comparison is paired."""
    return np.random.default_rng([seed, list(PALM_AXES).index(axis)])


def evaluate_axes(
    robot: Any,
    controller: Any,
    axes: list[str],
    episodes: int,
    seed: int,
    episode_s: float = 20.0,
) -> list[tuple[str, dict[str, Any], list[EpisodeResult]]]:
    """``episodes`` episodes about each palm axis (draw ``seed``): per axis (axis, the
    metrics of :func:`summarize` plus ``seconds``, the episodes)."""
    import time

    out = []
    rest = controller.sim_start()
    for axis in axes:
        rng = axis_rng(seed, axis)
        t0 = time.perf_counter()
        res = [
            rotation_episode(robot, controller, axis, rest, rng, episode_s) for _ in range(episodes)
        ]
        rec = summarize(res, episode_s, 1.0 / robot.rate_hz)
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        out.append((axis, rec, res))
    return out
