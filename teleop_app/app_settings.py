"""The app's settings, kept between runs in ``$DEXTELEOP_HOME/app.json`` (no Qt).

What the operator chose last (hand, hand backend, device, object, wrist, controller and each
controller's live settings, operator, task label, plot choices, window geometry) comes back
on the next start. The file is written atomically; a damaged or foreign file is set aside
(renamed to ``app.json.bad``) and the defaults are used, with a message, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assets.atomic import write_atomic
from teleop_app.profiles import app_home

log = logging.getLogger(__name__)


@dataclass
class AppSettings:
    """Attributes:
    hand: hand spec. robot: hand backend spec (``sim``, ``NAME:key=value,...``).
    arm: the arm carrying the hand (``none``, ``sim``, ``franka:host=IP``).
    device: device spec (``replay``, ``glove:HOST:PORT``, ...).
    object: simulated object or "none". wrist: wrist orientation of the simulated mount.
    controller: controller name. controller_settings: controller -> live settings.
    retarget_mode: retargeting mode. operator: operator profile name or "".
    task: task label for recordings. dataset: the folder recordings go to ("" = default).
    plot_finger: finger shown in the plots.
    geometry: the main window's saved geometry (hex), or "".
    """

    hand: str = "leap"
    robot: str = "sim"
    arm: str = "none"
    device: str = "replay"
    object: str = "cube"
    wrist: str = "palm_up"
    controller: str = "retarget"
    controller_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    retarget_mode: str = "position"
    operator: str = ""
    task: str = ""
    dataset: str = ""
    plot_finger: str = "index"
    geometry: str = ""


def default_dataset() -> Path:
    """Where the app records when no folder was chosen."""
    return app_home() / "datasets" / "demos"


def settings_path() -> Path:
    return app_home() / "app.json"


def load_settings(path: Path | None = None) -> tuple[AppSettings, str]:
    """The saved settings (defaults if none) and a message ("" when all was well)."""
    path = path or settings_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return AppSettings(), ""
    except (OSError, ValueError) as e:
        return AppSettings(), _set_aside(path, f"unreadable ({e})")
    if not isinstance(raw, dict):
        return AppSettings(), _set_aside(path, "not a JSON object")
    defaults = AppSettings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(AppSettings):
        if f.name not in raw:
            continue
        v, d = raw[f.name], getattr(defaults, f.name)
        if type(v) is not type(d):
            log.warning("%s: ignoring %s=%r (expected %s)", path, f.name, v, type(d).__name__)
            continue
        values[f.name] = v
    cs = values.get("controller_settings", {})
    values["controller_settings"] = {
        k: v for k, v in cs.items() if isinstance(k, str) and isinstance(v, dict)
    }
    return AppSettings(**values), ""


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    """Write the settings atomically. OSError (full disk, permissions) propagates."""
    return write_atomic(
        path or settings_path(), json.dumps(dataclasses.asdict(settings), indent=2) + "\n"
    )


def _set_aside(path: Path, why: str) -> str:
    bad = path.with_name(path.name + ".bad")
    try:
        path.replace(bad)
        where = f"moved to {bad}"
    except OSError:
        where = "left in place"
    msg = f"settings file {path} {why}; using defaults ({where})"
    log.warning(msg)
    return msg


def controller_options(settings: AppSettings, controller: str) -> dict[str, Any]:
    """The saved live settings of ``controller`` that its specs still accept (others are
    dropped with a warning: a setting renamed or re-ranged since must not stop the app)."""
    from controllers.base import CONTROLLERS

    saved = settings.controller_settings.get(controller, {})
    if controller not in CONTROLLERS:
        return {}
    specs = {s.name: s for s in CONTROLLERS.get(controller).setting_specs()}
    out: dict[str, Any] = {}
    for name, value in saved.items():
        try:
            out[name] = specs[name].check(value)
        except (KeyError, ValueError) as e:
            log.warning("dropping saved setting %s.%s=%r: %s", controller, name, value, e)
    return out


def session_config(settings: AppSettings) -> Any:
    """The :class:`~teleop_app.session.SessionConfig` the app connects with.

    The scene choices (object, wrist) go to backends that have a scene; a real hand has
    none, and the app's remembered object does not stop it from connecting.

    Raises what a bad choice raises (unknown device or hand backend, bad arguments, a
    damaged operator profile), with a message for the operator.
    """
    from teleop_app import configs

    scene = configs.scene_fields(settings.robot)
    return configs.session_config(
        hand=settings.hand,
        robot=settings.robot,
        device=settings.device,
        controller=settings.controller,
        controller_options=controller_options(settings, settings.controller),
        wrist=settings.wrist if "wrist" in scene else "palm_up",
        obj=settings.object if "object" in scene else None,
        operator=settings.operator or None,
        retarget_mode=settings.retarget_mode,
        arm=settings.arm or "none",
    )
