"""The hand backend interface: a simulated or real hand the control loop drives.

A backend is a :class:`Robot` subclass with a ``Config`` dataclass, registered by name in
:data:`ROBOTS` (``@ROBOTS.register("sim")``); ``--robot NAME[:key=value,...]`` builds it.
Every joint target goes through :meth:`Robot.send` (the joint :class:`SafetyFilter`) and
every wrist pose through :meth:`Robot.send_wrist` (the :class:`WristFilter`): there is no
other way to command a hand. Capabilities are declared, not probed: a simulated backend is a
:class:`Simulated` (full physics state to record, restore and render), a backend with a
movable wrist sets ``supports_wrist_pose``.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from assets.hands import Hand
from assets.registry import Registry
from devices.robots.safety import SafetyFilter
from devices.robots.wrist import WristFilter, WristLimits
from devices.tick import HandState

if TYPE_CHECKING:
    import mujoco

log = logging.getLogger(__name__)

#: Every hand backend by name: ``ROBOTS.make("sim", hand="leap")``.
ROBOTS: Registry[Robot] = Registry("robot")

#: Tolerance (rad) when counting targets outside the joint limits at the hand itself.
LIMIT_TOL_RAD = 1e-9


@dataclass(frozen=True)
class Fault:
    """Something wrong with the hand itself (a servo that stops answering, overloads or
    overheats; a finger whose frames stop): the loop holds the hand while one is active.

    Attributes:
        t: seconds since the backend connected.
        source: which part (``servo 5``, ``finger 2``, ``bus``).
        reason: what is wrong, in words (``no reply``, ``overload (hardware error 0x20)``).
    """

    t: float
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "source": self.source, "reason": self.reason}


class FaultLog:
    """Faults since connecting and the active one, for hands and arms (the one way a fault
    is recorded): :meth:`raise_fault` records and activates, the owner clears ``fault``."""

    #: what the log line calls the owner's faults
    fault_kind: ClassVar[str] = "hand"

    def reset_faults(self) -> None:
        """A new connection: no faults yet; fault times count from now."""
        self._t_connect = time.monotonic()
        #: every fault since connecting, in order; :attr:`fault` is the one holding the hand
        self.faults: list[Fault] = []
        self.fault: Fault | None = None

    def raise_fault(self, source: str, reason: str) -> Fault:
        """Record a fault and make it the active one (the loop holds the hand until it is
        cleared); the same active fault is not recorded twice."""
        if self.fault is not None and (self.fault.source, self.fault.reason) == (source, reason):
            return self.fault
        f = Fault(time.monotonic() - self._t_connect, source, reason)
        self.faults.append(f)
        self.fault = f
        log.error("%s fault: %s", self.fault_kind, f)
        return f


class Robot(abc.ABC, FaultLog):
    """A hand at a fixed control rate.

    Subclasses implement :meth:`_read` and :meth:`_write`. Callers use :meth:`send`, which
    passes every target through the hand's :class:`SafetyFilter`; there is no other way
    to write a target. The hand also counts, independently of the filter, every target that
    reached :meth:`_write` outside the joint limits (``limit_violations``, which must stay 0).
    """

    Config: ClassVar[type]
    #: Whether the backend moves its wrist (a mount or an arm) with :meth:`send_wrist`
    #: (a backend may set it per instance, e.g. only when its mount follows the operator).
    supports_wrist_pose: bool = False
    #: Whether targets move real hardware. Such a backend never runs on a virtual clock
    #: (``--fast``, counterfactual replay): its rate limits are per second of real time.
    #: True unless a backend says otherwise (the simulator does).
    drives_hardware: ClassVar[bool] = True

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> str | None:
        """None if the backend can be used on this machine, else why not (a missing driver
        or library, no port); cheap: ``dexteleop robots`` and the app call it to list.
        ``options``: the settings asked for (a given port is checked, not the default)."""
        return None

    def __init__(self, hand: Hand, rate_hz: float, wrist_limits: WristLimits | None = None) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.hand = hand
        self.rate_hz = float(rate_hz)
        self.safety = SafetyFilter(
            hand.lower,
            hand.upper,
            hand.spec.max_joint_speed_rad_s,
            1.0 / self.rate_hz,
            hand.default_open,
        )
        self.wrist_filter = WristFilter(wrist_limits or WristLimits(), 1.0 / self.rate_hz)
        self.limit_violations = 0
        self._connected = False
        self.reset_faults()

    # -- lifecycle -------------------------------------------------------------------------
    def connect(self) -> None:
        self.reset_faults()
        self._connect()
        self._connected = True
        self.safety.reset(self._read().q)
        self.wrist_filter.reset()

    def disconnect(self) -> None:
        if self._connected:
            self._disconnect()
        self._connected = False

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def connected(self) -> bool:
        return self._connected

    # -- faults and health -----------------------------------------------------------------
    def clear_fault(self) -> bool:
        """The operator's acknowledgement: the hand may move again if the backend finds
        nothing wrong now (:meth:`_recheck`); returns whether the fault cleared."""
        if self.fault is None:
            return True
        if self._recheck():
            log.info("hand fault cleared: %s", self.fault)
            self.fault = None
        return self.fault is None

    def _recheck(self) -> bool:
        """Whether the cause of the active fault is gone (backends check their hardware)."""
        return True

    def health(self) -> dict[str, Any]:
        """Per actuator (servo or finger) health as last measured: temperatures, currents,
        voltages, error flags; empty for a simulated hand."""
        return {}

    def settings(self) -> dict[str, Any]:
        """The backend's settings, as the run report and recordings carry them."""
        cfg = getattr(self, "config", None)
        return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}

    def hand_report(self) -> dict[str, Any]:
        """The run report's ``hand``: the backend and its settings, the last measured joint
        positions (the hand's joint order), health and every fault. Read it while the hand
        is connected (a session does, before it disconnects)."""
        return {
            "backend": getattr(self, "registered_name", type(self).__name__),
            "drives_hardware": self.drives_hardware,
            "settings": self.settings(),
            "joint_names": list(self.hand.joint_names),
            "measured_q": [round(float(v), 6) for v in self.read().q],
            "health": self.health(),
            "faults": [f.to_dict() for f in self.faults],
            "fault_active": None if self.fault is None else str(self.fault),
            "limit_violations": self.limit_violations,
        }

    def physics(self) -> dict | None:
        """The simulation this hand runs, as trained models record it
        (``assets.physics.Physics.describe``); None for a real hand (and when unknown)."""
        return None

    # -- I/O -------------------------------------------------------------------------------
    def read(self) -> HandState:
        return self._read()

    def send(
        self, target: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Filter ``target`` for safety and write it. Returns the sent target and events.

        ``dt_s`` is the time since the previous send on the caller's clock (None: one
        period); the rate limit scales with it, so a caller catching up cannot go faster.
        """
        safe, events = self.safety(target, hold=hold, dt_s=dt_s)
        if np.any(safe < self.hand.lower - LIMIT_TOL_RAD) or np.any(
            safe > self.hand.upper + LIMIT_TOL_RAD
        ):
            self.limit_violations += 1
        self._write(safe)
        return safe, events

    def send_wrist(
        self, pose: object, *, hold: str | None = None, dt_s: float | None = None
    ) -> tuple[np.ndarray | None, list[str]]:
        """Filter the operator's wrist pose (4, 4, device world frame) and, on backends that
        ``supports_wrist_pose``, move the wrist to the safe pose (relative to the first one;
        see :mod:`devices.robots.wrist`). Returns the safe pose (None before the first valid
        one) and the filter's events; backends without a movable wrist write nothing."""
        safe, events = self.wrist_filter(pose, hold=hold, dt_s=dt_s)
        if safe is not None and hold is None and self.supports_wrist_pose:
            self._write_wrist(safe)
        return safe, events

    # -- for subclasses ----------------------------------------------------------------------
    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    @abc.abstractmethod
    def _read(self) -> HandState: ...

    @abc.abstractmethod
    def _write(self, target: np.ndarray) -> None: ...

    def _write_wrist(self, pose: np.ndarray) -> None:
        """Move the wrist to ``pose`` (4, 4) relative to its origin (filtered already)."""


