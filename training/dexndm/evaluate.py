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

An operator's switch (``then``, ``switch_s``): the command's axis changes to ``then`` after
``switch_s`` seconds, as when the operator presses Y after X; RotR is then the turn about the
axis in force at each tick (the run report's ``rotation_about_command_axis_rad``), and
``rotr_before`` / ``rotr_after`` its two parts.
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
    #: with a switch: the turn about the first axis before it, about the second after (rad)
    rotr_before: float | None = None
    rotr_after: float | None = None


def rotation_episode(
    robot: Any,
    controller: Any,
    axis: str,
    rest_q: np.ndarray,
    rng: np.random.Generator,
    episode_s: float = 20.0,
    then: str | None = None,
    switch_s: float | None = None,
) -> EpisodeResult:
    """One episode on ``robot`` (a simulated hand with an object) driven by ``controller``
    about palm axis ``axis`` (``+z`` ...), switched to palm axis ``then`` after ``switch_s``
    seconds when both are given."""
    k = np.asarray(PALM_AXES[axis], dtype=float)
    switch_at = None
    if then is not None:
        if switch_s is None or not 0 < switch_s < episode_s:
            raise ValueError(
                f"a switch needs 0 < switch_s < episode_s ({episode_s}), got {switch_s}"
            )
        switch_at = round(switch_s * robot.rate_hz)
    parts = [0.0, 0.0]
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
        if t == switch_at:
            k = np.asarray(PALM_AXES[then], dtype=float)
            command = Command(t=t / robot.rate_hz, axis=k)
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
        parts[int(switch_at is not None and t >= switch_at)] += along  # before / after
    ttf = done / steps if dropped else 1.0
    res = EpisodeResult(rotr, off, done, dropped, ttf, np.array(qs), np.array(sent_targets))
    if switch_at is not None:
        res.rotr_before, res.rotr_after = parts
    return res


def summarize(results: list[EpisodeResult], episode_s: float, dt: float) -> dict[str, Any]:
    """DexNDM's metrics over episodes."""
    rotr = float(np.mean([r.rotr for r in results]))
    in_hand = sum(r.steps for r in results) * dt
    out = {
        "episodes": len(results),
        "rot_rad_per_s": round(rotr / episode_s, 4),
        "rotr": round(rotr, 3),
        "rotr_std": round(float(np.std([r.rotr for r in results])), 3),
        "ttf": round(float(np.mean([r.ttf for r in results])), 3),
        "rotp": round(sum(r.off_rad for r in results) / in_hand, 4) if in_hand else None,
        "drops": int(sum(r.dropped for r in results)),
    }
    if results and results[0].rotr_before is not None:  # episodes with a switch
        out["rotr_before"] = round(float(np.mean([r.rotr_before for r in results])), 3)
        out["rotr_after"] = round(float(np.mean([r.rotr_after for r in results])), 3)
    return out


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
    switch: tuple[str, float] | None = None,
) -> list[tuple[str, dict[str, Any], list[EpisodeResult]]]:
    """``episodes`` episodes about each palm axis (draw ``seed``): per axis (axis, the
    metrics of :func:`summarize` plus ``seconds``, the episodes). ``switch`` = (axis B,
    seconds): each episode switches to B then (an axis that is B itself is skipped), and
    its label is ``A>B``."""
    import time

    out = []
    rest = controller.sim_start()
    then, switch_s = switch if switch is not None else (None, None)
    for axis in axes:
        if axis == then:
            continue
        rng = axis_rng(seed, axis)
        t0 = time.perf_counter()
        res = [
            rotation_episode(robot, controller, axis, rest, rng, episode_s, then, switch_s)
            for _ in range(episodes)
        ]
        rec = summarize(res, episode_s, 1.0 / robot.rate_hz)
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        out.append((axis if then is None else f"{axis}>{then}", rec, res))
    return out
