"""The simulated arm (``--arm sim``): a Menagerie Franka Panda carrying the simulated hand.

The arm lives in the simulated hand's own scene (``--robot sim`` gets ``arm=panda``: one
MuJoCo model, so the object in the hand feels the arm's motion). Each tick the palm target
becomes joint targets by damped least-squares inverse kinematics from the last joint
targets (:class:`devices.robots.ik.ArmIK`), then the arm's joint limits and a fraction of the
real arm's joint speed limits (:func:`devices.robots.limits.limit_step`, the one rate
limiter), then the arm's position actuators (Menagerie's gains; the links gravity
compensated, as the real arm's controller does). The hand's physics step moves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from assets.arms import arm_spec
from devices.arms.base import ARMS, Arm, ArmLimitsConfig, ArmState
from devices.robots import limits
from devices.robots.base import Robot


@dataclass
class SimArmConfig(ArmLimitsConfig):
    """Settings of the simulated arm (plus the wrist filter's limits).

    Attributes:
        model: the arm (``panda``).
        rate_hz: the control rate (the session's).
        joint_speed_factor: the share of the real arm's joint speed limits the arm may use.
        ik_iterations: inverse-kinematics iterations per tick.
        reach_tol_mm / reach_tol_deg: a palm target the inverse kinematics misses by more
            than this is counted unreachable (the arm goes as near as it can).
    """

    model: str = "panda"
    rate_hz: float = 20.0
    joint_speed_factor: float = 0.5
    ik_iterations: int = 20
    reach_tol_mm: float = 5.0
    reach_tol_deg: float = 3.0


@ARMS.register("sim")
class SimArm(Arm):
    """A simulated Franka Panda carrying the simulated hand (MuJoCo, Menagerie model)."""

    Config = SimArmConfig
    drives_hardware = False
    mode = "joint position (IK)"

    @classmethod
    def robot_options(cls, robot: str, options: dict[str, Any]) -> dict[str, Any]:
        if robot != "sim":
            raise ValueError(
                f"--arm sim carries the simulated hand (--robot sim), not {robot!r}; a real "
                "hand goes on a real arm (--arm franka:host=...)"
            )
        return {**options, "arm": options.get("arm", "panda")}

    def __init__(self, config: SimArmConfig) -> None:
        if not 0 < config.joint_speed_factor <= 1:
            raise ValueError("joint_speed_factor must be in (0, 1]")
        if config.ik_iterations < 1:
            raise ValueError("ik_iterations must be at least 1")
        super().__init__(arm_spec(config.model), config.rate_hz, config)
        self.config = config
        self._hand: Any = None
        self.ik: Any = None
        self.joint_rate_limited = 0
        self.unreachable = 0
        self.ik_errors_m: list[float] = []

    def attach(self, robot: Robot) -> None:
        from devices.robots.ik import ArmIK
        from devices.robots.scene import site_names

        joints = getattr(robot, "arm", None)
        if joints is None or getattr(robot, "data", None) is None:
            raise ValueError(
                "--arm sim needs the simulated hand built with the arm (sim:arm=panda)"
            )
        if joints.name != self.spec.name:
            raise ValueError(f"the simulated hand carries a {joints.name}, not a {self.spec.name}")
        self._hand = robot
        self._joints = joints
        self._palm_site = robot.model.site(site_names()[0]).id
        self.ik = ArmIK(
            robot.model,
            list(joints.joint_names),
            site_names()[0],
            joints.lower,
            joints.upper,
            joints.start_q,
            iterations=self.config.ik_iterations,
        )
        speed = np.asarray(self.spec.max_joint_speed_rad_s)
        self._max_speed = speed * self.config.joint_speed_factor

    def _connect(self) -> None:
        if self._hand is None:
            raise ValueError("attach the simulated arm to the simulated hand before connecting")

    def _read(self) -> ArmState:
        d, j = self._hand.data, self._joints
        palm = np.eye(4)
        palm[:3, :3] = d.site_xmat[self._palm_site].reshape(3, 3)
        palm[:3, 3] = d.site_xpos[self._palm_site]
        return ArmState(
            t=float(self._hand.time_s),
            q=d.qpos[j.qadr].copy(),
            dq=d.qvel[j.vadr].copy(),
            palm=palm,
            mode=self.mode,
        )

    def _write_palm(self, target: np.ndarray) -> None:
        d, j = self._hand.data, self._joints
        last = d.ctrl[j.act].copy()  # the joint targets in force (a reset sets them too)
        res = self.ik.solve(last, target[:3, 3], target[:3, :3], qpos=d.qpos)
        self.ik_errors_m.append(res.pos_err_m)
        c = self.config
        if res.pos_err_m * 1e3 > c.reach_tol_mm or np.degrees(res.rot_err_rad) > c.reach_tol_deg:
            self.unreachable += 1  # beyond the arm's reach or joint limits: as near as it can
        step = limits.max_step(self._max_speed, 1.0 / self.rate_hz, self._dt_s)
        safe = limits.limit_step(res.q, last, lower=j.lower, upper=j.upper, max_step=step)
        if np.any(np.abs(safe - res.q) > 1e-12):
            self.joint_rate_limited += 1
        d.ctrl[j.act] = safe

    def _report_extra(self) -> dict[str, Any]:
        ik = np.asarray(self.ik_errors_m) * 1000.0
        return {
            "joint_targets_rate_limited": self.joint_rate_limited,
            "targets_unreachable": self.unreachable,
            "ik_residual_mm": {
                "p50": round(float(np.percentile(ik, 50)), 3) if ik.size else None,
                "p95": round(float(np.percentile(ik, 95)), 3) if ik.size else None,
            },
        }
