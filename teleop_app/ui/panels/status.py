"""The status bar: loop state (E-STOP, ● REC, errors), loop rate and missed deadlines, 3D
view frame rate, device health, safety events."""

from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import QLabel, QStatusBar

from teleop_app.app_models import device_texts, loop_text, safety_text, state_text


class StatusLine:
    """The status bar's permanent labels; :meth:`update` refills them on the UI tick."""

    def __init__(self, bar: QStatusBar) -> None:
        self.loop = QLabel()
        self.device = QLabel()
        self.safety = QLabel()
        self.state = QLabel()
        for w in (self.state, self.loop, self.device, self.safety):
            bar.addPermanentWidget(w)

    def update(self, runner: Any, view: Any, view_fps: float, recording: bool) -> str:
        """Refill from the runner and its history ``view``; returns the device line for the
        connection panel (rich text)."""
        self.state.setText(state_text(runner, recording=recording))
        session = runner.session
        if view is not None and session is not None and len(view):
            self.loop.setText(
                loop_text(
                    view.rate_hz(),
                    session.config.rate_hz,
                    session.metrics.missed_deadlines,
                    view_fps,
                )
            )
            try:
                counts = dict(session.robot.safety.counts)
            except RuntimeError:  # the loop added a key while we copied: next time
                counts = {}
            self.safety.setText(safety_text(counts))
        else:
            self.loop.setText("loop -")
            self.safety.setText("")
        panel, bar = device_texts(runner.device_status())
        self.device.setText(bar)
        return panel
