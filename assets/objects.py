"""Objects that can be placed in the simulated hand (DexNDM / DexterityGen style primitives).

:data:`OBJECTS` are the app's named objects. The RL families (:data:`FAMILIES`) are what
DexterityGen trains on (random geometric primitives, Sec. III-B): a cube, cuboids of aspect
ratio 2 and 3, a cylinder, a sphere and a capsule, each scaled by a factor drawn once per
instance (:func:`make_instance`); every instance has its own grasp cache (grasps depend on
size). :func:`resolve_object` gives the simulated hand either kind at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class ObjectSpec:
    """A rigid primitive.

    Attributes:
        shape: a MuJoCo geom type name: ``box``, ``cylinder``, ``sphere``, ``capsule``.
        size: MuJoCo geom size (half-extents for a box; radius, half-length for a cylinder).
        mass_kg: default mass. friction: default sliding friction coefficient.
    """

    name: str
    shape: str
    size: tuple[float, ...]
    mass_kg: float
    friction: float = 0.8

    @property
    def half_height_m(self) -> float:
        """Half of the extent along the object's local z axis (for placing it)."""
        if self.shape in ("box",):
            return self.size[2]
        if self.shape == "sphere":
            return self.size[0]
        return self.size[1] + (self.size[0] if self.shape == "capsule" else 0.0)


OBJECTS: dict[str, ObjectSpec] = {
    o.name: o
    for o in (
        ObjectSpec("cube", "box", (0.025, 0.025, 0.025), 0.05),  # 5 cm cube
        ObjectSpec("cylinder", "cylinder", (0.022, 0.035), 0.06),
        ObjectSpec("sphere", "sphere", (0.028,), 0.05),
        ObjectSpec("long_cuboid", "box", (0.015, 0.06, 0.015), 0.06),  # aspect ratio 4
    )
}

_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
}


def geom_type(shape: str) -> mujoco.mjtGeom:
    try:
        return _GEOM_TYPES[shape]
    except KeyError:
        raise ValueError(f"unknown object shape {shape!r}; known: {sorted(_GEOM_TYPES)}") from None


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
    """``per_family`` instances of each family with scales drawn from ``scale_range`` (one
    instance: the middle of the range)."""
    rng = np.random.default_rng(seed)
    out = []
    for fam in families:
        mid = 0.5 * (scale_range[0] + scale_range[1])
        scales = [mid] if per_family == 1 else rng.uniform(*scale_range, per_family)
        out.extend(make_instance(fam, round(float(s), 2)) for s in scales)
    return out


def resolve_object(name: str, scale: float = 1.0) -> ObjectSpec:
    """An object by name at ``scale``: a named object (:data:`OBJECTS`) as it is at scale 1,
    else an RL family's instance (:func:`make_instance`, the same object a policy trained
    on that family and scale saw), else a named object scaled (mass with the volume)."""
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"object scale must be positive, got {scale}")
    if name in OBJECTS and scale == 1.0:
        return OBJECTS[name]
    if name in FAMILIES:
        return make_instance(name, round(float(scale), 2))
    if name in OBJECTS:
        o = OBJECTS[name]
        return ObjectSpec(
            f"{name}_s{scale:.2f}",
            o.shape,
            tuple(round(v * scale, 5) for v in o.size),
            round(o.mass_kg * scale**3, 5),
            o.friction,
        )
    known = sorted(set(OBJECTS) | set(FAMILIES))
    raise ValueError(f"unknown object {name!r}; known: {', '.join(known)}")
