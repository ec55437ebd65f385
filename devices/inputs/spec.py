"""Device specs on the command line: ``NAME[:ARGS]``.

``ARGS`` is either ``key=value`` pairs separated by commas (``quest3:logcat=cap.txt,speed=2``),
or a device's positional shorthand, which the device class maps to its settings
(:meth:`Device.shorthand_settings <devices.inputs.base.Device.shorthand_settings>`, e.g.
``replay:PATH``). Values are converted to the type of the setting's default.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from devices.inputs.base import DEVICES, Device

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, key: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = text.lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise ValueError(f"device {name}: {key} must be true or false, got {text!r}")
    if isinstance(default, int | float):
        try:
            return type(default)(text)
        except ValueError:
            raise ValueError(
                f"device {name}: {key} must be a {type(default).__name__}, got {text!r}"
            ) from None
    return text


def _positional(name: str, device_cls: type[Device], arg: str) -> dict[str, str]:
    raw = device_cls.shorthand_settings(arg)
    if raw is None:
        raise ValueError(f"device {name}: use key=value settings after ':' (e.g. {name}:key=value)")
    return raw


def parse_device_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'glove:127.0.0.1:9870'`` -> ``('glove', {'host': '127.0.0.1', 'port': 9870})``.

    Raises:
        UnknownPluginError: unknown device. ValueError: unknown setting or bad value.
    """
    name, _, arg = spec.partition(":")
    device_cls = DEVICES.get(name)
    config_cls = device_cls.Config
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if not arg:
        return name, {}
    if "=" in arg:
        raw: dict[str, str] = {}
        last = None
        for item in arg.split(","):
            key, eq, value = item.partition("=")
            if eq:
                last = key.strip()
                raw[last] = value.strip()
            elif last is not None:  # a comma inside a value (mount=1,0,0,...): keep it
                raw[last] += "," + item.strip()
            else:
                raise ValueError(f"device {name}: expected key=value, got {item!r}")
    else:
        raw = _positional(name, device_cls, arg)
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ValueError(f"device {name} has no setting {key!r}; settings: {sorted(fields)}")
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else None
        options[key] = _convert(name, key, value, default)
    return name, options
