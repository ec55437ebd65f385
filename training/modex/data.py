"""Random-exploration data for MoDex's internal models (paper Sec. 2.1), in simulation.

The hand state ``s`` is the fingertip positions in the hand's base frame (``H = 3 x
fingers``); the action ``a`` is the position-actuator targets (``K`` = actuators), drawn
uniformly in the actuators' control ranges.

- **quasi-static** (eq. 3-4): reset to the default pose, apply one random action, let the
  hand settle (``settle_s``), record the fingertips: pairs ``(a, s')``.
- **sequential** (eq. 1-2, 5-8): from the default pose, a new random target every control
  period (20 Hz) for ``steps`` periods, moved towards at most at the hand's joint speed
  limit (what the app's safety filter lets through, so the model learns the hand as it is
  driven): trajectories ``s_0, a_0, s_1, a_1, ...`` of the executed actions.

Many worlds are stepped at once with ``mujoco.rollout`` on several threads; the fingertips
come from ``framepos`` sensors measured in the hand's base frame, so no Python runs per
physics step. Hands: LEAP and Allegro (our hand specs' fingertip keypoints) and the Shadow
hand (20 actuators, 24 joints; fingertips at the far end of each distal segment).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from assets.physics import DEFAULT_PHYSICS
from controllers.modex import MODEX_HANDS, SETTINGS
from controllers.modex.hand import (
    CONTROL_DT,
    ExplorationHand,
    exploration_hand,
    fingertips,
    initial_state,
)
from devices.robots.limits import limit_step


def _rollout(
    hand: ExplorationHand, state0: np.ndarray, control: np.ndarray, nthread: int
) -> np.ndarray:
    """Step ``len(control)`` worlds from ``state0``; returns the sensors of the state
    *after* each step (B, steps, S). (``rollout`` records the sensors that ``mj_step``
    computed before integrating, one step behind; one extra step brings them level with
    what ``mj_forward`` on the final state, the app's sim hand and the reach task read.)"""
    from mujoco import rollout

    m = hand.model
    datas = [mujoco.MjData(m) for _ in range(max(1, nthread))]
    init = np.repeat(state0[None], len(control), axis=0)
    control = np.concatenate([control, control[:, -1:]], axis=1)
    _state, sensordata = rollout.rollout(m, datas, init, control)
    return sensordata[:, 1:]


@dataclass(frozen=True)
class Actuation:
    """A changed hand (the paper's Fig. 7): the commands the hand receives are not the
    actions sent. ``failed``: actuators whose control signal is zero (actuator failure; a
    position servo then holds its joint at 0 rad, or the nearest end of its range);
    ``fatigue``: every command scaled by this factor (the paper's fatigue; for position
    servos, targets pulled towards 0 rad). Datasets record the actions *sent*, so a model
    fine-tuned on them learns the changed hand."""

    failed: tuple[int, ...] = ()
    fatigue: float = 1.0

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        out = np.asarray(actions, dtype=float) * self.fatigue
        if self.failed:
            out[..., list(self.failed)] = 0.0
        return out

    def describe(self) -> str:
        parts = [f"failed actuators {list(self.failed)}"] if self.failed else []
        if self.fatigue != 1.0:
            parts.append(f"fatigue x{self.fatigue:g}")
        return ", ".join(parts) or "nominal"


def settle(
    hand: ExplorationHand,
    actions: np.ndarray,
    *,
    settle_s: float = 0.5,
    nthread: int = 2,
    batch: int = 256,
) -> np.ndarray:
    """The fingertips (N, H) after each action (N, K) is held for ``settle_s`` from the
    default pose: the quasi-static map the models learn."""
    actions = np.asarray(actions, dtype=float)
    state0 = initial_state(hand)
    n_steps = round(settle_s / hand.model.opt.timestep)
    tips = np.empty((len(actions), hand.state_dim), dtype=np.float32)
    for i in range(0, len(actions), batch):
        control = np.repeat(actions[i : i + batch, None, :], n_steps, axis=1)
        sens = _rollout(hand, state0, control, nthread)
        tips[i : i + batch] = fingertips(hand, sens[:, -1])
    return tips


def collect(
    hand_name: str,
    setting: str,
    *,
    samples: int,
    seed: int = 0,
    settle_s: float = 0.5,
    steps: int = 20,
    nthread: int = 2,
    batch: int = 256,
    actuation: Actuation | None = None,
    physics_model: str = DEFAULT_PHYSICS,
) -> dict[str, Any]:
    """Explore ``hand_name`` at random. ``samples``: quasi-static pairs, or sequential
    transitions (trajectories of ``steps`` control periods); ``actuation``: a changed hand;
    ``physics_model``: the app's hands' physics (``assets.physics``; recorded in the manifest).
    Returns arrays and a manifest.
    Deterministic for a given seed (and independent of ``nthread`` and ``batch``)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; one of {', '.join(SETTINGS)}")
    if samples < 1:
        raise ValueError("samples must be at least 1")
    hand = exploration_hand(hand_name, physics_model)
    rng = np.random.default_rng(seed)
    state0 = initial_state(hand)
    t0 = time.perf_counter()
    k = hand.action_dim
    if setting == "quasi-static":
        actions = rng.uniform(hand.ctrl_low, hand.ctrl_high, size=(samples, k))
        sent = actuation(actions) if actuation else actions
        tips = settle(hand, sent, settle_s=settle_s, nthread=nthread, batch=batch)
        out: dict[str, Any] = {"actions": actions.astype(np.float32), "next_tips": tips}
        physics_steps = samples * round(settle_s / hand.model.opt.timestep)
    else:
        episodes = -(-samples // steps)
        wanted = rng.uniform(hand.ctrl_low, hand.ctrl_high, size=(episodes, steps, k))
        actions = np.empty_like(wanted)
        prev = np.repeat(hand.default_ctrl[None], episodes, axis=0)
        for t in range(steps):  # rate-limited towards each random target (in the ranges)
            prev = limit_step(wanted[:, t], prev, lower=None, upper=None, max_step=hand.max_step)
            actions[:, t] = prev
        tips = np.empty((episodes, steps + 1, hand.state_dim), dtype=np.float32)
        d = mujoco.MjData(hand.model)
        mujoco.mj_setState(hand.model, d, state0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(hand.model, d)
        tip0 = fingertips(hand, d.sensordata.copy())
        for i in range(0, episodes, batch):
            a = actuation(actions[i : i + batch]) if actuation else actions[i : i + batch]
            control = np.repeat(a, hand.substeps, axis=1)  # (B, steps * substeps, K)
            sens = _rollout(hand, state0, control, nthread)
            tips[i : i + batch, 0] = tip0
            tips[i : i + batch, 1:] = fingertips(hand, sens[:, hand.substeps - 1 :: hand.substeps])
        out = {"actions": actions.astype(np.float32), "tips": tips}
        physics_steps = episodes * steps * hand.substeps
    elapsed = time.perf_counter() - t0
    size = sum(v.nbytes for v in out.values())
    out["manifest"] = {
        "hand": hand_name,
        "setting": setting,
        # sequential: whole trajectories, so the requested count rounded up
        "samples": int(len(out["actions"]) * (1 if setting == "quasi-static" else steps)),
        "requested_samples": samples,
        "seed": seed,
        "settle_s": settle_s if setting == "quasi-static" else None,
        "steps_per_episode": steps if setting == "sequential" else None,
        "control_dt_s": CONTROL_DT,
        "physics": hand.physics(),
        "state": f"fingertip positions in the hand frame, m: {', '.join(hand.fingers)} (x y z)",
        "action": "position-actuator targets, uniform in the control ranges",
        "action_dim": k,
        "state_dim": hand.state_dim,
        "physics_steps": int(physics_steps),
        "seconds": round(elapsed, 3),
        "bytes": int(size),
        "mujoco": mujoco.__version__,
        "threads": nthread,
        "actuation": actuation.describe() if actuation else "nominal",
    }
    return out


@dataclass
class ExplorationData:
    """A collected dataset on disk: ``<path>.npz`` and its ``<path>.json`` manifest."""

    path: Path

    def save(self, data: dict[str, Any]) -> Path:
        from assets.atomic import write_atomic

        arrays = {k: v for k, v in data.items() if k != "manifest"}
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_atomic(self.path.with_suffix(".npz"), buf.getvalue())
        write_atomic(self.path.with_suffix(".json"), json.dumps(data["manifest"], indent=2) + "\n")
        return self.path.with_suffix(".npz")

    def load(self) -> dict[str, Any]:
        with np.load(self.path.with_suffix(".npz")) as f:
            out: dict[str, Any] = {k: f[k] for k in f.files}
        out["manifest"] = json.loads(self.path.with_suffix(".json").read_text())
        return out


__all__ = ["MODEX_HANDS", "SETTINGS", "Actuation", "ExplorationData", "collect", "exploration_hand"]


def main(argv: list[str] | None = None) -> int:
    """``python -m training.modex.data --hand leap --setting quasi-static --samples 10000
    --out data/modex/leap_qs``: collect and save (``.npz`` + ``.json`` manifest)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m training.modex.data", description=main.__doc__)
    p.add_argument("--hand", choices=MODEX_HANDS, default="leap")
    p.add_argument("--setting", choices=SETTINGS, default="quasi-static")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, help="output path without suffix")
    args = p.parse_args(argv)
    data = collect(
        args.hand, args.setting, samples=args.samples, seed=args.seed, nthread=args.threads
    )
    path = ExplorationData(Path(args.out)).save(data)
    m = data["manifest"]
    print(
        f"{path}: {args.samples} {args.setting} samples of {args.hand} in {m['seconds']:.1f} s "
        f"({m['physics_steps'] / max(m['seconds'], 1e-9):,.0f} physics steps/s), "
        f"{m['bytes'] / 1e6:.1f} MB in memory"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