class Simulated(abc.ABC):
    """A backend with a MuJoCo simulation behind it: its full physics state can be saved
    every tick (recordings, video), restored (counterfactual replay) and rendered (the 3D
    view draws the scene; for other backends it draws the measured joints).

    Attributes:
        model, data: the simulation.
    """

    model: mujoco.MjModel
    data: mujoco.MjData

    @abc.abstractmethod
    def sim_state(self) -> np.ndarray:
        """The full physics state (1-D) for offline rendering or replay."""

    @abc.abstractmethod
    def load_state(self, state: np.ndarray, data: mujoco.MjData | None = None) -> None:
        """Restore a :meth:`sim_state` into ``data`` (default: the live data)."""

    @abc.abstractmethod
    def reset(self, q: np.ndarray | None = None) -> None:
        """Put the hand at ``q`` (default: its open pose) at rest, the scene back to start."""

    @abc.abstractmethod
    def start_rotation(self, q: np.ndarray, yaw_rad: float = 0.0) -> None:
        """Put the hand at ``q`` at rest and its object where the in-hand rotation tasks
        start it (just above the palm, turned ``yaw_rad`` about the palm normal)."""


def robot_from_spec(spec: str, hand: str, **defaults: Any) -> Robot:
    """The hand backend a spec names (as ``run --robot``: ``sim:dynamics=...``,
    ``dynamixel:port=...``) for ``hand``, built (not connected) with ``defaults`` (e.g.
    ``wrist``, ``object``) under the spec's own settings; a spec naming another hand is
    refused."""
    from devices.spec import parse_spec

    name, options = parse_spec(ROBOTS, spec)
    options = {"hand": hand, **defaults, **options}
    if options["hand"] != hand:
        raise ValueError(f"the robot spec {spec!r} names hand {options['hand']!r}, not {hand!r}")
    return ROBOTS.make(name, **options)
