"""Plugin specs on the command line: ``NAME[:key=value,...]`` for any registry.

``dexteleop run --robot sim:wrist=follow,object=cube`` or ``--device quest3:speed=2``: the
name picks the registered plugin; each ``key=value`` sets a field of its Config, converted
to the field's type (from its default, or its annotation when the default is None). A comma
inside a value (``mount=1,0,0``) continues the value before it. A plugin class may also
take a positional shorthand (``replay:PATH``, ``glove:HOST:PORT``) through a classmethod
``shorthand_settings(arg) -> dict | None``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from assets.registry import Registry

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert_value(kind: str, key: str, text: str, field: dataclasses.Field[Any]) -> Any:
    """``text`` as the type of ``field`` (bool, int, float, a comma-separated tuple or
    text; ``none`` for an optional field). Raises ValueError naming the plugin kind and
    the setting."""
    default = field.default if field.default is not dataclasses.MISSING else None
    annotation = str(field.type)
    if isinstance(default, bool) or (default is None and annotation.startswith("bool")):
        low = text.lower()
        if low in _TRUE | _FALSE:
            return low in _TRUE
        raise ValueError(f"{kind}: {key} must be true or false, got {text!r}")
    if isinstance(default, tuple):  # comma-separated, typed as the default's items
        item = type(default[0]) if default else str
        if not default:  # or as the annotation's (tuple[float, ...])
            item = float if "float" in annotation else int if "int" in annotation else str
        try:
            return tuple(item(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise ValueError(
                f"{kind}: {key} must be comma-separated {item.__name__}s, got {text!r}"
            ) from None
    target: type | None = None
    if isinstance(default, int | float):
        target = type(default)
    elif default is None and annotation.startswith(("int", "float")):
        target = int if annotation.startswith("int") else float
    if target is not None:
        try:
            return target(text)
        except ValueError:
            raise ValueError(f"{kind}: {key} must be a {target.__name__}, got {text!r}") from None
    return text


def split_pairs(kind: str, arg: str) -> dict[str, str]:
    """``"a=1,b=x,y"`` -> ``{"a": "1", "b": "x,y"}``; ValueError on a bare word first."""
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
            raise ValueError(f"{kind}: expected key=value, got {item!r}")
    return raw


def typed_options(kind: str, config_cls: type, raw: dict[str, str]) -> dict[str, Any]:
    """Text settings converted to the types of ``config_cls``'s fields (unknown: ValueError)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ValueError(f"{kind} has no setting {key!r}; settings: {sorted(fields)}")
        out[key] = convert_value(kind, key, value, fields[key])
    return out


def parse_spec(registry: Registry[Any], spec: str) -> tuple[str, dict[str, Any]]:
    """``'sim:wrist=follow'`` -> ``('sim', {'wrist': 'follow'})`` for plugins of ``registry``.

    Raises:
        UnknownPluginError: unknown name. ValueError: unknown setting or bad value.
    """
    name, _, arg = spec.partition(":")
    cls = registry.get(name)
    if not arg:
        return name, {}
    kind = f"{registry.kind} {name}"
    if "=" in arg:
        raw = split_pairs(kind, arg)
    else:
        shorthand = getattr(cls, "shorthand_settings", None)
        raw = None if shorthand is None else shorthand(arg)
        if raw is None:
            raise ValueError(f"{kind}: use key=value settings after ':' (e.g. {name}:key=value)")
    return name, typed_options(kind, cls.Config, raw)  # type: ignore[attr-defined]
