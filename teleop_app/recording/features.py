"""What one tick records: the feature schema of a dataset and a tick's row.

Feature names follow LeRobot's conventions (``observation.state``, ``action``) where one
applies; the rest are namespaced (``human.*``, ``command.*``, ``controller.*``,
``safety.*``, ``timing.*``). Arrays are flattened to one dimension, with ``names`` saying
what each entry is. Values that change shape from controller to controller or from tick to
tick (a controller's settings and ``info``, the safety events, the operator's buttons) are
JSON text columns, so one schema holds any controller.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from assets.hands import ROBOT_KEYPOINT_NAMES
from devices.tick import NUM_HUMAN_KEYPOINTS
from teleop_app.metrics import STAGES

if TYPE_CHECKING:
    from assets.hands import Hand
    from teleop_app.session import TickRecord

HUMAN_KEYPOINTS = NUM_HUMAN_KEYPOINTS

#: LeRobot's bookkeeping columns, present in every dataset.
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def _xyz(names: tuple[str, ...] | list[str]) -> list[str]:
    return [f"{n}.{a}" for n in names for a in "xyz"]


def _f(dtype: str, names: list[str] | None, n: int | None = None) -> dict[str, Any]:
    size = len(names) if names is not None else n
    return {"dtype": dtype, "shape": [int(size or 1)], "names": names}


def hand_features(
    hand: Hand,
    *,
    with_object: bool,
    sim_state_size: int | None = None,
    arm_joints: tuple[str, ...] | None = None,
) -> dict[str, dict[str, Any]]:
    """The schema of a dataset recorded on ``hand`` (without LeRobot's default columns).
    ``sim_state_size``: record the simulator's full state too (exact replays, rendering).
    ``arm_joints``: the hand rides an arm with these joints: its joint state, the palm's pose
    it measures (``observation.arm.palm``, the end effector) and the palm target sent
    (``action.arm.palm``), 4x4 row-major in the arm's world."""
    joints = list(hand.joint_names)
    kp = _xyz(list(ROBOT_KEYPOINT_NAMES))
    feats: dict[str, dict[str, Any]] = {
        "observation.state": _f("float32", joints),
        "observation.velocity": _f("float32", joints),
        "observation.target": _f("float32", joints),
        "observation.keypoints": _f("float32", kp),
        "action": _f("float32", joints),
        "human.keypoints": _f("float32", _xyz([f"k{i}" for i in range(HUMAN_KEYPOINTS)])),
        "human.wrist": _f("float32", [f"m{r}{c}" for r in range(4) for c in range(4)]),
        "human.confidence": _f("float32", None, 1),
        "human.new_frame": _f("bool", None, 1),
        "human.t": _f("float64", None, 1),
        "human.buttons": {"dtype": "string", "shape": [1], "names": None},
        "command.keypoints": _f("float32", kp),
        "command.joints": _f("float32", joints),
        "command.axis": _f("float32", ["x", "y", "z"]),
        "command.valid": _f("bool", None, 1),
        "command.gesture": {"dtype": "string", "shape": [1], "names": None},
        "controller.target": _f("float32", joints),
        "controller.holding": _f("bool", None, 1),
        "controller.name": {"dtype": "string", "shape": [1], "names": None},
        "controller.settings": {"dtype": "string", "shape": [1], "names": None},
        "controller.info": {"dtype": "string", "shape": [1], "names": None},
        "safety.events": {"dtype": "string", "shape": [1], "names": None},
        "timing.stage_ms": _f("float32", list(STAGES)),
        "time.loop_s": _f("float64", None, 1),
    }
    if sim_state_size:
        feats["sim.state"] = _f("float64", None, sim_state_size)
    if with_object:
        feats["observation.object_pose"] = _f("float32", ["x", "y", "z", "qw", "qx", "qy", "qz"])
        feats["observation.object_dropped"] = _f("bool", None, 1)
    if arm_joints:
        pose = [f"m{r}{c}" for r in range(4) for c in range(4)]
        feats["observation.arm.state"] = _f("float32", list(arm_joints))
        feats["observation.arm.velocity"] = _f("float32", list(arm_joints))
        feats["observation.arm.palm"] = _f("float32", pose)
        feats["action.arm.palm"] = _f("float32", pose)
    return feats


def _json(x: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(w) for k, w in v.items()}
        if isinstance(v, list | tuple):
            return [clean(w) for w in v]
        if isinstance(v, np.ndarray):
            return clean(v.tolist())
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v if isinstance(v, str | int | float | bool) or v is None else str(v)

    return json.dumps(clean(x), separators=(",", ":"))


def _vec(x: Any, n: int) -> np.ndarray:
    if x is None:
        return np.full(n, np.nan, dtype=np.float32)
    return np.asarray(x, dtype=np.float32).reshape(-1)[:n]


def tick_row(r: TickRecord, features: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One tick as a row of ``features`` (numpy arrays and strings; no bookkeeping columns).
    Cheap: it runs on the loop thread."""
    n = features["observation.state"]["shape"][0]
    s = r.state
    frame, cmd = r.frame, r.command
    row: dict[str, Any] = {
        "observation.state": _vec(s.q, n),
        "observation.velocity": _vec(s.dq, n),
        "observation.target": _vec(s.target, n),
        "observation.keypoints": _vec(s.keypoints, 24),
        "action": _vec(r.sent, n),
        "human.keypoints": _vec(None if frame is None else frame.keypoints, 3 * HUMAN_KEYPOINTS),
        "human.wrist": _vec(None if frame is None else frame.wrist, 16),
        "human.confidence": _vec(None if frame is None else [frame.confidence], 1),
        "human.new_frame": np.array([frame is not None]),
        "human.t": np.array([np.nan if frame is None else float(frame.t)]),
        "human.buttons": _json({} if frame is None else dict(frame.buttons or {})),
        "command.keypoints": _vec(None if cmd is None else cmd.keypoints, 24),
        "command.joints": _vec(None if cmd is None else cmd.joints, n),
        "command.axis": _vec(None if cmd is None else cmd.axis, 3),
        "command.valid": np.array([cmd is not None]),
        "command.gesture": "" if cmd is None or cmd.gesture is None else str(cmd.gesture),
        "controller.target": _vec(r.target, n),
        "controller.holding": np.array([r.target is None]),
        "controller.name": r.controller,
        "controller.settings": _json(r.settings),
        "controller.info": _json(r.info),
        "safety.events": ",".join(r.events),
        "timing.stage_ms": np.array(
            [r.timings_ms.get(k, np.nan) for k in STAGES], dtype=np.float32
        ),
        "time.loop_s": np.array([float(r.t)]),
    }
    if "sim.state" in features:
        size = features["sim.state"]["shape"][0]
        row["sim.state"] = (
            np.full(size, np.nan) if r.sim_state is None else np.asarray(r.sim_state, float)
        )
    if "observation.object_pose" in features:
        row["observation.object_pose"] = _vec(s.object_pose, 7)
        row["observation.object_dropped"] = np.array([bool(s.object_dropped)])
    if "observation.arm.state" in features:
        m = features["observation.arm.state"]["shape"][0]
        arm = r.arm
        row["observation.arm.state"] = _vec(None if arm is None else arm.q, m)
        row["observation.arm.velocity"] = _vec(None if arm is None else arm.dq, m)
        row["observation.arm.palm"] = _vec(None if arm is None else arm.palm, 16)
        row["action.arm.palm"] = _vec(None if arm is None else arm.target, 16)
    return row
