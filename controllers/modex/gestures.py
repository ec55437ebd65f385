"""Gestures as cost functions over fingertip positions (MoDex Sec. 2.3.3), per hand.

A gesture says, for each finger, whether it is **extended** (its tip where the open hand has
it), **curled** (its tip pulled towards the palm: short along the fingers' direction and on
the palm side) or **touching** another fingertip. Costs take fingertips (N, T, H) in the
hand frame (x towards the fingers, z out of the back of the hand) and return (N,), in m^2.

Built in: thumbs_up, ok, scissors, rock_and_roll, call, finger_gun, point. Hands without a
little finger (LEAP, Allegro) use the ring finger where the gesture wants the little one.
Users add their own with :func:`load_cost_file` (a Python file defining
``cost(tips) -> (N,)`` with ``tips`` (N, fingers, 3)), checked before use.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from controllers.modex import GESTURES

# finger role -> (index|middle|ring|little|thumb) : "ext" | "curl" | ("touch", other)
_SPECS: dict[str, dict[str, object]] = {
    "thumbs_up": {
        "thumb": "ext",
        "index": "curl",
        "middle": "curl",
        "ring": "curl",
        "little": "curl",
    },
    "ok": {"thumb": ("touch", "index"), "middle": "ext", "ring": "ext", "little": "ext"},
    "scissors": {
        "index": "ext",
        "middle": "ext",
        "ring": "curl",
        "little": "curl",
        "thumb": "curl",
    },
    "rock_and_roll": {
        "index": "ext",
        "little": "ext",
        "middle": "curl",
        "ring": "curl",
        "thumb": "curl",
    },
    "call": {"thumb": "ext", "little": "ext", "index": "curl", "middle": "curl", "ring": "curl"},
    "finger_gun": {
        "index": "ext",
        "thumb": "ext",
        "middle": "curl",
        "ring": "curl",
        "little": "curl",
    },
    "point": {"index": "ext", "middle": "curl", "ring": "curl", "little": "curl", "thumb": "curl"},
}

assert set(_SPECS) == set(GESTURES), "every gesture name has a specification"

#: a curled fingertip is this fraction of its open reach along x, or less
CURL_REACH = 0.45


class CostFunctionError(ValueError):
    """A user's cost function cannot be used; the message says why."""


Cost = Callable[[torch.Tensor], torch.Tensor]


def gesture_cost(name: str, fingers: tuple[str, ...], open_tips: np.ndarray) -> Cost:
    """The cost of gesture ``name`` for a hand with ``fingers`` whose open-hand fingertips
    are ``open_tips`` (F, 3)."""
    if name not in _SPECS:
        raise ValueError(f"unknown gesture {name!r}; built in: {', '.join(GESTURES)}")
    spec = dict(_SPECS[name])
    if "little" not in fingers and "little" in spec:  # four-fingered hands: ring plays little
        little = spec.pop("little")
        if little == "ext" or "ring" not in spec:
            spec["ring"] = little
    open_t = torch.as_tensor(np.asarray(open_tips, dtype=np.float32)).reshape(len(fingers), 3)
    terms: list[tuple[str, int, int | None]] = []
    for finger, role in spec.items():
        if finger not in fingers:
            continue
        i = fingers.index(finger)
        if isinstance(role, tuple):
            terms.append(("touch", i, fingers.index(role[1])))
        else:
            terms.append((str(role), i, None))

    def cost(states: torch.Tensor) -> torch.Tensor:
        tips = states[:, -1].reshape(states.shape[0], len(fingers), 3)  # the final pose
        total = torch.zeros(tips.shape[0])
        for role, i, j in terms:
            tip = tips[:, i]
            if role == "ext":
                total = total + ((tip - open_t[i]) ** 2).sum(-1)
            elif role == "curl":
                reach = CURL_REACH * open_t[i, 0]
                total = total + torch.relu(tip[:, 0] - reach) ** 2 + torch.relu(tip[:, 2]) ** 2
            else:
                total = total + ((tip - tips[:, j]) ** 2).sum(-1)
        return total

    return cost


def load_cost_file(path: str | Path, fingers: tuple[str, ...]) -> Cost:
    """A user's cost function from a Python file defining ``cost(tips)``: ``tips`` is a
    tensor (N, F, 3) of fingertips in the hand frame, the result (N,) finite numbers.
    Checked on a probe batch; CostFunctionError (saying why) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CostFunctionError(f"no cost file at {path}")
    spec = importlib.util.spec_from_file_location(f"dexteleop_cost_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CostFunctionError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any error in the user's file is reported
        raise CostFunctionError(f"{path}: {type(e).__name__}: {e}") from None
    return checked_cost(getattr(module, "cost", None), fingers, where=str(path))


def compile_cost(
    source: str, fingers: tuple[str, ...], *, where: str = "cost code", probe_size: int = 5
) -> Cost:
    """A cost function from Python source text defining ``cost(tips)`` (as in a cost file;
    ``torch``, ``math`` and ``np`` are available), checked like :func:`load_cost_file`."""
    namespace: dict[str, object] = {"torch": torch, "math": math, "np": np}
    try:
        exec(compile(source, f"<{where}>", "exec"), namespace)
    except Exception as e:  # noqa: BLE001 - any error in the user's code is reported
        raise CostFunctionError(f"{where}: {type(e).__name__}: {e}") from None
    return checked_cost(namespace.get("cost"), fingers, where=where, probe_size=probe_size)


def checked_cost(
    fn: object, fingers: tuple[str, ...], *, where: str = "cost", probe_size: int = 5
) -> Cost:
    """Wrap a user's ``cost(tips (N, F, 3)) -> (N,)`` as a planner cost, after checking it
    on a probe batch of ``probe_size`` hands (callable, right shape, finite). While
    planning, a result of the wrong shape raises CostFunctionError; NaN counts as
    infinitely bad."""
    if not callable(fn):
        raise CostFunctionError(f"{where}: defines no callable 'cost(tips)'")
    n = max(5, int(probe_size))
    probe = torch.zeros(n, len(fingers), 3)
    probe[:, :, 0] = torch.linspace(0.02, 0.12, n)[:, None]
    try:
        out = torch.as_tensor(fn(probe), dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - any error in the user's function is reported
        raise CostFunctionError(f"{where}: cost(tips) failed: {type(e).__name__}: {e}") from None
    if out.shape != (n,):
        raise CostFunctionError(
            f"{where}: cost(tips) must return one number per sample, shape (N,); "
            f"got {tuple(out.shape)}"
        )
    if not bool(torch.isfinite(out).all()):
        raise CostFunctionError(f"{where}: cost(tips) returned NaN or infinity")

    def cost(states: torch.Tensor) -> torch.Tensor:
        tips = states[:, -1].reshape(states.shape[0], len(fingers), 3)
        value = torch.as_tensor(fn(tips), dtype=torch.float32)
        if value.shape != (states.shape[0],):
            raise CostFunctionError(
                f"{where}: cost(tips) returned shape {tuple(value.shape)} for "
                f"{states.shape[0]} samples"
            )
        return torch.where(torch.isfinite(value), value, torch.full_like(value, math.inf))

    return cost
