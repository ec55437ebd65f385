"""Periodic finger gaits: the reference a rotation policy corrects.

A gait is a joint-target offset about the start grasp that repeats with a period::

    offset_j(t) = ramp(t) * (bias_j + amplitude_j * sin(2 pi t / period + phase_j))

(``ramp`` rises from 0 to 1 over ``ramp_s`` so that a gait starts from the grasp). Played
open loop with the policy's residual at zero, a good gait already turns the object about its
axis; the policy then learns the feedback that keeps the object in hand (the "periodic
finger-gait prior" of the rotation-experts plan: plain PPO on two cores does not find the
motion by itself in the steps it can afford).

Gaits are found by search in the rotation environment itself (``training.gait_search``) and
shipped per hand, episode start (``RotateConfig.start``), wrist and axis as small JSON files
under ``assets/gaits/<hand>/``; the physics they were found on is recorded in the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assets.atomic import write_atomic

#: The shipped gaits: ``assets/gaits/<hand>/<start>_<wrist>_<axis>.json``.
GAIT_DIR = Path(__file__).resolve().parents[2] / "assets" / "gaits"
GAIT_FORMAT = "dexteleop-gait/1"


@dataclass
class Gait:
    """One periodic gait for an ``n``-joint hand (see the module docstring)."""

    period_s: float
    amplitude: np.ndarray
    phase: np.ndarray
    bias: np.ndarray
    ramp_s: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.amplitude = np.asarray(self.amplitude, dtype=float)
        self.phase = np.asarray(self.phase, dtype=float)
        self.bias = np.asarray(self.bias, dtype=float)
        n = self.amplitude.shape
        if self.phase.shape != n or self.bias.shape != n or len(n) != 1:
            raise ValueError("a gait's amplitude, phase and bias must be vectors of one length")
        if not (np.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"a gait's period must be positive, got {self.period_s}")
        for name in ("amplitude", "phase", "bias"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"a gait's {name} has non-finite values")

    @property
    def n(self) -> int:
        return self.amplitude.size

    @staticmethod
    def zero(n: int) -> Gait:
        """The gait that holds the grasp."""
        return Gait(1.0, np.zeros(n), np.zeros(n), np.zeros(n))

    def offsets(self, t: np.ndarray | float) -> np.ndarray:
        """(..., n) joint-target offsets at times ``t`` (seconds since the start)."""
        return gait_offsets(
            np.asarray(t, dtype=float),
            self.amplitude,
            self.phase,
            self.bias,
            np.asarray(self.period_s),
            self.ramp_s,
        )

    # -- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": GAIT_FORMAT,
            "period_s": float(self.period_s),
            "ramp_s": float(self.ramp_s),
            "amplitude": [round(float(x), 6) for x in self.amplitude],
            "phase": [round(float(x), 6) for x in self.phase],
            "bias": [round(float(x), 6) for x in self.bias],
            "meta": self.meta,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Gait:
        if d.get("format") != GAIT_FORMAT:
            raise ValueError(f"not a gait file (format {d.get('format')!r}, want {GAIT_FORMAT})")
        return Gait(
            float(d["period_s"]),
            d["amplitude"],
            d["phase"],
            d["bias"],
            float(d.get("ramp_s", 0.5)),
            dict(d.get("meta", {})),
        )

    def save(self, path: str | Path) -> Path:
        return write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @staticmethod
    def load(path: str | Path) -> Gait:
        path = Path(path)
        try:
            return Gait.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"cannot read gait {path}: {e}") from e


def gait_offsets(
    t: np.ndarray,
    amplitude: np.ndarray,
    phase: np.ndarray,
    bias: np.ndarray,
    period_s: np.ndarray,
    ramp_s: float,
) -> np.ndarray:
    """The gait formula, batched: ``t`` (N,) with per-row parameters (N, n) / (N,), or one
    gait (n,) at times of any shape."""
    t = np.asarray(t, dtype=float)
    ramp = np.clip(t / ramp_s, 0.0, 1.0) if ramp_s > 0 else np.ones_like(t)
    w = 2 * np.pi * t / period_s
    return ramp[..., None] * (bias + amplitude * np.sin(w[..., None] + phase))


def gait_path(
    hand: str, wrist: str, axis: str, root: str | Path | None = None, start: str = "grasp"
) -> Path:
    return Path(root or GAIT_DIR) / hand / f"{start}_{wrist}_{axis}.json"


def find_gait(
    hand: str, wrist: str, axis: str, root: str | Path | None = None, start: str = "grasp"
) -> Gait | None:
    """The shipped gait for (hand, start, wrist, axis), or None when there is none."""
    p = gait_path(hand, wrist, axis, root, start)
    return Gait.load(p) if p.exists() else None
