"""Joint limits and the rate limit: the one rule that makes a joint target safe.

Every place that turns a wanted target into one a hand may receive uses :func:`limit_step`:
the app's :class:`~devices.robots.safety.SafetyFilter` (one target per tick), the RL
environments (a batch of worlds per control step), MoDex's exploration data and its
planners' predictions of what the hand executes (batches of sequences, in torch). The rule:
clip the target to ``[lower, upper]``, then move from the last safe target by at most
``max_step`` per joint, and clip once more against floating-point rounding::

    safe = clip(last + clip(clip(target, lower, upper) - last, -max_step, max_step),
                lower, upper)

If ``last`` is inside the limits, ``safe`` is inside them and within ``max_step`` of
``last`` (up to one rounding of the sum). The largest step, :func:`max_step`, is the joint
speed times the time since the last target, never more than one control period (a loop
catching up after an overrun cannot move the hand faster than the speed limit).

What to do with a NaN is each caller's decision, made before the call: the safety filter
holds the last safe target (the whole target is invalid), the RL environments map NaN to
0 rad (``np.nan_to_num``, kept since training results depend on it).
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np

A = TypeVar("A")


def max_step(max_speed: A, period_s: float, dt_s: float | None = None) -> A:
    """The largest change of a target ``dt_s`` seconds after the last one (rad).

    ``max_speed * min(dt_s, period_s)``: ``dt_s`` None or not finite means one period, a
    negative one means no time. ``max_speed`` is a scalar or a per-joint array (rad/s).
    """
    return max_speed * step_dt(period_s, dt_s)  # type: ignore[operator]


def step_dt(period_s: float, dt_s: float | None = None) -> float:
    """The time a step may use: ``min(dt_s, period_s)`` (None or not finite: one period; a
    negative ``dt_s``: none), so that a caller catching up never moves faster."""
    dt = period_s if dt_s is None or not math.isfinite(dt_s) else dt_s
    return min(max(dt, 0.0), period_s)


def limit_step(target: Any, last: Any, *, lower: Any, upper: Any, max_step: Any) -> Any:
    """The safe target for ``target`` after ``last``: inside the limits, within ``max_step``.

    Works on numpy arrays and torch tensors alike (it uses only ``clip``, ``+`` and ``-``, so
    a torch call keeps its gradient, dtype and device) and broadcasts over leading
    dimensions: ``target`` (..., n), ``last`` (..., n) or (n,), limits and ``max_step``
    scalars or (n,). ``lower`` and ``upper`` may be None for a rate limit alone, where the
    targets are already known to be inside the limits (MoDex's actions are drawn or clamped
    inside the control ranges). Inputs must be finite: NaN handling is the caller's.
    """
    if not hasattr(target, "clip"):
        target = np.asarray(target, dtype=float)
    if not hasattr(last, "clip"):
        last = np.asarray(last, dtype=float)
    bounded = lower is not None or upper is not None
    if bounded:
        target = target.clip(lower, upper)
    safe = last + (target - last).clip(-max_step, max_step)
    # last and target are inside the box, so is every point between them; clip once more
    # only against floating-point rounding.
    return safe.clip(lower, upper) if bounded else safe
