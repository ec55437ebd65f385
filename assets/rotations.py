"""Batched quaternion helpers (wxyz, numpy), for many worlds at once."""

from __future__ import annotations

import numpy as np


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product, (..., 4) x (..., 4)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle of the rotation between orientations ``a`` and ``b``, rad, (...)."""
    dot = np.abs(np.sum(a * b, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The representative with w >= 0 (q and -q are the same rotation)."""
    return np.where(q[..., :1] < 0, -q, q)


def quat_rotvec(q: np.ndarray) -> np.ndarray:
    """The rotation vector (axis times angle, rad; angle in [0, pi]) of unit quaternions
    ``q`` (..., 4)."""
    q = quat_canonical(q)
    s = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(s, q[..., 0])
    return q[..., 1:] * (angle / np.maximum(s, 1e-12))[..., None]


def axis_angle_quat(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Quaternions rotating by ``angle`` (...) about unit ``axis`` (..., 3)."""
    half = 0.5 * np.asarray(angle)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def turn_about_axis(
    quat_prev: np.ndarray, quat: np.ndarray, frame_rot: np.ndarray, axis: np.ndarray
) -> tuple[float, float]:
    """An object's turn between two world orientations (wxyz), expressed in a frame
    (``frame_rot``: its (3, 3) world rotation, e.g. the palm's) and split about the unit
    ``axis`` of that frame: (signed angle about the axis, magnitude of the rest), rad."""
    turn = quat_rotvec(quat_mul(np.asarray(quat)[None], quat_conj(np.asarray(quat_prev)[None])))[0]
    turn = np.asarray(frame_rot)[:3, :3].T @ turn
    k = np.asarray(axis, dtype=float)
    along = float(turn @ k)
    return along, float(np.linalg.norm(turn - along * k))
