"""The desktop app (PyQt6 + pyqtgraph). The only package that imports Qt.

Models (session, runner, history, settings) live outside this package and know nothing of
Qt; the widgets here read them on a timer (about 30 Hz) and send changes through the
session's queue, so the UI never blocks the control loop.
"""
