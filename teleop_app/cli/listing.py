"""``dexteleop list``, ``devices`` and ``robots``: what is registered, and what works here."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_list(args: argparse.Namespace) -> int:
    import controllers
    import devices.inputs
    import devices.robots
    from assets import HAND_SPECS, OBJECTS
    from devices.retargeting.retargeter import RETARGET_MODES

    rows = {
        "hands": sorted(HAND_SPECS),
        "hand backends": devices.robots.ROBOTS.names(),
        "devices": devices.inputs.DEVICES.names(),
        "controllers": controllers.CONTROLLERS.names(),
        "retargeting modes": list(RETARGET_MODES),
        "wrist modes": list(devices.robots.WRIST_MODES),
        "objects": sorted(OBJECTS),
    }
    for k, v in rows.items():
        print(f"{k:18s} {', '.join(v)}")
    return 0


def _print_availability(registry: Any) -> None:
    """Each plugin of ``registry``: whether it works here (its ``availability()``) and the
    first line of its docstring."""
    for name in registry.names():
        cls = registry.get(name)
        try:
            reason = cls.availability()
        except Exception as e:  # noqa: BLE001 - a broken probe means unavailable
            reason = f"{type(e).__name__}: {e}"
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        state = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:8s} {state}")
        if doc:
            print(f"         {doc}")


def cmd_devices(args: argparse.Namespace) -> int:
    import devices.inputs

    _print_availability(devices.inputs.DEVICES)
    return 0


def cmd_robots(args: argparse.Namespace) -> int:
    import devices.arms
    import devices.robots

    print("hand backends (--robot):")
    _print_availability(devices.robots.ROBOTS)
    print("arm backends (--arm; none: the hand's own wrist mount):")
    _print_availability(devices.arms.ARMS)
    return 0


def add_parsers(sub: Any) -> None:
    ls = sub.add_parser("list", help="list hands, devices, controllers and options")
    ls.set_defaults(func=cmd_list)

    dv = sub.add_parser("devices", help="list input devices and whether they work here")
    dv.set_defaults(func=cmd_devices)

    rb = sub.add_parser("robots", help="list hand and arm backends and whether they work here")
    rb.set_defaults(func=cmd_robots)
