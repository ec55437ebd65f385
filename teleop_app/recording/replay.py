"""Counterfactual replay: a recorded operator stream through any controller.

    dexteleop replay demos/ --episode 3 --controller dexgen --set guidance=0.5

The operator's recorded frames (keypoints, wrist, buttons, confidence, device time) are fed,
tick for tick, into a new session on the hand backend that recorded it (``--robot`` to
choose another; default the simulated hand), with the controller and settings you choose;
the report compares that run with the recorded one: tracking error, intervention, object
drops, safety events. Tune a controller on real operator input without
the operator. Replayed through the controller that recorded it, in ``--fast`` mode, the run
is reproduced exactly (the same targets, tick for tick) when the episode starts with the
session or the controller keeps no state beyond the hand's (its internal state at the
episode's start is not recorded); holds caused by frames the loop refused are not replayed
(those ticks are recorded as "no new frame").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devices.inputs.base import Device
from devices.robots.base import Simulated
from devices.tick import HumanFrame
from teleop_app.recording.dataset import read_sessions
from teleop_app.recording.reader import RecordedDataset


@dataclass
class DatasetDeviceConfig:
    path: str = ""
    episode: int = 0


class DatasetDevice(Device):
    """Publishes a recorded episode's operator frames at the ticks they were used.

    Tick ``k`` of the new session (time ``k / fps`` after connecting) sees the frame the
    recorded session used at its tick ``k``; ticks where the recording had no new frame see
    no new frame either. After the episode ends, nothing new arrives (the hand holds).
    """

    Config = DatasetDeviceConfig

    def __init__(
        self,
        config: DatasetDeviceConfig,
        *,
        episode: dict[str, Any] | None = None,
        fps: int | None = None,
    ):
        super().__init__()
        self.config = config
        if episode is None or fps is None:
            ds = RecordedDataset(config.path)
            fps = ds.fps
            episode = ds.episode(config.episode) if episode is None else episode
        self.fps = int(fps)
        new = np.asarray(episode["human.new_frame"], dtype=bool)
        self._recorded: list[HumanFrame | None] = []
        for k in range(len(new)):
            if not new[k]:
                self._recorded.append(None)
                continue
            buttons = json.loads(episode["human.buttons"][k] or "{}")
            self._recorded.append(
                HumanFrame(
                    keypoints=np.asarray(episode["human.keypoints"][k], float).reshape(21, 3),
                    wrist=np.asarray(episode["human.wrist"][k], float).reshape(4, 4),
                    t=float(episode["human.t"][k]),
                    seq=k,
                    confidence=float(episode["human.confidence"][k]),
                    buttons={str(a): float(b) for a, b in buttons.items()},
                )
            )
        self.length = len(self._recorded)
        self._t0: float | None = None
        self._next = 0

    def _start(self) -> None:
        self._t0 = self.clock.now()
        self._next = 0

    def _stop(self) -> None:
        pass

    def latest(self) -> HumanFrame | None:
        if self._t0 is not None:
            k = round((self.clock.now() - self._t0) * self.fps)
            while self._next <= min(k, self.length - 1):
                frame = self._recorded[self._next]
                if frame is not None:
                    self._publish(frame)
                self._next += 1
        return super().latest()


#: Controller settings added after recordings were made, with the value that behaves as the
#: controller did before (a recording without the setting replays the way it ran).
_ADDED_SETTINGS: dict[str, dict[str, Any]] = {"modex": {"offset_gain": 0.0}}


def _recorded_commands(ep: dict[str, Any]) -> Any:
    """``frame -> Command``: the command recorded at the tick that frame was published for."""
    from devices.tick import Command

    def command(frame: HumanFrame) -> Command:
        k = int(frame.seq)
        axis = np.asarray(ep["command.axis"][k], float)
        joints = np.asarray(ep["command.joints"][k], float)  # NaN: the solve was skipped
        gesture = ep["command.gesture"][k] or None
        return Command(
            t=float(frame.t),
            seq=k,
            keypoints=np.asarray(ep["command.keypoints"][k], float).reshape(8, 3),
            joints=joints if np.all(np.isfinite(joints)) else None,
            axis=axis if np.all(np.isfinite(axis)) else None,
            gesture=gesture,
        )

    return command


def _missing_joint_commands(ep: dict[str, Any]) -> bool:
    """True when some recorded command has no joint targets (a keypoint-only controller
    drove then, so the session skipped retargeting's joint solve)."""
    valid = np.asarray(ep["command.valid"], dtype=bool).reshape(-1)
    joints = np.asarray(ep["command.joints"], dtype=float)
    return bool(valid.any()) and not np.isfinite(joints[valid]).all()


def _restore_start(session: Any, ep: dict[str, Any]) -> bool:
    """Put the simulated hand (and object) where the episode started; False when the
    episode has no recorded simulator state (then it starts from the session's reset)."""
    robot = session.robot
    if "sim.state" not in ep or not isinstance(robot, Simulated):
        return False
    state0 = np.asarray(ep["sim.state"][0], float)
    if state0.size != len(robot.sim_state()) or not np.all(np.isfinite(state0)):
        return False
    robot.load_state(state0)
    target0 = np.asarray(ep["observation.target"][0], float)
    robot._target = target0.copy()
    if "observation.object_dropped" in ep:
        robot._dropped = bool(ep["observation.object_dropped"][0])
    robot.safety.reset(target0)
    state = robot.read()
    session.command_builder.restart_solve(state.q)  # when the frames are retargeted again
    session.controller.reset(state)
    return True


def _run_summary(ep: dict[str, Any]) -> dict[str, Any]:
    """Tracking error, intervention, drops and safety events of a recorded or replayed run."""
    valid = np.asarray(ep["command.valid"], dtype=bool)
    kp = np.asarray(ep["observation.keypoints"], float).reshape(-1, 8, 3)
    cmd = np.asarray(ep["command.keypoints"], float).reshape(-1, 8, 3)
    err = np.linalg.norm(kp - cmd, axis=2).mean(axis=1)[valid] * 1e3
    # intervention: where the hand's keypoints went vs the previous tick's command
    inter = np.linalg.norm(kp[1:] - cmd[:-1], axis=2).mean(axis=1)[valid[:-1]] * 1e3
    events: dict[str, int] = {}
    for line in ep["safety.events"]:
        for e in filter(None, str(line).split(",")):
            events[e] = events.get(e, 0) + 1
    out: dict[str, Any] = {
        "ticks": len(valid),
        "tracking_error_mm": round(float(err.mean()), 3) if err.size else None,
        "intervention_mm": round(float(inter.mean()), 3) if inter.size else None,
        "safety_events": dict(sorted(events.items())),
    }
    if "observation.object_dropped" in ep:
        dropped = np.asarray(ep["observation.object_dropped"], dtype=bool)
        out["object_dropped"] = bool(dropped.any())
        out["drop_tick"] = int(np.argmax(dropped)) if dropped.any() else None
    return out


def _replay_robot(session_info: dict[str, Any], spec: str | None) -> tuple[str, dict[str, Any]]:
    """The backend to replay on and its settings: the recorded ones (the simulated hand for
    a recording made on real hardware: a replay runs on a virtual clock), or ``spec`` (its
    own settings over the recorded ones that backend has)."""
    from devices.robots.base import ROBOTS
    from devices.spec import parse_spec
    from teleop_app.configs import robot_fields

    recorded = str(session_info.get("robot", "sim"))
    options = dict(session_info.get("robot_options", {}))
    if spec is None:
        if recorded in ROBOTS and not ROBOTS.get(recorded).drives_hardware:
            return recorded, options
        # recorded on a real hand (replays run on a virtual clock): on the simulated one
        spec = "sim"

    name, asked = parse_spec(ROBOTS, spec)
    if name != recorded:
        fields = robot_fields(name)
        options = {k: v for k, v in options.items() if k in fields}
    return name, {**options, **asked}


def _replay_arm(session_info: dict[str, Any], robot: str) -> tuple[str, dict[str, Any]]:
    """The arm to replay on: none if none was recorded; the recorded simulated arm and its
    settings; for a real arm (replays run on a virtual clock), the simulated arm with the
    recorded filter limits, when the replay's hand is the simulated one (else none)."""
    from devices.arms.base import ARMS, NO_ARM
    from devices.arms.sim import SimArmConfig

    recorded = str(session_info.get("arm", NO_ARM))
    options = dict(session_info.get("arm_options", {}))
    if recorded == NO_ARM or recorded not in ARMS:
        return NO_ARM, {}
    if not ARMS.get(recorded).drives_hardware:
        return recorded, options
    if robot != "sim":
        return NO_ARM, {}
    fields = {f.name for f in dataclasses.fields(SimArmConfig)} - {"rate_hz"}
    return "sim", {k: v for k, v in options.items() if k in fields}


def counterfactual(
    dataset: str | Path,
    episode: int,
    *,
    controller: str | None = None,
    settings: dict[str, Any] | None = None,
    retarget: bool = False,
    robot: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay ``episode`` through ``controller`` (default: the recorded one) on the hand
    backend ``robot`` (a spec, ``NAME[:key=value,...]``; default: the one that recorded it,
    else the simulated hand), in fast mode, from the episode's recorded starting state (when
    it was recorded and the backend is simulated).

    The recorded backend settings (object, wrist) carry over where the backend has them; the
    spec's own settings win. By default the recorded commands are replayed (the operator's
    stream as the controller saw it); with ``retarget`` the recorded human frames are
    retargeted again. Returns (report, what was run)."""
    from teleop_app.recording.features import hand_features, tick_row
    from teleop_app.session import Session, SessionConfig

    ds = RecordedDataset(dataset)
    ep = ds.episode(episode)
    recorded_ctrl = ep["controller.name"][0] if ep["controller.name"] else "retarget"
    recorded_settings = json.loads(ep["controller.settings"][0]) if len(ep["index"]) else {}
    hand = str(recorded_settings.get("hand", "leap"))
    name = controller or recorded_ctrl
    options = dict(settings or {})
    if controller is None or controller == recorded_ctrl:
        live = {k: v for k, v in recorded_settings.items() if k != "hand"}
        # settings added since: the values that reproduce what ran before they existed
        before = {k: v for k, v in _ADDED_SETTINGS.get(name, {}).items() if k not in live}
        options = {**before, **live, **options}
    session_info = read_sessions(Path(dataset)).get(str(episode), {})
    from teleop_app.configs import robot_fields

    robot_name, robot_options = _replay_robot(session_info, robot)
    hand = str(session_info.get("hand", hand))
    if (
        "observation.object_pose" in ds.features
        and "object" not in robot_options
        and "object" in robot_fields(robot_name)
    ):
        robot_options["object"] = "cube"  # recorded without session settings: a guess
    device = DatasetDevice(DatasetDeviceConfig(str(dataset), episode), episode=ep, fps=ds.fps)
    arm, arm_options = _replay_arm(session_info, robot_name)
    alignment = session_info.get("wrist_alignment")
    config = SessionConfig(
        hand=hand,
        robot=robot_name,
        robot_options=robot_options,
        device="dataset",
        controller=name,
        controller_options=options,
        rate_hz=float(ds.fps),
        fast=True,
        arm=arm,
        arm_options=arm_options,
        wrist_alignment=None if alignment is None else tuple(alignment),
    )
    session = Session(config, device=device)
    replayed_from = "human frames, retargeted again" if retarget else "recorded commands"
    reads_joints = "joints" in session.controller.command_fields
    if not retarget and reads_joints and _missing_joint_commands(ep):
        retarget = True  # a keypoint-only controller drove (some of) it: solve for joints now
        replayed_from = "human frames, retargeted again (recorded commands lack joints)"
    if not retarget:
        session.command_source = _recorded_commands(ep)
    arm_joints = None if session.arm is None else tuple(session.arm.spec.joint_names)
    features = hand_features(
        session.robot.hand, with_object="object" in robot_options, arm_joints=arm_joints
    )
    rows: list[dict[str, Any]] = []
    session.subscribe(lambda r: rows.append(tick_row(r, features)))
    with session:
        exact_start = _restore_start(session, ep)
        session.run(ticks=device.length)
    replay = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    for k, v in replay.items():
        if v and isinstance(v[0], np.ndarray):
            replay[k] = np.stack(v)
            if replay[k].shape[1] == 1:
                replay[k] = replay[k][:, 0]
    recorded = _run_summary(ep)
    replayed = _run_summary(replay)
    n = min(len(ep["action"]), len(replay.get("action", [])))
    diff = np.abs(np.asarray(ep["action"][:n]) - np.asarray(replay["action"][:n]))
    report = {
        "dataset": str(dataset),
        "episode": episode,
        "task": ep["task"],
        "recorded": {"controller": recorded_ctrl, "settings": recorded_settings, **recorded},
        "replayed": {
            "controller": name,
            "settings": session.controller.settings(),
            "robot": robot_name,
            **replayed,
        },
        "target_difference_rad": {
            "max": round(float(diff.max()), 6) if diff.size else 0.0,
            "mean": round(float(diff.mean()), 6) if diff.size else 0.0,
        },
        "limit_violations": session.robot.limit_violations,
        "replayed_from": replayed_from,
        "exact_start": exact_start,
    }
    if session.arm is not None and "observation.arm.palm" in ep:
        # where the palm went, recorded vs replayed (the arm's own figures in its report)
        a = np.asarray(ep["observation.arm.palm"][:n], float).reshape(-1, 16)[:, [3, 7, 11]]
        b = np.asarray(replay["observation.arm.palm"][:n], float).reshape(-1, 16)[:, [3, 7, 11]]
        d = np.linalg.norm(a - b, axis=1) * 1000.0
        d = d[np.isfinite(d)]
        report["arm"] = {
            "replayed_on": config.arm,
            "palm_difference_mm": {
                "max": round(float(d.max()), 3) if d.size else None,
                "mean": round(float(d.mean()), 3) if d.size else None,
            },
        }
    return report, dataclasses.asdict(config) | {"rows": len(rows)}
