"""The stand-in real hand: the simulated hand with dynamics no trainer ever sees.

No real hand is attached to this project's machines, so the sim-to-real experiments of
DexNDM (``../shared/papers/dexndm.md`` Sec. 3.3, 4.2) run against a "reality" that differs
from the training physics the way a real hand does (``--robot sim:dynamics=reality``):

- **PD gains per joint**: DexNDM's gains identified on its real LEAP hand (Table 16, kp
  1.53-4.82, kv 0.027-0.199) in place of the uniform kp 3 / kv 0.1 every trainer uses (their
  randomisation covers kp x0.8-1.2, kv x0.7-1.3). The table lists joints in Isaac Gym's order;
  its link masses (Table 17) show the links in the order index, thumb, middle, ring (the
  thumb's group is the one with the 3 g link), and the gains are assigned in that finger
  order, each finger's four in our joint order.
- **Link masses**: Table 17's identified masses, grouped the same way (palm 0.257 kg);
  inertias scale with the mass.
- **Friction loss** per joint, drawn from U(0.02, 0.05) N m (training: 0.01).
- **Backlash**: a play of U(0.005, 0.015) rad per joint between the commanded and the
  servo's effective target (the effective target follows the command only once the command
  leaves the play band: reversals lose up to the play).
- **Latency**: the target sent at a tick takes effect one control step later.
- **Solver**: a 2 ms timestep (25 substeps at 20 Hz; training runs 10 ms) and the Menagerie
  model's own contact settings (elliptic cone, impratio 100; training: impratio 10).

The Allegro has no identified table here; its stand-in scales the gains by a seeded
U(0.5, 1.6) (kp) and U(0.3, 2.0) (kv) per joint and the link masses by U(0.8, 1.25).

The draws are seeded (``reality_seed``, default 0) so that every experiment meets the same
"real hand". Nothing under ``training/`` or ``controllers/`` imports this module (a test
checks): models learn about this hand only from data collected on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assets.hands import Hand
from assets.physics import Param, Physics, Solver

#: DexNDM Table 16: identified PD gains of its real LEAP hand, Isaac Gym joint order.
DEXNDM_KP = (
    3.52,
    1.78,
    2.84,
    2.30,
    1.94,
    2.18,
    2.55,
    2.01,
    2.26,
    2.30,
    3.76,
    4.64,
    1.86,
    3.44,
    4.82,
    1.53,
)
DEXNDM_KV = (
    0.194,
    0.106,
    0.091,
    0.195,
    0.199,
    0.192,
    0.149,
    0.050,
    0.088,
    0.135,
    0.027,
    0.081,
    0.123,
    0.042,
    0.082,
    0.068,
)
#: DexNDM Table 17: identified link masses (kg), the non-virtual links in Isaac Gym's order:
#: the palm, then four groups of four links.
DEXNDM_PALM_KG = 0.257
DEXNDM_LINK_KG = (
    (0.0241, 0.0190, 0.0279, 0.0105),
    (0.0468, 0.0030, 0.0365, 0.0538),
    (0.0312, 0.0263, 0.0211, 0.0163),
    (0.0503, 0.0343, 0.0476, 0.0223),
)
#: The fingers of Table 16/17's groups (the second group is the thumb: its 3 g link is the
#: LEAP thumb's small base), as our finger indices (index, middle, ring, thumb = 0, 1, 2, 3).
DEXNDM_GROUP_FINGER = (0, 3, 1, 2)
#: Our LEAP bodies per finger (index, middle, ring, thumb), base to tip.
LEAP_FINGER_BODIES = (
    ("if_bs", "if_px", "if_md", "if_ds"),
    ("mf_bs", "mf_px", "mf_md", "mf_ds"),
    ("rf_bs", "rf_px", "rf_md", "rf_ds"),
    ("th_mp", "th_bs", "th_px", "th_ds"),
)

#: The stand-in's solver: 2 ms and the Menagerie model's own cone and impratio.
REALITY_SOLVER = Solver(
    timestep_s=0.002,
    integrator="implicitfast",
    source="the stand-in real hand: 2 ms, the Menagerie model's contact settings",
)
REALITY_LATENCY_STEPS = 1
#: The parts of the gap :meth:`RealityGap.reverted` can set back to the training physics
#: (``gains`` = ``kp`` + ``kv``).
GAP_COMPONENTS = ("gains", "kp", "kv", "mass", "friction", "backlash", "latency", "solver")
FRICTIONLOSS_RANGE = (0.02, 0.05)
BACKLASH_RANGE_RAD = (0.005, 0.015)


@dataclass(frozen=True)
class RealityGap:
    """The stand-in hand's dynamics (see the module docstring).

    Attributes:
        hand: the hand's name. seed: the draw's seed.
        kp / kv / frictionloss / backlash_rad: per joint, the hand's joint order.
        body_mass_kg: the hand's bodies (names without the scene prefix) and their masses.
        latency_steps: control steps between sending a target and its taking effect.
        solver: the physics' solver settings.
    """

    hand: str
    seed: int
    kp: tuple[float, ...]
    kv: tuple[float, ...]
    frictionloss: tuple[float, ...]
    backlash_rad: tuple[float, ...]
    body_mass_kg: dict[str, float] = field(default_factory=dict)
    latency_steps: int = REALITY_LATENCY_STEPS
    solver: Solver = REALITY_SOLVER

    def physics(self, nominal: Physics) -> Physics:
        """The nominal physics (with its actuator model) turned into the stand-in's."""
        if nominal.actuators is None:
            raise ValueError("the stand-in real hand needs an actuator model (physics 'servo')")
        src = f"the stand-in real hand (devices.robots.reality, seed {self.seed})"
        act = dataclasses.replace(
            nominal.actuators,
            kp=Param(self.kp, src),
            kv=Param(self.kv, src),
            frictionloss=Param(self.frictionloss, src),
        )
        return Physics("reality", nominal.hand, act, self.solver)

    def reverted(self, components: str | tuple[str, ...], nominal: Physics) -> RealityGap:
        """This gap with ``components`` (:data:`GAP_COMPONENTS`; a ``+``-separated string or
        a tuple) set back to the ``nominal`` physics: the stand-in without part of its gap,
        to measure what each part costs (``bench/dexndm_gap.py``)."""
        names = (
            tuple(c for c in components.split("+") if c)
            if isinstance(components, str)
            else components
        )
        unknown = sorted(set(names) - set(GAP_COMPONENTS))
        if unknown:
            raise ValueError(
                f"unknown gap components {unknown}; known: {', '.join(GAP_COMPONENTS)}"
            )
        if nominal.actuators is None:
            raise ValueError("the stand-in real hand needs an actuator model (physics 'servo')")
        arr = nominal.actuators.arrays(len(self.kp))
        nom = {k: tuple(float(x) for x in arr[k]) for k in ("kp", "kv", "frictionloss")}
        change: dict[str, Any] = {}
        for c in names:
            if c in ("gains", "kp"):
                change["kp"] = nom["kp"]
            if c in ("gains", "kv"):
                change["kv"] = nom["kv"]
            if c == "mass":
                change["body_mass_kg"] = {}
            if c == "friction":
                change["frictionloss"] = nom["frictionloss"]
            if c == "backlash":
                change["backlash_rad"] = (0.0,) * len(self.kp)
            if c == "latency":
                change["latency_steps"] = 0
            if c == "solver":
                change["solver"] = nominal.solver
        return dataclasses.replace(self, **change)

    def apply_masses(self, spec: Any, prefix: str) -> None:
        """Set the hand's link masses in a scene spec (inertias scaled alike)."""
        for name, mass in self.body_mass_kg.items():
            body = spec.body(prefix + name)
            if body is None:
                raise ValueError(f"{self.hand}: body {name!r} is not in the scene")
            ratio = mass / body.mass if body.mass > 0 else 1.0
            body.mass = mass
            body.inertia = [v * ratio for v in body.inertia]

    def describe(self) -> dict[str, Any]:
        """The parameters, for reports and the documentation (never for a trainer)."""
        d = dataclasses.asdict(self)
        d["solver"] = {k: v for k, v in dataclasses.asdict(self.solver).items() if v is not None}
        return d


