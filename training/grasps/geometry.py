"""Surface geometry of the primitive objects, in the object's own frame.

Shapes follow MuJoCo's geom conventions (``size`` as in :class:`assets.objects.ObjectSpec`):
box = half-extents (3,), sphere = radius (1,), cylinder and capsule = radius, half-length of
the straight part along z (2,). Normals point out of the object. Everything is vectorised
over points: ``(n, 3)`` in, ``(n, 3)`` out.
"""

from __future__ import annotations

import numpy as np

SHAPES = ("box", "sphere", "cylinder", "capsule")


def _check(shape: str, size: np.ndarray) -> np.ndarray:
    size = np.asarray(size, dtype=float)
    need = {"box": 3, "sphere": 1, "cylinder": 2, "capsule": 2}
    if shape not in need:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    if size.shape[0] < need[shape] or np.any(size[: need[shape]] <= 0):
        raise ValueError(f"{shape} needs {need[shape]} positive sizes, got {size.tolist()}")
    return size[: need[shape]]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def sample_surface(
    shape: str, size: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniformly distributed over the surface by area, with outward normals.

    Returns:
        points (n, 3), normals (n, 3), object frame.
    """
    s = _check(shape, size)
    if shape == "sphere":
        u = _unit(rng.normal(size=(n, 3)))
        return s[0] * u, u
    if shape == "box":
        hx, hy, hz = s
        areas = np.array([hy * hz, hy * hz, hx * hz, hx * hz, hx * hy, hx * hy])
        face = rng.choice(6, size=n, p=areas / areas.sum())
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        p = rng.uniform(-1, 1, size=(n, 3)) * s
        p[np.arange(n), axis] = sign * s[axis]
        normals = np.zeros((n, 3))
        normals[np.arange(n), axis] = sign
        return p, normals
    r, h = s
    if shape == "cylinder":
        side, cap = 2 * np.pi * r * 2 * h, np.pi * r**2
        kind = rng.choice(3, size=n, p=np.array([side, cap, cap]) / (side + 2 * cap))
        phi = rng.uniform(0, 2 * np.pi, n)
        rad = r * np.sqrt(rng.uniform(0, 1, n))
        p = np.stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(-h, h, n)], axis=1)
        normals = np.stack([np.cos(phi), np.sin(phi), np.zeros(n)], axis=1)
        for k, sign in ((1, 1.0), (2, -1.0)):
            m = kind == k
            p[m] = np.stack(
                [rad[m] * np.cos(phi[m]), rad[m] * np.sin(phi[m]), np.full(m.sum(), sign * h)], 1
            )
            normals[m] = [0.0, 0.0, sign]
        return p, normals
    # capsule: a cylinder side plus two hemispheres
    side, caps = 2 * np.pi * r * 2 * h, 4 * np.pi * r**2
    on_side = rng.uniform(0, side + caps, n) < side
    u = _unit(rng.normal(size=(n, 3)))
    centre = np.zeros((n, 3))
    centre[:, 2] = np.where(u[:, 2] >= 0, h, -h)
    phi = rng.uniform(0, 2 * np.pi, n)
    ring = np.stack([np.cos(phi), np.sin(phi), np.zeros(n)], axis=1)
    normals = np.where(on_side[:, None], ring, u)
    p = np.where(
        on_side[:, None], r * ring + np.c_[0 * phi, 0 * phi, rng.uniform(-h, h, n)], centre + r * u
    )
    return p, normals


def closest_surface(
    shape: str, size: np.ndarray, pts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest surface point, its outward normal and the signed distance of each point.

    Args:
        pts: (n, 3) query points, object frame.

    Returns:
        surface (n, 3), normal (n, 3), signed distance (n,) (negative inside).
    """
    s = _check(shape, size)
    pts = np.atleast_2d(np.asarray(pts, dtype=float))
    if shape == "sphere":
        n = _unit(pts)
        d = np.linalg.norm(pts, axis=1) - s[0]
        return s[0] * n, n, d
    if shape == "capsule":
        r, h = s
        axis = np.zeros_like(pts)
        axis[:, 2] = np.clip(pts[:, 2], -h, h)
        n = _unit(pts - axis)
        d = np.linalg.norm(pts - axis, axis=1) - r
        return axis + r * n, n, d
    if shape == "box":
        q = np.abs(pts) - s
        outside = np.any(q > 0, axis=1)
        surf = np.clip(pts, -s, s)
        normal = np.zeros_like(pts)
        # outside: the clamped point; inside: push out through the nearest face
        normal[outside] = _unit(pts[outside] - surf[outside])
        ins = ~outside
        if np.any(ins):
            axis = np.argmax(q[ins], axis=1)
            idx = np.flatnonzero(ins)
            sign = np.where(pts[idx, axis] >= 0, 1.0, -1.0)
            surf[idx, axis] = sign * s[axis]
            normal[idx, axis] = sign
        d = np.where(outside, np.linalg.norm(np.maximum(q, 0), axis=1), np.max(q, axis=1))
        return surf, normal, d
    # cylinder
    r, h = s
    rho = np.linalg.norm(pts[:, :2], axis=1)
    radial = np.where(
        rho[:, None] > 1e-12, pts[:, :2] / np.maximum(rho, 1e-12)[:, None], [1.0, 0.0]
    )
    dr, dz = rho - r, np.abs(pts[:, 2]) - h
    sz = np.where(pts[:, 2] >= 0, 1.0, -1.0)
    surf = np.empty_like(pts)
    normal = np.zeros_like(pts)
    out_r, out_z = dr > 0, dz > 0
    both = out_r & out_z
    # outside past both the side and a cap: the rim
    surf[:, :2] = np.where(out_r[:, None], radial * r, pts[:, :2])
    surf[:, 2] = np.where(out_z, sz * h, pts[:, 2])
    d = np.where(both, np.hypot(dr, dz), np.maximum(dr, dz))
    side = (~out_z & out_r) | (~out_r & ~out_z & (dr >= dz))
    cap = ~side & ~both
    normal[side, :2] = radial[side]
    surf[side & ~out_r, :2] = radial[side & ~out_r] * r
    normal[cap, 2] = sz[cap]
    surf[cap, 2] = sz[cap] * h
    normal[both] = _unit(pts[both] - surf[both])
    return surf, normal, d


def net_force_residual(normals: np.ndarray, f_max: float = 4.0) -> float:
    """The simplified grasp analysis of DexterityGen (Appendix B): the smallest net force
    ``|sum_i f_i n_i|`` over force magnitudes with one force fixed at 1 and the others in
    ``[0, f_max]``, minimised over which force is fixed (one subproblem per contact).

    A small residual means the contacts can squeeze the object in balance, without
    friction. Net torque and friction cones are left out on purpose, as in the paper: the
    simulation (and the RL policy) decide the rest.

    Args:
        normals: (k, 3) outward surface normals at the contacts, k >= 2.

    Returns:
        The residual norm (0 = perfectly balanced; 1 = one unopposed force).
    """
    from scipy.optimize import lsq_linear, nnls

    n = np.asarray(normals, dtype=float)
    if n.ndim != 2 or n.shape[1] != 3 or n.shape[0] < 2:
        raise ValueError("normals must be (k >= 2, 3)")
    best = np.inf
    for j in range(n.shape[0]):
        others = np.delete(n, j, axis=0).T  # (3, k-1)
        f, _ = nnls(others, -n[j])  # fast; bounded solve only when a force exceeds f_max
        if np.any(f > f_max):
            f = lsq_linear(others, -n[j], bounds=(0.0, f_max)).x
        best = min(best, float(np.linalg.norm(others @ f + n[j])))
    return best
