"""Grasp caches on disk: one ``.npz`` per (hand, object instance), made on first use.

Shipped caches live in ``assets/grasps/<hand>/``; generated ones go to the cache folder the
caller names (default ``out/grasps``) and are reused when they hold enough grasps.
"""

from __future__ import annotations

import logging
from pathlib import Path

from assets.hands import load_hand
from assets.objects import ObjectSpec
from training.grasps.generate import GraspConfig, GraspGenerator, GraspSet

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "grasps"
DEFAULT_CACHE = Path("out/grasps")


def cache_path(root: Path, hand: str, obj: ObjectSpec) -> Path:
    return Path(root) / hand / f"{obj.name}.npz"


def load_or_generate(
    hand: str,
    obj: ObjectSpec,
    *,
    n_base: int,
    n_rrt: int,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
) -> GraspSet:
    """Grasps of ``obj`` by ``hand``: the shipped cache, the local cache, or new ones.

    A cache counts when it holds at least ``n_base + n_rrt`` grasps of an object of the
    same shape and size; otherwise grasps are generated (Alg. 2) and saved to ``cache_dir``.
    """
    need = n_base + n_rrt
    roots = [SHIPPED] + ([Path(cache_dir)] if cache_dir is not None else [DEFAULT_CACHE])
    for root in roots:
        p = cache_path(root, hand, obj)
        if not p.exists():
            continue
        try:
            gs = GraspSet.load(p)
        except ValueError as e:
            log.warning("ignoring grasp cache: %s", e)
            continue
        same = gs.meta.get("shape") == obj.shape and gs.meta.get("size") == list(obj.size)
        if same and len(gs) >= need:
            return gs
    gen = GraspGenerator(load_hand(hand), obj, seed=seed, config=GraspConfig())
    gs = gen.generate(n_base, n_rrt, max_seconds=max_seconds)
    gs.save(cache_path(roots[-1], hand, obj))
    return gs
