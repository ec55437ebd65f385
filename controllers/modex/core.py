"""MoDex's planning core at run time, shared by the ``modex`` controller and the reach task.

- :class:`ReachModels`: a hand's forward and inverse models for one setting, and the inverse
  model's proposal for bidirectional CEM.
- :func:`rate_limited` / :func:`limit_sequence`: predictions of what the hand executes
  when sent a sequence of targets (the safety filter's rule,
  :func:`devices.robots.limits.limit_step`, applied to the batch in torch).
- :class:`OffsetObserver`: offset-free MPC for the sequential setting.
- :func:`reach_error_cm` / :func:`worst_finger_cm`: fingertip distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from controllers.modex.models import checkpoint_paths, load_model
from controllers.modex.planners import Predict
from devices.robots.limits import limit_step


@dataclass
class ReachModels:
    """A hand's forward and inverse models for one setting."""

    hand: str
    setting: str
    forward: Any
    inverse: Any

    @classmethod
    def load(
        cls, hand: str, setting: str, root: str | Path | None = None, physics: dict | None = None
    ) -> ReachModels:
        """``physics``: the simulation the caller runs; models trained on another are refused
        (see :func:`assets.checkpoint.load`)."""
        paths = checkpoint_paths(hand, setting, root)
        quasi = setting == "quasi-static"
        kinds = ("qs_forward", "qs_inverse") if quasi else ("forward", "inverse")
        forward = load_model(paths["forward"], kind=kinds[0], hand=hand, physics=physics)
        inverse = load_model(paths["inverse"], kind=kinds[1], hand=hand, physics=physics)
        return cls(hand, setting, forward, inverse)

    def propose(self, s0: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse model's action distribution (mean, sigma) for reaching ``target``."""
        with torch.no_grad():
            if self.setting == "quasi-static":
                return self.inverse(target[None])[0], self.inverse.sigma
            return self.inverse(s0[None], target[None])[0], self.inverse.sigma


def rate_limited(predict: Predict, previous: torch.Tensor, max_step: float) -> Predict:
    """``predict`` of the actions the hand will execute when sent ``actions``: each step moves
    at most ``max_step`` from the one before, starting from ``previous`` (K,)."""

    def limited(s0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return predict(s0, limit_sequence(actions, previous, max_step))

    return limited


def limit_sequence(actions: torch.Tensor, previous: torch.Tensor, max_step: float) -> torch.Tensor:
    """Executed actions (N, T, K) for wanted ``actions``, rate-limited from ``previous``.

    No joint limits: the planners draw or clamp every action inside the control ranges.
    """
    out, prev = [], previous.expand(actions.shape[0], -1)
    for t in range(actions.shape[1]):
        prev = limit_step(actions[:, t], prev, lower=None, upper=None, max_step=max_step)
        out.append(prev)
    return torch.stack(out, dim=1)


class OffsetObserver:
    """Offset-free MPC for the sequential setting: a running estimate of where the forward
    model's one-step prediction misses the measured fingertips, subtracted from the goal.

    A learned model is biased near some poses (and LEAP's settled pose even jumps where
    fingers touch: ``bench/modex_sensitivity.py``); replanning every period corrects motion,
    but a biased model converges beside the goal. With ``d`` the filtered miss (measured -
    predicted, gain ``gain`` per period), planning towards ``goal - d`` puts the hand on the
    goal at steady state (``d`` is a constant output disturbance). Each fingertip's offset is
    capped at ``cap`` m so one jump cannot throw the aim far off. ``gain`` 0: plain MPC.
    """

    def __init__(self, gain: float, cap: float = 0.03) -> None:
        if not 0.0 <= gain <= 1.0:
            raise ValueError(f"offset gain must be in [0, 1], got {gain}")
        self.gain = gain
        self.cap = cap
        self.offset: torch.Tensor | None = None

    def reset(self) -> None:
        self.offset = None

    def update(self, measured: torch.Tensor, predicted: torch.Tensor) -> None:
        """One period: the fingertips measured (H,) vs what the model predicted for them."""
        if self.gain == 0.0:
            return
        miss = (measured - predicted).reshape(-1, 3)
        old = torch.zeros_like(miss) if self.offset is None else self.offset.reshape(-1, 3)
        new = (1.0 - self.gain) * old + self.gain * miss
        norm = new.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        self.offset = (new * (self.cap / norm).clamp(max=1.0)).reshape(-1)

    def aim(self, goal: torch.Tensor) -> torch.Tensor:
        """Where to plan the fingertips to (H,)."""
        return goal if self.offset is None else goal - self.offset


def reach_error_cm(tips: np.ndarray, target: np.ndarray) -> float:
    """Mean fingertip distance to the targets, cm."""
    return float(np.linalg.norm((tips - target).reshape(-1, 3), axis=1).mean()) * 100.0


def worst_finger_cm(tips: np.ndarray, target: np.ndarray) -> float:
    """The largest fingertip distance to its target, cm (what success is judged by)."""
    return float(np.linalg.norm((tips - target).reshape(-1, 3), axis=1).max()) * 100.0
