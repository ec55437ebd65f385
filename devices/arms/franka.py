"""A real Franka arm (``--arm franka:host=IP``) through ``franky-control`` in a worker process.

The client library runs in :mod:`devices.arms.franka_worker`, a process of its own (it
bundles libfranka, which cannot share a process with ``pylibfranka``, and wants its 1 kHz
thread to itself). Each tick the backend asks the worker for the arm's state and sends the
palm target as an end-effector target: franky's Cartesian motion generator (a new target
preempts the running motion; velocity, acceleration and jerk scaled by
``dynamics_factor``), with the arm's own collision reflexes at ``torque_threshold`` /
``force_threshold``. A reflex or any other error reported by the arm, a failed command, or a
worker that stops answering raises a fault: the session holds the hand and the arm, and only
the operator's recovery (:meth:`Arm.clear_fault`: franky's ``recover_from_errors``) moves
them again.

Frames: the world of the palm pose is the arm's base frame; the hand sits at the flange by
``assets.arms.mount_transform``; the end effector franky reports (``O_T_EE``) is the flange
times the ``F_T_EE`` configured in Desk, which the backend reads and undoes.

Tested against ``franky-sim`` (PyPI), a libfranka network-protocol server with MuJoCo
behind it, on 127.0.0.1 (it enforces no limits and raises no reflexes: the faults it can
show are a lost connection and refused commands).
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from assets.arms import PANDA, mount_transform
from devices.arms.base import ARMS, Arm, ArmLimitsConfig, ArmState


@dataclass
class FrankaArmConfig(ArmLimitsConfig):
    """Settings of the real arm (plus the wrist filter's limits).

    Attributes:
        host: the arm's FCI address (franky-sim: 127.0.0.1).
        rate_hz: the control rate (the session's).
        hand: the hand at the flange (its size sets the mount).
        dynamics_factor: franky's relative dynamics factor, (0, 1]: the share of the arm's
            velocity, acceleration and jerk limits its motion generator may use.
        torque_threshold / force_threshold: the collision reflexes' thresholds (N m per
            joint, N per Cartesian axis).
        realtime: libfranka's real-time check (on for a real arm on a PREEMPT_RT kernel;
            off for franky-sim or a development machine).
        timeout_s: how long a reply from the worker may take before the arm faults.
        stale_s: the arm's own clock (its state's time) standing still this long means the
            link is gone: a fault (the client library alone notices late).
    """

    host: str = "172.16.0.2"
    rate_hz: float = 20.0
    hand: str = "leap"
    dynamics_factor: float = 0.2
    torque_threshold: float = 20.0
    force_threshold: float = 30.0
    realtime: bool = True
    timeout_s: float = 3.0
    stale_s: float = 0.25


#: How long starting the worker and connecting to the arm may take, s.
CONNECT_TIMEOUT_S = 30.0


class FrankaError(ConnectionError):
    """The arm could not be reached or refused to start (one line saying why)."""


@ARMS.register("franka")
class FrankaArm(Arm):
    """A real Franka Panda / FR3 arm over FCI, through franky-control in a worker process."""

    Config = FrankaArmConfig

    @classmethod
    def availability(cls, options: dict[str, Any] | None = None) -> str | None:
        if importlib.util.find_spec("franky") is None:
            return "franky-control is not installed (pip install franky-control)"
        return None

    def __init__(self, config: FrankaArmConfig) -> None:
        if not 0 < config.dynamics_factor <= 1:
            raise ValueError("dynamics_factor must be in (0, 1]")
        if config.torque_threshold <= 0 or config.force_threshold <= 0:
            raise ValueError("collision thresholds must be positive")
        if not (config.timeout_s > 0 and config.stale_s > 0):
            raise ValueError("timeout_s and stale_s must be positive")
        super().__init__(PANDA, config.rate_hz, config)
        self.config = config
        from assets.hands import load_hand
        from devices.robots.scene import hand_extent_behind_palm

        self.mount = mount_transform(hand_extent_behind_palm(load_hand(config.hand)))
        self._proc: Any = None
        self._conn: Any = None
        self._f_t_ee = np.eye(4)
        self.worker_latency_ms: list[float] = []
        self.mode = ""
        self._arm_time: tuple[float, float] | None = None  # (the arm's ms, ours) last changed

    # -- the worker ------------------------------------------------------------------------
    def _ask(self, msg: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        if self._conn is None:
            raise FrankaError("the arm's worker is not running")
        timeout_s = self.config.timeout_s if timeout_s is None else timeout_s
        try:
            self._conn.send(msg)
            answered = self._conn.poll(timeout_s)
            reply = self._conn.recv() if answered else None
        except (EOFError, OSError) as e:
            raise FrankaError(f"the arm's worker is gone ({type(e).__name__})") from e
        if reply is None:
            raise FrankaError(f"the arm's worker did not answer in {timeout_s} s")
        return reply

    def _connect(self) -> None:
        from devices.arms.franka_worker import serve

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child,), name="franka-worker", daemon=True)
        self._proc.start()
        child.close()
        c = self.config
        reply = self._ask(  # the worker starts a Python and the arm's client first
            {
                "op": "connect",
                "host": c.host,
                "realtime": c.realtime,
                "dynamics_factor": c.dynamics_factor,
                "torque_threshold": c.torque_threshold,
                "force_threshold": c.force_threshold,
            },
            timeout_s=max(c.timeout_s, CONNECT_TIMEOUT_S),
        )
        if not reply.get("ok"):
            self._stop_worker()
            raise FrankaError(f"franka at {c.host}: {reply.get('error')}")
        self._f_t_ee = np.asarray(reply["state"]["F_T_EE"], dtype=float).reshape(4, 4)

    def _disconnect(self) -> None:
        self._stop_worker()

    def _stop_worker(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self._conn.send({"op": "close"})
        if self._proc is not None:
            self._proc.join(timeout=5.0)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc = self._conn = None

    # -- Arm -------------------------------------------------------------------------------
    def _read(self) -> ArmState:
        try:
            reply = self._ask({"op": "state"})
        except FrankaError as e:
            self.raise_fault("link", str(e))
            return self._last_state()
        if not reply.get("ok"):
            self.raise_fault("link", str(reply.get("error")))
            return self._last_state()
        s = reply["state"]
        now = time.monotonic()
        if self._arm_time is None or s["time_ms"] != self._arm_time[0]:
            self._arm_time = (s["time_ms"], now)
        elif now - self._arm_time[1] > self.config.stale_s:
            self.raise_fault("link", f"no state from the arm for over {self.config.stale_s} s")
        if s["errors"]:
            self.raise_fault("reflex", s["errors"])
        elif s["motion_error"]:
            self.raise_fault("command", s["motion_error"])
        if s["latency_ms"] is not None:
            self.worker_latency_ms.append(float(s["latency_ms"]))
        o_t_ee = np.asarray(s["O_T_EE"], dtype=float).reshape(4, 4)
        self.mode = s["mode"]
        self._state = ArmState(
            t=time.monotonic() - self._t_connect,
            q=np.asarray(s["q"], dtype=float),
            dq=np.asarray(s["dq"], dtype=float),
            palm=o_t_ee @ np.linalg.inv(self._f_t_ee) @ self.mount,
            mode=self.mode,
        )
        return self._state

    def _last_state(self) -> ArmState:
        last = getattr(self, "_state", None)
        if last is None:
            raise FrankaError(f"franka at {self.config.host}: no state yet")
        return last

    def _write_palm(self, target: np.ndarray) -> None:
        ee = target @ np.linalg.inv(self.mount) @ self._f_t_ee
        try:
            self._conn.send({"op": "move", "pose": ee.reshape(-1).tolist(), "t": time.monotonic()})
        except (OSError, BrokenPipeError, AttributeError) as e:
            self.raise_fault("link", f"the arm's worker is gone ({type(e).__name__})")

    def _recover(self) -> bool:
        try:
            reply = self._ask({"op": "recover"})
        except FrankaError:
            return False
        self._arm_time = None
        return bool(reply.get("ok"))

    def _report_extra(self) -> dict[str, Any]:
        lat = np.asarray(self.worker_latency_ms)
        return {
            "host": self.config.host,
            "mode": self.mode,
            "worker_latency_ms_p50": round(float(np.median(lat)), 3) if lat.size else None,
        }
