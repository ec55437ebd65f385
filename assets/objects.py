"""Objects that can be placed in the simulated hand (DexNDM / DexterityGen style primitives)."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco


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
