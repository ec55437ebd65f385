"""Building a simulated-hand session's configuration from what a user chose (the command
line, the app's settings): one place, so ``run``, ``record`` and the app agree."""

from __future__ import annotations

import logging
from typing import Any

from devices.inputs.spec import parse_device_spec
from devices.retargeting.retargeter import RetargetConfig
from teleop_app.session import SessionConfig

log = logging.getLogger(__name__)


def sim_session_config(
    *,
    hand: str,
    device: str,
    controller: str,
    controller_options: dict[str, Any] | None = None,
    wrist: str = "palm_up",
    obj: str | None = None,
    object_mass_kg: float | None = None,
    object_friction: float | None = None,
    operator: str | None = None,
    retarget_mode: str = "position",
    scale: float = 1.0,
    **session: Any,
) -> SessionConfig:
    """A :class:`SessionConfig` on the simulated hand. ``device`` is a device spec
    (``glove:0.0.0.0:9870``); ``obj`` "none" or None means no object; an ``operator``
    profile multiplies ``scale`` and sets the wrist alignment. Raises what a bad choice
    raises (unknown device, bad arguments, a damaged profile)."""
    device_name, device_options = parse_device_spec(device)
    robot_options: dict[str, Any] = {"wrist": wrist}
    if obj and obj != "none":
        robot_options["object"] = obj
    if object_mass_kg is not None:
        robot_options["object_mass_kg"] = object_mass_kg
    if object_friction is not None:
        robot_options["object_friction"] = object_friction
    alignment = None
    if operator:
        from teleop_app.profiles import load_profile

        profile = load_profile(operator)
        scale, alignment = profile.scale * scale, profile.wrist_alignment
        log.info("operator %s: scale %.3f", profile.name, scale)
    return SessionConfig(
        hand=hand,
        robot="sim",
        robot_options=robot_options,
        device=device_name,
        device_options=device_options,
        controller=controller,
        controller_options=dict(controller_options or {}),
        retarget=RetargetConfig(mode=retarget_mode, scale=scale),
        wrist_alignment=alignment,
        **session,
    )
