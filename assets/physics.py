"""How a simulated hand is simulated: its actuator model and the solver settings, as data.

A :class:`Physics` is everything about a scene's dynamics that is not geometry: the hand's
joints and actuators (rotor inertia seen at the joint, passive damping, friction loss, the
torque the servo can give, the PD gains) and the solver (timestep, integrator, friction
cone, iterations). Each hand spec carries its actuator model (:class:`ActuatorModel`, every
value with its source) and the solver settings chosen for it by measurement
(:class:`Solver`). Two named physics exist for each hand:

- ``servo``: the hand's actuator model and its chosen solver settings; the default
  (:data:`DEFAULT_PHYSICS`).
- ``menagerie``: the Menagerie model as published (2 ms, its own joints and gains, no
  torque limit). The baseline, what the project ran on up to issue 18.

:func:`apply` writes a physics into an ``MjSpec``; it is the one place that does, and every
scene is built through it (``Hand.mjspec(physics=...)``, called by the app's scene, the RL
environments, grasp generation and MoDex's exploration hand). :meth:`Physics.describe` is
what a trained model records (``assets.checkpoint``) so that a controller run on other
physics can say so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The hand's actuator model and chosen solver settings.
SERVO_PHYSICS = "servo"
#: The Menagerie model as published (2 ms), the physics before issue 18.
BASELINE_PHYSICS = "menagerie"
#: The physics the app and every trainer use unless told otherwise.
DEFAULT_PHYSICS = SERVO_PHYSICS
PHYSICS_NAMES: tuple[str, ...] = (SERVO_PHYSICS, BASELINE_PHYSICS)

_INTEGRATORS = ("euler", "implicitfast", "implicit", "rk4")
_CONES = ("pyramidal", "elliptic")


@dataclass(frozen=True)
class Param:
    """One actuator-model quantity: a value for every joint, or one per joint (spec order),
    and where it comes from."""

    value: float | tuple[float, ...]
    source: str

    def array(self, n: int) -> np.ndarray:
        v = np.asarray(self.value, dtype=float)
        if v.ndim == 0:
            return np.full(n, float(v))
        if v.shape != (n,):
            raise ValueError(f"expected one value or {n}, got {v.shape[0]}")
        return v.copy()


@dataclass(frozen=True)
class ActuatorModel:
    """The real hand's actuators as MuJoCo joint and position-actuator parameters.

    Attributes:
        servo: what drives each joint.
        armature: rotor inertia reflected through the gearbox, kg m^2 (rotor inertia x
            gear ratio^2).
        damping: passive joint damping, N m s / rad.
        frictionloss: dry friction at the joint, N m.
        torque_limit: the most torque the actuator gives, N m (MuJoCo
            ``actuatorfrcrange``: the PD's output is clipped to it, as the servo's current
            limit clips its current).
        kp / kv: the position actuator's gains, N m / rad and N m s / rad.
    """

    servo: str
    armature: Param
    damping: Param
    frictionloss: Param
    torque_limit: Param
    kp: Param
    kv: Param

    FIELDS = ("armature", "damping", "frictionloss", "torque_limit", "kp", "kv")

    def arrays(self, n: int) -> dict[str, np.ndarray]:
        """Every field as an (n,) array in the hand's joint order."""
        out = {}
        for name in self.FIELDS:
            try:
                out[name] = getattr(self, name).array(n)
            except ValueError as e:
                raise ValueError(f"actuator model {name}: {e}") from None
            if not np.all(np.isfinite(out[name])) or np.any(out[name] < 0):
                raise ValueError(f"actuator model {name}: values must be finite and >= 0")
        if np.any(out["torque_limit"] <= 0) or np.any(out["kp"] <= 0):
            raise ValueError("actuator model: torque limits and kp must be positive")
        return out

    def sources(self) -> dict[str, str]:
        return {name: getattr(self, name).source for name in self.FIELDS}


