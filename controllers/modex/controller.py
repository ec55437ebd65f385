"""The MoDex controller: fingertip reaching and gestures planned through learned models.

Each tick it reads the measured fingertips (the state of MoDex's models), takes a goal —
the operator's retargeted fingertip keypoints, or a gesture's cost function — and plans with
bidirectional CEM (the inverse model proposes, the forward model checks; Algorithm 1 of the
paper). Following the operator, the sequential models plan two control periods ahead and
the first action goes to the hand (model-predictive control, replanning every tick); a
gesture is planned as a pose with the quasi-static models, as in the paper. Models are the
hand's checkpoints from ``dexteleop train modex`` (shipped for LEAP and Allegro in
``assets/checkpoints/modex``).

Settings the operator changes live: the goal (follow the operator, a built-in gesture, or
the custom cost function), the custom cost function's code (checked before it is used; a
broken one is refused and the previous one kept), the planning budget, and the offset
correction of the follow mode (offset-free MPC: see ``controllers.modex.core.OffsetObserver``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from assets.hands import FINGERS, ROBOT_KEYPOINT_NAMES
from controllers.base import CONTROLLERS, Controller, ControllerConfig, ControllerUnavailable, live
from devices.tick import Command, HandState

FOLLOW = "follow operator"
CHECK_TIMEOUT_S = 0.5  # a custom cost's check may hold the loop this long at most
CHECK_SLOW_MS = 100.0  # ... and must check (compile, score the largest batch) faster than this
CUSTOM = "custom cost"
TIP_INDEX = [ROBOT_KEYPOINT_NAMES.index(f"{f}_tip") for f in FINGERS]

DEFAULT_COST = """\
# tips: tensor (N, fingers, 3), fingertips in the hand frame (m): x towards the
# fingers, z out of the back of the hand; fingers index, middle, ring, thumb.
# Return one cost per sample (N,); lower is better.
def cost(tips):
    pinch = (tips[:, 0] - tips[:, 3]).norm(dim=-1)  # index tip to thumb tip
    others_open = -tips[:, 1:3, 0].mean(-1)  # middle and ring stretched out
    return pinch + 0.2 * others_open
