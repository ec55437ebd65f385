"""The plots panel: which finger to show, over the live plots (:mod:`teleop_app.ui.plots`)."""

from __future__ import annotations

from typing import Any

from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from assets.hands import FINGERS
from controllers.base import LiveSetting
from teleop_app.app_models import setting_range
from teleop_app.history import HistoryView
from teleop_app.ui.plots import LivePlots

#: The loop rate assumed before a session runs.
DEFAULT_RATE_HZ = 20.0


class PlotsPanel(QWidget):
    """A finger picker over :class:`LivePlots`."""

    def __init__(self, finger: str) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("finger:"))
        self.finger_combo = QComboBox()
        self.finger_combo.addItems(list(FINGERS))
        self.finger_combo.setCurrentText(finger)
        self.finger_combo.currentTextChanged.connect(self._finger_changed)
        row.addWidget(self.finger_combo)
        row.addStretch(1)
        lay.addLayout(row)
        self.plots = LivePlots()
        self.plots.set_finger(self.finger_combo.currentText())
        lay.addWidget(self.plots)

    def _finger_changed(self, finger: str) -> None:
        self.plots.set_finger(finger)

    def connected(self, session: Any) -> None:
        """A new session (or None): its tick period, the hand's joint limits and names."""
        rate = session.config.rate_hz if session is not None else DEFAULT_RATE_HZ
        self.plots.set_period(1.0 / rate)
        if session is not None:
            hand = session.robot.hand
            self.plots.set_limits(hand.lower, hand.upper)
            self.plots.set_finger(self.finger_combo.currentText(), hand.joint_names)

    def show_settings(self, specs: list[LiveSetting]) -> None:
        """The live-settings plot's range for a new controller's settings."""
        self.plots.set_setting_range(*setting_range(specs))

    def update_from(self, view: HistoryView, live: tuple[str, ...]) -> None:
        self.plots.update_from(view, live)
