"""Planners over MoDex's internal models, in one module so they are compared fairly.

All plan action sequences ``(T0, K)`` that minimise a cost of the predicted fingertips, and
count their samples the way the paper does: **samples per planning step** = every action
sequence whose outcome the forward model predicted while choosing one action (CEM:
``iterations x samples``; random shooting: ``samples``; batched gradient descent:
``batch x (iterations + 1)``: each descent step predicts the whole batch, and a last
prediction picks the best).

- :class:`MoDexPlanner` (Algorithm 1): the inverse model proposes ``N(g(s, s_T), sigma^2)``,
  extended over the horizon; CEM refines it (elites, moving-average update with ``beta``).
- :class:`CEMPlanner` (FM+CEM): the same CEM from a broad distribution over the action range.
- :class:`RandomShooting` (FM+RS): uniform samples, keep the best.
- :class:`GradientPlanner` (FM+BGD): a batch of random starts improved by gradient descent
  through the forward model.

The dynamics are given as ``predict(s0 (H,), actions (N, T0, K)) -> states (N, T0, H)``
(a sequential forward model, or a quasi-static one with ``T0 = 1``). Costs are
``cost(states (N, T0, H)) -> (N,)``; :func:`reach_cost` is the fingertip reach objective.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Cost = Callable[[torch.Tensor], torch.Tensor]


def reach_cost(target: torch.Tensor, *, final_only: bool = False) -> Cost:
    """Mean fingertip distance to ``target`` (H,) over the horizon (or at its end)."""
    goal = target.reshape(-1, 3)

    def cost(states: torch.Tensor) -> torch.Tensor:
        s = states[:, -1:] if final_only else states
        d = (s.reshape(*s.shape[:2], -1, 3) - goal).norm(dim=-1).mean(-1)  # (N, T)
        return d.mean(-1)

    return cost


@dataclass
class Plan:
    """actions (T0, K): the plan; cost: its predicted cost; samples: sequences evaluated."""

    actions: torch.Tensor
    cost: float
    samples: int


class _Planner:
    def __init__(self, low: np.ndarray, high: np.ndarray, horizon: int, seed: int = 0) -> None:
        self.low = torch.as_tensor(np.asarray(low), dtype=torch.float32)
        self.high = torch.as_tensor(np.asarray(high), dtype=torch.float32)
        self.horizon = horizon
        self.gen = torch.Generator().manual_seed(seed)

    def _clip(self, a: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(a, self.high), self.low)


class CEMPlanner(_Planner):
    """FM+CEM; also the refinement stage of MoDex (given an initial mean and spread)."""

    def __init__(
        self,
        low: np.ndarray,
        high: np.ndarray,
        *,
        horizon: int = 1,
        samples: int = 200,
        iterations: int = 5,
        elites: int = 20,
        beta: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__(low, high, horizon, seed)
        self.samples, self.iterations, self.elites, self.beta = samples, iterations, elites, beta

    def initial(self, s0: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = ((self.low + self.high) / 2).expand(self.horizon, -1).clone()
        std = ((self.high - self.low) / 2).expand(self.horizon, -1).clone()
        return mean, std

    @torch.no_grad()
    def plan(
        self,
        s0: torch.Tensor,
        target: torch.Tensor,
        predict: Predict,
        cost: Cost,
        *,
        deadline: float | None = None,
    ) -> Plan:
        """``deadline`` (a ``time.perf_counter()`` value): no iteration starts that would
        end after it, judging by the last one's duration (anytime planning for a real-time
        loop; at least one iteration runs)."""
        mean, std = self.initial(s0, target)
        best_a, best_c, used = mean.clone(), float("inf"), 0
        last = 0.0
        for it in range(self.iterations):
            started = time.perf_counter()
            if it > 0 and deadline is not None and started + last > deadline:
                break
            noise = torch.randn((self.samples, *mean.shape), generator=self.gen)
            a = self._clip(mean + std * noise)
            c = cost(predict(s0, a))
            used += self.samples
            order = torch.argsort(c)[: self.elites]
            elite = a[order]
            if float(c[order[0]]) < best_c:
                best_c, best_a = float(c[order[0]]), a[order[0]].clone()
            # moving average of the elite statistics (Algorithm 1, line 15)
            mean = self.beta * mean + (1 - self.beta) * elite.mean(0)
            std = self.beta * std + (1 - self.beta) * elite.std(0)
            last = time.perf_counter() - started
        return Plan(best_a, best_c, used)


class MoDexPlanner(CEMPlanner):
    """Bidirectional planning: the inverse model's proposal ``N(g(s, s_T), sigma^2)`` starts
    the CEM. ``propose(s0, target) -> (mean (K,), sigma (K,))``."""

    def __init__(
        self,
        low: np.ndarray,
        high: np.ndarray,
        propose: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        **kw: object,
    ) -> None:
        super().__init__(low, high, **kw)  # type: ignore[arg-type]
        self.propose = propose

    def initial(self, s0: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, sigma = self.propose(s0, target)
        mean = self._clip(mean.reshape(-1))
        return mean.expand(self.horizon, -1).clone(), sigma.reshape(-1).expand(
            self.horizon, -1
        ).clone()


class RandomShooting(_Planner):
    """FM+RS: ``samples`` uniform action sequences, the best one."""

    def __init__(self, low, high, *, horizon: int = 1, samples: int = 5000, seed: int = 0):
        super().__init__(low, high, horizon, seed)
        self.samples = samples

    @torch.no_grad()
    def plan(self, s0: torch.Tensor, target: torch.Tensor, predict: Predict, cost: Cost) -> Plan:
        u = torch.rand((self.samples, self.horizon, self.low.numel()), generator=self.gen)
        a = self.low + (self.high - self.low) * u
        c = cost(predict(s0, a))
        i = int(torch.argmin(c))
        return Plan(a[i].clone(), float(c[i]), self.samples)


class GradientPlanner(_Planner):
    """FM+BGD: a batch of uniform starts, Adam on the actions through the forward model."""

    def __init__(
        self, low, high, *, horizon: int = 1, batch: int = 64, iterations: int = 30,
        lr: float = 0.05, seed: int = 0,
    ):  # fmt: skip
        super().__init__(low, high, horizon, seed)
        self.batch, self.iterations, self.lr = batch, iterations, lr

    def plan(self, s0: torch.Tensor, target: torch.Tensor, predict: Predict, cost: Cost) -> Plan:
        span = self.high - self.low
        u = torch.rand((self.batch, self.horizon, self.low.numel()), generator=self.gen)
        z = u.clone().requires_grad_(True)  # optimise in [0, 1] units of the range
        opt = torch.optim.Adam([z], lr=self.lr)
        for _ in range(self.iterations):
            c = cost(predict(s0, self.low + span * z.clamp(0, 1)))
            opt.zero_grad()
            c.sum().backward()
            opt.step()
        with torch.no_grad():
            a = self.low + span * z.clamp(0, 1)
            c = cost(predict(s0, a))
            i = int(torch.argmin(c))
        return Plan(a[i].detach().clone(), float(c[i]), self.batch * (self.iterations + 1))


def quasi_static_predict(forward: torch.nn.Module) -> Predict:
    """``predict`` for a quasi-static forward model (horizon 1)."""

    def predict(s0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return forward(actions[:, 0])[:, None]

    return predict


def sequential_predict(
    forward: torch.nn.Module,
    s_prev: torch.Tensor | None = None,
    a_prev: torch.Tensor | None = None,
) -> Predict:
    """``predict`` for a sequential forward model: roll each sequence out from ``s0``. The
    period before ``s0`` (for a model with context): the fingertips one period earlier
    ``s_prev`` and the target the hand executed over it ``a_prev``; None: at rest."""

    def predict(s0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return forward.rollout(s0.expand(actions.shape[0], -1), actions, s_prev, a_prev)

    return predict