"""


def _goal_choices() -> tuple[str, ...]:
    from controllers.modex import GESTURES  # the names only: no torch at import

    return (FOLLOW, *GESTURES, CUSTOM)


@dataclass
class ModexControllerConfig(ControllerConfig):
    """MoDex planning (see the module docstring).

    Attributes:
        setting: which models follow the operator: ``sequential`` (MPC with the one-step
            forward model, horizon ``horizon``) or ``quasi-static`` (the settled pose of one
            action). Gestures and the custom cost are always planned as poses with the
            quasi-static models, as in the paper (its gestures reuse the quasi-static
            reaching model); the safety filter paces the motion there.
        checkpoints: folder of the hand's models (default: the shipped ones).
        goal: follow the operator's fingertips, make a gesture, or the custom cost.
        cost_code: the custom cost function (Python; ``cost(tips) -> (N,)``).
        cost_file: read ``cost_code`` from this Python file when the controller starts.
        samples, iterations: CEM's budget per planning step (samples x iterations; the
            default 100 x 12 = 1.2k is the reach benchmark's).
        time_budget_ms: CEM stops iterating once a step has taken this long, so a busy
            machine costs accuracy, not the loop's deadline (0: always all iterations).
        offset_gain: following with the sequential models, the gain of the offset observer
            (``controllers.modex.core.OffsetObserver``): the filtered miss of the model's
            last prediction is subtracted from the goal, so a biased model still puts the
            fingertips on the operator's (0: plain MPC).
        horizon: planning horizon T0 of the sequential setting.
        seed: the planner's random seed.
    """

    setting: str = "sequential"
    checkpoints: str | None = None
    goal: str = live(
        FOLLOW,
        "choice",
        label="goal",
        help="reach the operator's fingertips, or make a gesture",
        choices=_goal_choices(),
    )
    cost_code: str = live(
        DEFAULT_COST,
        "text",
        label="custom cost",
        help="cost(tips) over fingertips (N, fingers, 3); used when the goal is 'custom cost'",
    )
    cost_file: str | None = None
    samples: int = live(100, "int", label="samples", low=20, high=2000, step=20)
    iterations: int = live(12, "int", label="CEM iterations", low=1, high=20, step=1)
    time_budget_ms: float = live(
        20.0,
        "float",
        label="time budget, ms",
        help="stop refining once a planning step has taken this long (0: no limit)",
        low=0.0,
        high=35.0,  # 70 % of the 20 Hz period: the rest of the tick needs time too
        step=5.0,
    )
    offset_gain: float = live(
        0.3,
        "float",
        label="offset correction",
        help="following: aim past where the model keeps missing (0: off)",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    horizon: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        # the constraints a type cannot say, checked before any model is loaded
        from controllers.modex import SETTINGS

        if self.setting not in SETTINGS:
            raise ValueError(
                f"modex setting setting must be one of {list(SETTINGS)}, got {self.setting!r}"
            )
        if self.horizon < 1:
            raise ValueError(f"modex setting horizon must be >= 1, got {self.horizon}")


@CONTROLLERS.register("modex")
class ModexController(Controller):
    """Plans every tick through the hand's learned forward and inverse models."""

    Config = ModexControllerConfig
    # it plans to the commanded fingertips (or a gesture), not to retargeted joints
    command_fields = frozenset({"keypoints", "gesture"})

    @classmethod
    def availability(cls, hand: str) -> str | None:
        from controllers.modex.models import checkpoint_paths

        cfg = ModexControllerConfig(hand=hand)
        for setting in dict.fromkeys((cfg.setting, "quasi-static")):
            paths = checkpoint_paths(hand, setting, cfg.checkpoints)
            missing = [p.name for k, p in paths.items() if k != "report" and not p.is_file()]
            if missing:
                return (
                    f"no MoDex models for {hand} ({', '.join(missing)}); train them with "
                    f"'dexteleop train modex --hand {hand} --setting {setting}'"
                )
        return None

    def __init__(self, config: ModexControllerConfig) -> None:
        super().__init__(config)
        self.config: ModexControllerConfig = config
        import torch

        from controllers.modex.core import OffsetObserver, ReachModels
        from controllers.modex.hand import CONTROL_DT, exploration_hand, fingertips, initial_state
        from controllers.modex.models import CheckpointError

        try:
            self.xhand = exploration_hand(config.hand)
        except ValueError as e:
            raise ControllerUnavailable(f"MoDex: {e}") from None
        loaded = {}
        for setting in dict.fromkeys((config.setting, "quasi-static")):
            try:
                # on other physics they run, and say so (Controller.check_physics)
                loaded[setting] = ReachModels.load(config.hand, setting, config.checkpoints)
            except CheckpointError as e:
                raise ControllerUnavailable(
                    f"MoDex: {e}; train with 'dexteleop train modex --hand {config.hand} "
                    f"--setting {setting}'"
                ) from None
        self.models = loaded[config.setting]  # following the operator
        self._trained_on(getattr(self.models.forward, "trained_physics", None))
        self.pose_models = loaded["quasi-static"]  # gestures and custom costs
        self._torch = torch
        if self.xhand.fingers != tuple(FINGERS):
            raise ControllerUnavailable(f"MoDex: {config.hand}'s fingers do not match the app's")
        m = self.xhand.model
        # actuator a drives joint act_joint[a] of the hand spec's order
        names = [m.joint(int(m.actuator_trnid[a, 0])).name for a in range(m.nu)]
        self.act_joint = np.array([self.hand.joint_names.index(n) for n in names])
        if sorted(self.act_joint) != list(range(self.hand.n_joints)):
            raise ControllerUnavailable(f"MoDex: {config.hand}: actuators do not cover the joints")
        d = mujoco.MjData(m)
        mujoco.mj_setState(m, d, initial_state(self.xhand), mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(m, d)
        self.open_tips = fingertips(self.xhand, d.sensordata).reshape(-1, 3)
        if config.cost_file:
            from controllers.modex.gestures import CostFunctionError

            try:
                code = Path(config.cost_file).read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise CostFunctionError(f"cost_file {config.cost_file}: {e}") from None
            self.config = config = dataclasses.replace(config, cost_code=code, cost_file=None)
        self._custom = self._compile(config.cost_code)
        self._gesture_costs: dict[str, Any] = {}
        self._warm: tuple[Any, Any] | None = None  # (goal, first planned action) of last tick
        self._observer = OffsetObserver(config.offset_gain)
        self._model_dt = CONTROL_DT  # the sequential models' step
        self._followed_from: Any = None  # (fingertips, hand time, context) of the last plan
        self._last_tips: Any = None  # (fingertips, hand time) at the last tick

    def _compile(self, source: str) -> Any:
        """The custom cost, checked on the largest batch a planning step may give it, within
        ``CHECK_TIMEOUT_S`` (it runs on the loop thread between ticks, so a cost that hangs
        or crawls is refused rather than stalling the loop)."""
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as Timeout

        from controllers.modex.gestures import CostFunctionError, compile_cost

        size = 2000  # the samples setting's upper bound
        pool = ThreadPoolExecutor(1, thread_name_prefix="modex-cost-check")
        t0 = time.perf_counter()
        job = pool.submit(compile_cost, source, self.xhand.fingers, where="custom cost",
                          probe_size=size)  # fmt: skip
        pool.shutdown(wait=False)
        try:
            cost = job.result(timeout=CHECK_TIMEOUT_S)
        except Timeout:
            raise CostFunctionError(
                f"custom cost: still running after {CHECK_TIMEOUT_S:g} s on {size} hands; "
                "refused (the planner calls it every iteration, 20 times a second)"
            ) from None
        ms = (time.perf_counter() - t0) * 1e3
        if ms > CHECK_SLOW_MS:
            raise CostFunctionError(
                f"custom cost: {ms:.0f} ms for {size} hands, too slow for planning at 20 Hz "
                f"(at most {CHECK_SLOW_MS:g} ms)"
            )
        return cost

    # -- live settings -----------------------------------------------------------------
    def _apply_live(self, changes: dict[str, Any]) -> None:
        if "cost_code" in changes:
            # raises CostFunctionError (a ValueError): the change is refused, the old kept
            self._custom = self._compile(changes["cost_code"])
        if "offset_gain" in changes:
            self._observer.gain = changes["offset_gain"]
            if changes["offset_gain"] == 0.0:
                self._observer.reset()

    # -- control -----------------------------------------------------------------------
    def reset(self, state: HandState) -> None:
        self._warm = None
        self._observer.reset()
        self._followed_from = None
        self._last_tips = None

    def _one_period(self, dt: float) -> bool:
        """Whether ``dt`` s is one step of the sequential models (not a hold, not another
        loop rate)."""
        return abs(dt - self._model_dt) < 0.25 * self._model_dt

    def _to_action(self, joints: np.ndarray) -> np.ndarray:
        return np.asarray(joints, dtype=np.float32)[self.act_joint]

    def _to_joints(self, action: np.ndarray) -> np.ndarray:
        out = np.empty(self.hand.n_joints)
        out[self.act_joint] = action
        return out

    def _cost(self, goal_name: str) -> Any:
        from controllers.modex.gestures import gesture_cost

        if goal_name == CUSTOM:
            return self._custom
        if goal_name not in self._gesture_costs:
            self._gesture_costs[goal_name] = gesture_cost(
                goal_name, self.xhand.fingers, self.open_tips
            )
        return self._gesture_costs[goal_name]

    def step(self, state: HandState, command: Command) -> tuple[np.ndarray, dict[str, Any]]:
        torch = self._torch
        from controllers.modex.core import limit_sequence, rate_limited, reach_error_cm
        from controllers.modex.planners import (
            MoDexPlanner,
            quasi_static_predict,
            reach_cost,
            sequential_predict,
        )

        cfg = self.config
        tips = np.asarray(state.keypoints, dtype=np.float32)[TIP_INDEX].reshape(-1)
        hold = state.target.copy()
        if not np.all(np.isfinite(tips)):
            return hold, {"holding": 1.0, "reason": "non-finite fingertips"}
        goal_name = cfg.goal
        if goal_name == FOLLOW and command.gesture:
            goal_name = command.gesture
        s = torch.as_tensor(tips)
        previous = torch.as_tensor(self._to_action(state.target))
        # the period before (the sequential model's context): the fingertips one period
        # ago, or, after a hold or a first tick, the hand taken as at rest where it is
        last, self._last_tips = self._last_tips, (s, float(state.t))
        s_before = s
        if last is not None and self._one_period(float(state.t) - last[1]):
            s_before = last[0]
        quasi = cfg.setting == "quasi-static" or goal_name != FOLLOW
        models = self.models if goal_name == FOLLOW else self.pose_models
        info: dict[str, Any] = {"holding": 0.0, "goal": goal_name}
        followed_from, self._followed_from = self._followed_from, None
        if quasi:
            self._observer.reset()  # its estimate is of the sequential model's misses
        elif followed_from is not None and self._observer.gain > 0:
            s_prev, t_prev, context = followed_from
            # the model predicts one 50 ms period; after a hold or at another loop rate the
            # pose it would start from is not the last one planned from: no update then
            if self._one_period(float(state.t) - t_prev):
                # the hand executed state.target for one period from s_prev: the miss
                with torch.no_grad():
                    predicted = sequential_predict(models.forward, *context)(
                        s_prev, previous[None, None]
                    )
                self._observer.update(s, predicted[0, 0])
        if goal_name == FOLLOW:
            if command.keypoints is None:
                return hold, {"holding": 1.0, "reason": "no keypoint command"}
            goal = np.asarray(command.keypoints, dtype=np.float32)[TIP_INDEX].reshape(-1)
            if not np.all(np.isfinite(goal)):
                return hold, {"holding": 1.0, "reason": "non-finite command"}
            target = torch.as_tensor(goal)
            if not quasi:
                target = self._observer.aim(target)
                offset = self._observer.offset
                if offset is not None:
                    info["offset_mm"] = 1e3 * float(offset.reshape(-1, 3).norm(dim=-1).mean())
            cost = reach_cost(target)
            propose = models.propose
            info["reach_error_mm"] = 10.0 * reach_error_cm(tips, goal)
        else:
            try:
                cost = self._cost(goal_name)
            except ValueError as e:
                return hold, {"holding": 1.0, "reason": str(e)}
            target = s
            sigma = 3.0 * models.inverse.sigma  # a broad search around the last pose planned
            start = torch.as_tensor(self.xhand.default_ctrl).float()
            key = (goal_name, id(cost))  # a new goal or new code starts afresh
            if self._warm is not None and self._warm[0] == key:
                start = self._warm[1]

            def propose(_s: Any, _t: Any, start: Any = start, sigma: Any = sigma) -> Any:
                return start, sigma

        if quasi:
            predict = quasi_static_predict(models.forward)
            horizon = 1
        else:
            predict = rate_limited(
                sequential_predict(models.forward, s_before, previous),
                previous,
                self.xhand.max_step,
            )
            horizon = cfg.horizon
        planner = MoDexPlanner(
            self.xhand.ctrl_low,
            self.xhand.ctrl_high,
            propose,
            horizon=horizon,
            samples=cfg.samples,
            iterations=cfg.iterations,
            elites=max(2, cfg.samples // 10),
            beta=0.0,  # plain CEM: what tuned best (bench/modex_reach.py --tune)
            seed=cfg.seed + int(state.t * 1000) % 100_000,
        )
        t0 = time.perf_counter()
        deadline = t0 + cfg.time_budget_ms / 1e3 if cfg.time_budget_ms > 0 else None
        try:
            plan = planner.plan(s, target, predict, cost, deadline=deadline)
        except Exception as e:  # noqa: BLE001 - a user's cost failing mid-run must not stop the loop
            self._warm = None
            return hold, {"holding": 1.0, "reason": f"planning failed: {type(e).__name__}: {e}"}
        if not math.isfinite(plan.cost):
            self._warm = None
            return hold, {"holding": 1.0, "reason": "no finite-cost plan"}
        info["plan_ms"] = (time.perf_counter() - t0) * 1e3
        info["planner_cost"] = plan.cost
        info["planner_samples"] = float(plan.samples)
        first = plan.actions[:1]
        if not quasi:
            first = limit_sequence(first[None], previous, self.xhand.max_step)[0]
        action = first[0].numpy()
        if goal_name != FOLLOW:
            self._warm = (key, plan.actions[0].clone())  # warm start the next tick
        if not np.all(np.isfinite(action)):
            return hold, {"holding": 1.0, "reason": "non-finite plan"}
        if goal_name == FOLLOW and not quasi:
            self._followed_from = (s, float(state.t), (s_before, previous))
        return self._to_joints(action), info
