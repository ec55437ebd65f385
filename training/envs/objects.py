"""Object families for RL and their randomly scaled instances.

DexterityGen trains on random geometric primitives (Sec. III-B); these are ours: a cube,
cuboids of aspect ratio 2 and 3, a cylinder, a sphere and a capsule, each scaled by a factor
drawn once per instance. Every instance has its own grasp cache (grasps depend on size).
"""

from __future__ import annotations

import numpy as np

from assets.objects import ObjectSpec

#: kg/m^3: a 5 cm cube weighs 50 g (light wood, a foam-filled part).
DENSITY_KG_M3 = 400.0

#: name -> (MuJoCo shape, base size).
FAMILIES: dict[str, tuple[str, tuple[float, ...]]] = {
    "cube": ("box", (0.025, 0.025, 0.025)),
    "cuboid_ar2": ("box", (0.018, 0.018, 0.036)),
    "cuboid_ar3": ("box", (0.015, 0.022, 0.045)),
    "cylinder": ("cylinder", (0.022, 0.032)),
    "sphere": ("sphere", (0.028,)),
    "capsule": ("capsule", (0.018, 0.022)),
}


def volume_m3(shape: str, size: tuple[float, ...]) -> float:
    if shape == "box":
        return 8.0 * size[0] * size[1] * size[2]
    if shape == "sphere":
        return 4.0 / 3.0 * np.pi * size[0] ** 3
    if shape == "cylinder":
        return np.pi * size[0] ** 2 * 2 * size[1]
    if shape == "capsule":
        return np.pi * size[0] ** 2 * 2 * size[1] + 4.0 / 3.0 * np.pi * size[0] ** 3
    raise ValueError(f"unknown shape {shape!r}")


def make_instance(family: str, scale: float) -> ObjectSpec:
    """The family's primitive scaled by ``scale``, named ``<family>_s<scale>``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown object family {family!r}; known: {', '.join(FAMILIES)}")
    if not 0.3 <= scale <= 3.0:
        raise ValueError(f"object scale {scale} outside [0.3, 3]")
    shape, size = FAMILIES[family]
    size = tuple(round(s * scale, 5) for s in size)
    return ObjectSpec(
        f"{family}_s{scale:.2f}", shape, size, round(DENSITY_KG_M3 * volume_m3(shape, size), 5)
    )


def sample_instances(
    families: tuple[str, ...], per_family: int, scale_range: tuple[float, float], seed: int
) -> list[ObjectSpec]:
    """``per_family`` instances of each family with scales drawn from ``scale_range``."""
    rng = np.random.default_rng(seed)
    out = []
    for fam in families:
        scales = [1.0] if per_family == 1 else rng.uniform(*scale_range, per_family)
        out.extend(make_instance(fam, round(float(s), 2)) for s in scales)
    return out
