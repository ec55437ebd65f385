"""Building a session's configuration from what a user chose (the command line, the app's
settings): one place, so ``run``, ``record``, ``replay`` and the app agree."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import devices.arms  # registers the arm backends
import devices.robots  # noqa: F401  (registers the hand backends)
from devices.arms.base import ARMS, NO_ARM
from devices.inputs.spec import parse_device_spec
from devices.retargeting.retargeter import RetargetConfig
from devices.robots.base import ROBOTS
from devices.spec import parse_spec
from teleop_app.session import SessionConfig

log = logging.getLogger(__name__)


def robot_fields(name: str) -> set[str]:
    """The settings of the hand backend ``name`` (its Config's fields)."""
    return {f.name for f in dataclasses.fields(ROBOTS.get(name).Config)}


def scene_fields(robot: str) -> set[str]:
    """The simulated-scene settings (``object``, ``wrist``, ...) the backend of the spec
    ``robot`` has (none for a real hand)."""
    return robot_fields(robot.partition(":")[0]) & {
        "object",
        "wrist",
        "object_mass_kg",
        "object_friction",
    }


def session_config(
    *,
    hand: str,
    device: str,
    controller: str,
    robot: str = "sim",
    controller_options: dict[str, Any] | None = None,
    wrist: str = "palm_up",
    obj: str | None = None,
    object_mass_kg: float | None = None,
    object_friction: float | None = None,
    operator: str | None = None,
    retarget_mode: str = "position",
    scale: float = 1.0,
    arm: str = NO_ARM,
    **session: Any,
) -> SessionConfig:
    """A :class:`SessionConfig`. ``robot`` is a hand backend spec (``sim``,
    ``sim:wrist=follow``; ``dexteleop robots`` lists them) and ``device`` a device spec
    (``glove:0.0.0.0:9870``). The scene options (``wrist``, ``obj``, object mass and
    friction) go to backends that have them; asking one of a backend without it (an object
    on a real hand) is an error. ``obj`` "none" or None means no object; an ``operator``
    profile multiplies ``scale`` and sets the wrist alignment. ``arm`` is an arm backend
    spec (``none``, ``sim``, ``franka:host=IP``). Raises what a bad choice raises (unknown
    device or backend, bad arguments, a damaged profile)."""
    device_name, device_options = parse_device_spec(device)
    robot_name, robot_options = parse_spec(ROBOTS, robot)
    for key, what in (("hand", "the hand"), ("rate_hz", "the control rate")):
        if key in robot_options:
            raise ValueError(f"robot {robot_name}: {what} is the session's, not a robot setting")
    if robot_options.get("object") == "none":
        del robot_options["object"]  # as --object none: no object
    fields = robot_fields(robot_name)
    scene: dict[str, Any] = {"wrist": wrist}
    if obj and obj != "none":
        scene["object"] = obj
    if object_mass_kg is not None:
        scene["object_mass_kg"] = object_mass_kg
    if object_friction is not None:
        scene["object_friction"] = object_friction
    for key, value in scene.items():
        asked = key != "wrist" or value != "palm_up"  # the default wrist: nothing asked
        if key in robot_options:
            if asked and robot_options[key] != value:
                raise ValueError(
                    f"robot {robot_name}: {key} is {robot_options[key]!r} in the robot spec "
                    f"but {value!r} in the session's options; give it once"
                )
        elif key in fields:
            robot_options[key] = value
        elif asked:
            raise ValueError(f"robot {robot_name} has no setting {key!r} (a simulated scene's)")
    alignment = None
    if operator:
        from teleop_app.profiles import load_profile

        profile = load_profile(operator)
        scale, alignment = profile.scale * scale, profile.wrist_alignment
        log.info("operator %s: scale %.3f", profile.name, scale)
    arm_name, arm_options = (NO_ARM, {}) if arm in (None, NO_ARM) else parse_spec(ARMS, arm)
    if "rate_hz" in arm_options:
        raise ValueError(f"arm {arm_name}: the control rate is the session's, not an arm setting")
    return SessionConfig(
        hand=hand,
        robot=robot_name,
        arm=arm_name,
        arm_options=arm_options,
        robot_options=robot_options,
        device=device_name,
        device_options=device_options,
        controller=controller,
        controller_options=dict(controller_options or {}),
        retarget=RetargetConfig(mode=retarget_mode, scale=scale),
        wrist_alignment=alignment,
        **session,
    )