def reality_gap(hand: Hand, seed: int = 0) -> RealityGap:
    """The stand-in real hand's dynamics for ``hand``, drawn with ``seed``."""
    n = len(hand.joint_names)
    rng = np.random.default_rng([seed, 7001])
    friction = rng.uniform(*FRICTIONLOSS_RANGE, n)
    backlash = rng.uniform(*BACKLASH_RANGE_RAD, n)
    masses: dict[str, float] = {}
    if hand.name == "leap":
        kp, kv = np.zeros(n), np.zeros(n)
        for group, finger in enumerate(DEXNDM_GROUP_FINGER):
            kp[4 * finger : 4 * finger + 4] = DEXNDM_KP[4 * group : 4 * group + 4]
            kv[4 * finger : 4 * finger + 4] = DEXNDM_KV[4 * group : 4 * group + 4]
            for body, kg in zip(LEAP_FINGER_BODIES[finger], DEXNDM_LINK_KG[group], strict=True):
                masses[body] = kg
        masses["palm"] = DEXNDM_PALM_KG
    else:
        nominal = hand.physics().actuators
        if nominal is None:
            raise ValueError(f"{hand.name}: no actuator model for a stand-in")
        a = nominal.arrays(n)
        kp = a["kp"] * rng.uniform(0.5, 1.6, n)
        kv = a["kv"] * rng.uniform(0.3, 2.0, n)
        model = hand.mjspec().compile()
        for b in range(1, model.nbody):
            if model.body_mass[b] > 0:
                masses[model.body(b).name] = float(model.body_mass[b] * rng.uniform(0.8, 1.25))
    return RealityGap(
        hand=hand.name,
        seed=int(seed),
        kp=tuple(float(x) for x in kp),
        kv=tuple(float(x) for x in kv),
        frictionloss=tuple(float(x) for x in friction),
        backlash_rad=tuple(float(x) for x in backlash),
        body_mass_kg=masses,
    )


class Backlash:
    """A play per joint between the command and the effective target: the effective
    target stays while the command moves within ``play / 2`` of it and is dragged along
    (lagging by ``play / 2``) once the command leaves the band."""

    def __init__(self, play_rad: np.ndarray) -> None:
        self.half = np.asarray(play_rad, dtype=float) / 2.0
        self.effective: np.ndarray | None = None

    def reset(self, q: np.ndarray) -> None:
        self.effective = np.asarray(q, dtype=float).copy()

    def __call__(self, command: np.ndarray) -> np.ndarray:
        c = np.asarray(command, dtype=float)
        if self.effective is None:
            self.effective = c.copy()
        e = self.effective
        self.effective = np.clip(e, c - self.half, c + self.half)
        return self.effective.copy()


__all__ = ["GAP_COMPONENTS", "REALITY_SOLVER", "Backlash", "RealityGap", "reality_gap"]
