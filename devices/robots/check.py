"""A guided check of a newly connected hand (``dexteleop robot-check``).

Without moving: connect (which identifies every servo or finger), list what the backend
measures per actuator (model, firmware, voltage, temperature, errors) and check that the
measured pose lies within the joint limits (a wrong offset, such as a missing +pi, puts it
far outside). With ``move``: one joint at a time, a small step toward the middle of its
range through the hand's safety filter (limits and rate limit as always), back again, and
check that this joint, and only this one, moved the commanded way: the sign, the motor
map and the wiring against the hand's spec.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devices.robots.base import Robot

#: How far outside its limits a measured joint may be before the pose check fails (rad).
LIMIT_SLACK_RAD = 0.1
#: Finger names by joint-name prefix (LEAP: if/mf/rf/th, Allegro: ff/mf/rf/th).
FINGER_OF = {"if": "index", "ff": "index", "mf": "middle", "rf": "ring", "th": "thumb"}


def expected_motion(joint: str, step: float) -> str:
    """What the operator should see for a step of ``step`` rad on ``joint``: the finger and
    whether it closes (positive: flexion toward the palm, on both hands' models) or opens;
    encoders cannot tell a swapped cable from a right one, eyes can."""
    finger = FINGER_OF.get(joint[:2], joint)
    return f"{finger} {joint}: {'closes' if step > 0 else 'opens'}"


@dataclass
class JointCheck:
    """One joint's result. ``moved``: the measured change for a commanded ``step`` (rad);
    ``others``: the largest change of any other joint meanwhile."""

    joint: str
    actuator: str
    q: float
    lower: float
    upper: float
    in_limits: bool
    step: float | None = None
    moved: float | None = None
    others: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def row(self) -> dict[str, Any]:
        return {
            "joint": self.joint,
            "actuator": self.actuator,
            "q": round(self.q, 3),
            "limits": [round(self.lower, 3), round(self.upper, 3)],
            "step": None if self.step is None else round(self.step, 3),
            "moved": None if self.moved is None else round(self.moved, 3),
            "others": None if self.others is None else round(self.others, 3),
            "watch": None if self.step is None else expected_motion(self.joint, self.step),
            "result": "ok" if self.ok else "; ".join(self.problems),
        }


def _settle(
    robot: Robot, target: np.ndarray, seconds: float, still_rad: float = 2e-3
) -> np.ndarray:
    """Send ``target`` every period for ``seconds`` (the filter spreads it within the rate
    limit), and on, up to ``seconds`` more, while the joints still move (more than
    ``still_rad`` over a period: a slow or loaded hand is still on its way), and return the
    measured joints at the end."""
    period = 1.0 / robot.rate_hz
    start = time.monotonic()
    q_prev = None
    while True:
        t0 = time.monotonic()
        q = robot.read().q
        robot.send(target)
        moving = q_prev is None or float(np.max(np.abs(q - q_prev))) > still_rad
        elapsed = t0 - start
        if elapsed >= 2 * seconds or (elapsed >= seconds and not moving):
            break
        q_prev = q
        time.sleep(max(0.0, period - (time.monotonic() - t0)))
    return robot.read().q


def check_hand(
    robot: Robot,
    *,
    move: bool = False,
    step_rad: float = 0.15,
    settle_s: float = 1.0,
    min_ratio: float = 0.5,
    max_other_rad: float = 0.05,
    joints: list[str] | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the check on a connected ``robot``; returns ``{"health", "joints", "ok"}``.

    A joint passes when it moved at least ``min_ratio`` of its step in the commanded
    direction and no other joint moved more than ``max_other_rad``. ``announce`` is told
    what to watch before each joint moves.
    """
    hand = robot.hand
    hw = hand.spec.hardware
    q0 = robot.read().q
    names = list(hand.joint_names)
    chosen = names if joints is None else joints
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"unknown joints {', '.join(unknown)}; the hand has {', '.join(names)}")
    results = []
    for i, name in enumerate(names):
        actuator = f"id {hw.motor_ids[i]}" if hw is not None else "-"
        inside = bool(hand.lower[i] - LIMIT_SLACK_RAD <= q0[i] <= hand.upper[i] + LIMIT_SLACK_RAD)
        r = JointCheck(
            name, actuator, float(q0[i]), float(hand.lower[i]), float(hand.upper[i]), inside
        )
        if not inside:
            r.problems.append("measured outside the joint limits (offset or calibration?)")
        results.append(r)
    if move:
        if robot.fault is not None:
            raise RuntimeError(f"the hand has a fault ({robot.fault}); not moving it")
        home = robot.read().q
        for i, name in enumerate(names):
            if name not in chosen:
                continue
            r = results[i]
            mid = 0.5 * (hand.lower[i] + hand.upper[i])
            direction = 1.0 if home[i] <= mid else -1.0  # toward the middle of the range
            room = (hand.upper[i] - home[i]) if direction > 0 else (home[i] - hand.lower[i])
            step = direction * min(step_rad, max(0.0, room - 0.02))
            if announce is not None:
                announce(f"moving {name} by {step:+.2f} rad: {expected_motion(name, step)}")
            target = home.copy()
            target[i] = home[i] + step
            before = robot.read().q
            after = _settle(robot, target, settle_s)
            _settle(robot, home, settle_s)
            delta = after - before
            r.step, r.moved = float(step), float(delta[i])
            r.others = float(np.max(np.abs(np.delete(delta, i)))) if len(delta) > 1 else 0.0
            if robot.fault is not None:
                r.problems.append(f"fault: {robot.fault}")
                break
            if abs(step) < 1e-3:
                r.problems.append("no room to move within the limits")
            elif r.moved * np.sign(step) < min_ratio * abs(step):
                if r.moved * np.sign(step) < -min_ratio * abs(step):
                    r.problems.append("moved the wrong way (sign)")
                else:
                    r.problems.append("did not move (torque, wiring or ID)")
            if r.others > max_other_rad:
                j = int(np.argmax(np.abs(np.delete(delta, i))))
                other = np.delete(np.array(names), i)[j]
                r.problems.append(f"{other} moved too ({r.others:.2f} rad: motor map?)")
    return {
        "health": robot.health(),
        "joints": [r.row() for r in results],
        "moved": move,
        "ok": all(r.ok for r in results) and robot.fault is None,
        "faults": [f.to_dict() for f in robot.faults],
    }


def format_table(report: dict[str, Any]) -> str:
    """The check as two markdown tables: the actuators' health, then the joints."""
    lines = []
    health = report["health"]
    if health:
        keys = sorted({k for v in health.values() for k in v})
        lines.append("| actuator | " + " | ".join(keys) + " |")
        lines.append("|---" * (len(keys) + 1) + "|")
        for name, v in health.items():
            lines.append(f"| {name} | " + " | ".join(str(v.get(k, "")) for k in keys) + " |")
        lines.append("")
    cols = ["joint", "actuator", "q", "limits", "step", "moved", "others", "watch", "result"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|---" * len(cols) + "|")
    for row in report["joints"]:
        lines.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in cols) + " |")
    lines.append("")
    verdict = "all joints ok" if report["ok"] else "PROBLEMS found"
    if not report["moved"]:
        verdict += " (nothing moved: add --move to step each joint)"
    lines.append(verdict)
    return "\n".join(lines)
