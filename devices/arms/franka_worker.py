"""The Franka arm's worker process: the only place the arm's client library is imported.

``franky-control`` and ``pylibfranka`` both bundle libfranka and cannot share a process
(``../shared/HARDWARE-NOTES.md``, section 3), and libfranka wants a thread of its own at
1 kHz; so the arm backend (:mod:`devices.arms.franka`) runs this worker in a process of its
own and talks to it over a pipe with small dict messages:

- ``{"op": "connect", **settings}`` -> ``{"ok": True, "state": ...}`` or ``{"ok": False,
  "error": ...}``
- ``{"op": "state"}`` -> ``{"ok": True, "state": {q, dq, O_T_EE, F_T_EE, time_ms, mode,
  errors, motion_error, latency_ms}}``
- ``{"op": "move", "pose": [16 floats, row-major O_T_EE], "t": monotonic send time}``: no
  reply (the next state carries any error); a new motion preempts the running one
- ``{"op": "recover"}`` / ``{"op": "stop"}`` -> ``{"ok": ..., "error": ...}``
- ``{"op": "close"}``: stop the arm and exit

Poses are row-major 4x4 matrices of the end effector in the arm's base frame.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any


def _state(robot: Any, motion_error: str | None, latency: list[float]) -> dict[str, Any]:
    import numpy as np

    s = robot.state
    lat = sorted(latency)
    return {
        "q": list(s.q),
        "dq": list(s.dq),
        "O_T_EE": np.asarray(s.O_T_EE.matrix, dtype=float).reshape(-1).tolist(),
        "F_T_EE": np.asarray(s.F_T_EE.matrix, dtype=float).reshape(-1).tolist(),
        "time_ms": float(s.time.to_msec()),  # the arm's clock: it stops when the link does
        "mode": str(s.robot_mode).rsplit(".", 1)[-1],
        "errors": str(s.current_errors) if robot.has_errors else "",
        "motion_error": motion_error or "",
        "latency_ms": lat[len(lat) // 2] if lat else None,
    }


def serve(conn: Any) -> None:
    """Answer the backend's messages on ``conn`` until ``close`` or the pipe ends."""
    try:
        import franky
    except ImportError as e:
        conn.send({"ok": False, "error": f"franky-control is not installed: {e}"})
        return
    robot = None
    motion_error: str | None = None
    latency: list[float] = []  # ms from the backend sending a target to the move issued
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        op = msg.get("op")
        try:
            if op == "connect":
                rt = (
                    franky.RealtimeConfig.Enforce
                    if msg["realtime"]
                    else franky.RealtimeConfig.Ignore
                )
                robot = franky.Robot(msg["host"], realtime_config=rt)
                robot.relative_dynamics_factor = float(msg["dynamics_factor"])
                t, f = float(msg["torque_threshold"]), float(msg["force_threshold"])
                robot.set_collision_behavior([t] * 7, [f] * 6)
                conn.send({"ok": True, "state": _state(robot, None, latency)})
            elif robot is None:
                conn.send({"ok": False, "error": "not connected"})
            elif op == "state":
                conn.send({"ok": True, "state": _state(robot, motion_error, latency)})
                latency.clear()
            elif op == "move":
                import numpy as np

                pose = franky.Affine(np.asarray(msg["pose"], dtype=float).reshape(4, 4))
                motion = franky.CartesianMotion(pose, franky.ReferenceType.Absolute)
                try:
                    robot.move(motion, asynchronous=True)
                    latency.append((time.monotonic() - float(msg["t"])) * 1e3)
                except Exception as e:  # noqa: BLE001 - reported with the next state
                    motion_error = f"{type(e).__name__}: {e}"
            elif op == "recover":
                robot.recover_from_errors()
                motion_error = None
                conn.send({"ok": not robot.has_errors, "error": ""})
            elif op == "stop":
                robot.stop()
                conn.send({"ok": True})
            elif op == "close":
                break
            else:
                conn.send({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # noqa: BLE001 - every failure goes back to the backend
            if op != "move":
                conn.send({"ok": False, "error": f"{type(e).__name__}: {e}"})
    if robot is not None:
        with contextlib.suppress(Exception):  # closing: nothing more to report to
            robot.stop()
    conn.close()
