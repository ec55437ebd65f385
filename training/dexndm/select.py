"""Choose a DexNDM residual on the hand it is for: the same rotation episodes for each
candidate, and for the generalist alone, and the one that turns the object fastest wins.

Residuals trained alike but for their seed fit the dynamics model equally well and still
turn the cube differently on the stand-in real hand (BENCHMARKS.md, DexNDM: about -z 0.79x to
1.20x direct transfer over three seeds): offline error does not tell them apart, the hand
does. So a lab trains a few, runs each for the same episodes on its hand and keeps the best,
then confirms it on episodes the choice did not see. ``dexteleop train dexndm-select``
does that on a simulated hand with the object (the stand-in real hand by default: a
backend that reports the object's pose). The score of a candidate is the geometric mean
over the axes of its rad/s about the axis (RotR per second, which a drop ends), so that a
candidate cannot win on one axis by giving up another; the generalist alone (``direct``)
competes too, and when it wins no residual is chosen. With several ``scales`` every
residual also runs at each (the controller's residual scale); the chosen scale is baked into
the written file (:meth:`~controllers.dexndm.residual.ResidualPolicy.scaled`), so the
controller's own scale 1 sends what was chosen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from training.dexndm.evaluate import evaluate_axes, rotation_robot

#: the candidate name of the generalist without a residual
DIRECT = "direct"


@dataclass
class SelectConfig:
    """What the candidates are run on: the hand backend (a robot spec as for ``run
    --robot``; by default the stand-in real hand), the hand, its wrist orientation, the
    object, the palm axes, the episodes per axis and their draw (``seed``; choose one no
    reported figure used)."""

    robot: str = "sim:dynamics=reality"
    hand: str = "leap"
    wrist: str = "palm_up"
    object: str = "cube"
    axes: tuple[str, ...] = ("+z", "-z")
    episodes: int = 20
    episode_s: float = 20.0
    seed: int = 0
    generalist: str = ""
    direct: bool = True
    #: the residual scales each candidate runs at
    scales: tuple[float, ...] = (1.0,)
    #: rad/s floor in the geometric mean (a candidate that does not turn about one axis
    #: scores low, not zero or minus infinity)
    floor: float = 1e-3


def score(records: list[dict[str, Any]], floor: float = 1e-3) -> float:
    """The geometric mean over the records (one per axis) of rad/s about the axis."""
    if not records:
        raise ValueError("no records to score")
    logs = [math.log(max(float(r["rot_rad_per_s"]), floor)) for r in records]
    return math.exp(sum(logs) / len(logs))


def select_residual(
    candidates: list[str],
    cfg: SelectConfig,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every candidate residual file (and, with ``cfg.direct``, the generalist alone)
    for the same episodes; returns ``{"chosen": path or None, "candidates": [{residual,
    score, records}], "config": ...}`` with the candidates best first."""
    from controllers.dexndm import DexNDMController, DexNDMControllerConfig

    if not candidates:
        raise ValueError("give at least one residual to choose among")
    if len(set(candidates)) != len(candidates):
        raise ValueError("a residual is named twice")
    if not cfg.scales or any(not 0 < x <= 2 for x in cfg.scales):
        raise ValueError(f"residual scales are in (0, 2], got {cfg.scales}")
    runs = ([(DIRECT, 1.0)] if cfg.direct else []) + [
        (c, float(x)) for c in candidates for x in cfg.scales
    ]
    rows = []
    robot = None
    for name, scale in runs:
        ctrl = DexNDMController(
            DexNDMControllerConfig(
                hand=cfg.hand,
                generalist=cfg.generalist,
                residual="none" if name == DIRECT else name,
                ndm="none",
                residual_scale=scale,
            )
        )
        if ctrl.residual_mismatch:  # trained for another generalist: it does not compete
            raise ValueError(f"{name}: {ctrl.residual_mismatch}")
        if robot is None:
            robot = rotation_robot(ctrl, cfg.robot, cfg.hand, wrist=cfg.wrist, object=cfg.object)
        records = []
        for axis, rec, _ in evaluate_axes(
            robot, ctrl, list(cfg.axes), cfg.episodes, cfg.seed, cfg.episode_s
        ):
            records.append({"axis": axis, **rec})
        row = {
            "residual": name,
            "scale": scale,
            "score": round(score(records, cfg.floor), 4),
            "records": records,
        }
        rows.append(row)
        if progress is not None:
            per_axis = ", ".join(f"{r['axis']} {r['rot_rad_per_s']:.3f}" for r in records)
            at = "" if name == DIRECT else f" x {scale:g}"
            progress(f"{name}{at}: score {row['score']:.4f} rad/s ({per_axis})")
    rows.sort(key=lambda r: -r["score"])
    best = rows[0]
    return {
        "chosen": None if best["residual"] == DIRECT else best["residual"],
        "scale": best["scale"],
        "candidates": rows,
        "config": asdict(cfg),
    }


__all__ = ["DIRECT", "SelectConfig", "score", "select_residual"]
