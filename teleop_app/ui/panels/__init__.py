"""The main window's panels, one module each.

Each panel is a view: it builds its widgets from the settings, calls its Qt-free model
(:mod:`teleop_app.app_models`, the session runner) on a click, and reads it again in its
``poll`` on the window's UI tick. A panel tells the window something for the status bar
through its ``message(text, timeout_ms)`` signal.
"""

from teleop_app.ui.panels.connection import ConnectionPanel
from teleop_app.ui.panels.controller import ControllerPanel
from teleop_app.ui.panels.estop import EstopKeys, EstopPanel
from teleop_app.ui.panels.hardware import HardwarePanel
from teleop_app.ui.panels.plots import PlotsPanel
from teleop_app.ui.panels.recording import RecordingPanel
from teleop_app.ui.panels.status import StatusLine

__all__ = [
    "ConnectionPanel",
    "ControllerPanel",
    "EstopKeys",
    "EstopPanel",
    "HardwarePanel",
    "PlotsPanel",
    "RecordingPanel",
    "StatusLine",
]
