"""Device specs on the command line: ``NAME[:ARGS]`` (the one parser: :mod:`devices.spec`).

``ARGS`` is either ``key=value`` pairs separated by commas (``quest3:logcat=cap.txt,speed=2``),
or a device's positional shorthand, which the device class maps to its settings
(:meth:`Device.shorthand_settings <devices.inputs.base.Device.shorthand_settings>`, e.g.
``replay:PATH``). Values are converted to the type of the setting.
"""

from __future__ import annotations

from typing import Any

from devices.inputs.base import DEVICES
from devices.spec import parse_spec


def parse_device_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'glove:127.0.0.1:9870'`` -> ``('glove', {'host': '127.0.0.1', 'port': 9870})``.

    Raises:
        UnknownPluginError: unknown device. ValueError: unknown setting or bad value.
    """
    return parse_spec(DEVICES, spec)