@dataclass(frozen=True)
class Solver:
    """MuJoCo solver settings; None keeps the model's own.

    Attributes:
        timestep_s: physics step. The control period must be a whole number of them.
        integrator: ``euler``, ``implicitfast``, ``implicit`` or ``rk4``.
        cone: friction cone, ``pyramidal`` or ``elliptic``.
        impratio: frictional-to-normal constraint impedance ratio (elliptic cones).
        iterations / ls_iterations: solver and line-search iteration caps.
        source: why these values (the measurement that chose them).
    """

    timestep_s: float | None = None
    integrator: str | None = None
    cone: str | None = None
    impratio: float | None = None
    iterations: int | None = None
    ls_iterations: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.timestep_s is not None and not (0 < self.timestep_s < 0.1):
            raise ValueError(f"timestep must be in (0, 0.1) s, got {self.timestep_s}")
        if self.integrator is not None and self.integrator not in _INTEGRATORS:
            raise ValueError(f"unknown integrator {self.integrator!r}; known: {list(_INTEGRATORS)}")
        if self.cone is not None and self.cone not in _CONES:
            raise ValueError(f"unknown cone {self.cone!r}; known: {list(_CONES)}")
        for name in ("iterations", "ls_iterations"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass(frozen=True)
class Physics:
    """A hand's dynamics: its actuator model (None: the Menagerie model's own joints and
    actuators) and solver settings.

    ``name`` is ``menagerie`` or ``servo`` for the two named physics; variants made with
    :meth:`replace` (benchmarks, sweeps) carry a descriptive name of their own.
    """

    name: str
    hand: str
    actuators: ActuatorModel | None
    solver: Solver

    def replace(self, name: str | None = None, **solver: Any) -> Physics:
        """This physics with other solver settings (``timestep_s=0.005``, ``cone=...``)."""
        return dataclasses.replace(
            self, name=name or self.name, solver=dataclasses.replace(self.solver, **solver)
        )

    def without_actuators(self, name: str | None = None) -> Physics:
        return dataclasses.replace(self, name=name or self.name, actuators=None)

    def with_actuators(self, actuators: ActuatorModel, name: str | None = None) -> Physics:
        return dataclasses.replace(self, name=name or self.name, actuators=actuators)

    def describe(self, model: Any, joint_ids: Any, *, substeps: int) -> dict:
        """What a trained model records (``assets.checkpoint.physics``): the name, the
        compiled model's timestep, solver and per-joint actuator values."""
        from assets.checkpoint import physics as record

        return record(
            self.hand, name=self.name, **model_values(model, joint_ids), substeps=substeps
        )


def model_values(model: Any, joint_ids: Any) -> dict[str, Any]:
    """The physics quantities of a compiled model for the joints ``joint_ids`` (each driven
    by one position actuator): timestep, integrator, cone, and per joint armature, damping,
    friction loss, torque limit (inf when unlimited), kp and kv."""
    import mujoco

    jids = [int(j) for j in joint_ids]
    act_of_joint = {
        int(model.actuator_trnid[a, 0]): a
        for a in range(model.nu)
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
    }
    acts = [act_of_joint[j] for j in jids]
    dofs = [int(model.jnt_dofadr[j]) for j in jids]
    limited = model.jnt_actfrclimited[jids].astype(bool)
    limit = np.where(limited, model.jnt_actfrcrange[jids, 1], np.inf)
    act_limited = model.actuator_forcelimited[acts].astype(bool)
    limit = np.minimum(limit, np.where(act_limited, model.actuator_forcerange[acts, 1], np.inf))
    return {
        "timestep_s": float(model.opt.timestep),
        "integrator": mujoco.mjtIntegrator(model.opt.integrator)
        .name.removeprefix("mjINT_")
        .lower(),
        "cone": mujoco.mjtCone(model.opt.cone).name.removeprefix("mjCONE_").lower(),
        "armature": model.dof_armature[dofs].tolist(),
        "damping": model.dof_damping[dofs].tolist(),
        "frictionloss": model.dof_frictionloss[dofs].tolist(),
        "torque_limit": limit.tolist(),
        "kp": model.actuator_gainprm[acts, 0].tolist(),
        "kv": (0.0 - model.actuator_biasprm[acts, 2]).tolist(),
    }


def apply(spec: Any, physics: Physics, joint_names: tuple[str, ...], prefix: str = "") -> None:
    """Write ``physics`` into ``spec``: the solver options and, when the physics has an
    actuator model, every listed joint's armature, damping, friction loss and torque limit
    and its position actuator's gains. ``prefix``: the joints' name prefix in ``spec``.

    The one place that turns a :class:`Physics` into a model (see the module docstring).
    """
    import mujoco

    s = physics.solver
    opt = spec.option
    if s.timestep_s is not None:
        opt.timestep = s.timestep_s
    if s.integrator is not None:
        opt.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{s.integrator.upper()}")
    if s.cone is not None:
        opt.cone = getattr(mujoco.mjtCone, f"mjCONE_{s.cone.upper()}")
    if s.impratio is not None:
        opt.impratio = s.impratio
    if s.iterations is not None:
        opt.iterations = s.iterations
    if s.ls_iterations is not None:
        opt.ls_iterations = s.ls_iterations
    if physics.actuators is None:
        return
    values = physics.actuators.arrays(len(joint_names))
    actuators = {}
    for a in spec.actuators:
        if a.trntype == mujoco.mjtTrn.mjTRN_JOINT:
            actuators[a.target] = a
    for i, name in enumerate(joint_names):
        joint = spec.joint(prefix + name)
        if joint is None:
            raise ValueError(f"{physics.hand}: joint {prefix + name!r} is not in the scene")
        act = actuators.get(prefix + name)
        if act is None:
            raise ValueError(f"{physics.hand}: joint {name!r} has no position actuator")
        joint.armature = values["armature"][i]
        joint.damping = [values["damping"][i], 0.0, 0.0]  # linear; no polynomial terms
        joint.frictionloss = values["frictionloss"][i]
        tau = values["torque_limit"][i]
        joint.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
        joint.actfrcrange = [-tau, tau]
        kp, kv = values["kp"][i], values["kv"][i]
        act.gainprm[0] = kp
        act.biasprm[0] = 0.0
        act.biasprm[1] = -kp
        act.biasprm[2] = -kv
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE


def substeps(rate_hz: float, timestep_s: float) -> int:
    """Physics steps per control period; the period must be a whole number of steps."""
    n = round(1.0 / (rate_hz * timestep_s))
    if n < 1 or abs(n * timestep_s * rate_hz - 1.0) > 1e-6:
        raise ValueError(
            f"control period 1/{rate_hz:g} s is not a whole number of {timestep_s:g} s timesteps"
        )
    return n


def differences(trained: dict, here: dict) -> list[str]:
    """What differs between two physics descriptions (:meth:`Physics.describe`): each key
    both have whose values differ (numbers to a relative 1e-6), as ``key trained -> here``.
    Empty when they agree or either is empty."""
    out = []
    if not trained or not here:
        return out
    for key in sorted(set(trained) & set(here)):
        a, b = trained[key], here[key]
        if isinstance(a, str) or isinstance(b, str):
            same = a == b
        else:
            x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            same = x.shape == y.shape and bool(
                np.all((x == y) | np.isclose(x, y, rtol=1e-6, atol=0.0))
            )
        if not same:
            out.append(f"{key} {_short(a)} -> {_short(b)}")
    return out


def note(trained: dict | None, running: dict | None) -> str:
    """One line saying how the physics a model was ``trained`` on differs from what the hand
    is ``running`` (:func:`differences`), or "" when they agree or either is unknown."""
    diffs = differences(trained or {}, running or {})
    if not diffs:
        return ""
    return f"trained on other physics ({(trained or {}).get('name', '?')}): " + "; ".join(diffs)


def _short(v: Any) -> str:
    if isinstance(v, list) and len(v) > 3:
        vals = sorted({round(float(x), 6) for x in v})
        return "[" + ", ".join(f"{x:g}" for x in vals[:4]) + (", ...]" if len(vals) > 4 else "]")
    return str(v)
