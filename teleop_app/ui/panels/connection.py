"""The Connection panel: input device (with its live health), hand, hand backend, object,
wrist, retargeting, operator profile and its calibration, and the Connect button.

The choices here apply only at Connect (the session is rebuilt); the window saves them once
a connect with them succeeded.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
)

import devices.robots
from assets import HAND_SPECS, OBJECTS
from devices.retargeting.retargeter import RETARGET_MODES
from teleop_app.app_models import (
    NO_OPERATOR,
    Calibration,
    Choice,
    arm_choices,
    calibration_text,
    device_choices,
    robot_choices,
)
from teleop_app.app_settings import AppSettings
from teleop_app.profiles import ProfileError, list_profiles


def _red(text: str) -> str:
    return f"<span style='color:#d33'>{text}</span>"


def fill_choices(combo: QComboBox, choices: list[Choice], *, disable: bool) -> None:
    """Add ``choices`` to ``combo``, each with its reason (or "available") as tooltip; with
    ``disable``, the ones that cannot be used are greyed out."""
    model = combo.model()
    for c in choices:
        combo.addItem(c.name)
        i = combo.count() - 1
        combo.setItemData(i, c.tooltip, Qt.ItemDataRole.ToolTipRole)
        if disable and not c.available:
            model.item(i).setEnabled(False)  # type: ignore[attr-defined]


class ConnectionPanel(QGroupBox):
    """What to connect: the window calls :meth:`choices` at Connect, :meth:`poll` on its
    tick; ``connect_button`` is wired by the window."""

    message = pyqtSignal(str, int)

    def __init__(self, settings: AppSettings, runner: Any) -> None:
        super().__init__("Connection")
        self.calibration = Calibration(runner)
        s = settings
        form = QFormLayout(self)
        self.device_combo = QComboBox()
        self.device_combo.setEditable(True)
        fill_choices(self.device_combo, device_choices(), disable=False)
        self.device_combo.setCurrentText(s.device)
        self.device_combo.setToolTip("NAME[:ARGS]: replay, replay:clip.npz, glove:0.0.0.0:9870")
        form.addRow("device", self.device_combo)
        self.device_status = QLabel("-")
        self.device_status.setWordWrap(True)
        form.addRow("", self.device_status)
        self.hand_combo = QComboBox()
        self.hand_combo.addItems(sorted(HAND_SPECS))
        self.hand_combo.setCurrentText(s.hand)
        form.addRow("hand", self.hand_combo)
        self.robot_combo = QComboBox()
        self.robot_combo.setEditable(True)  # a backend's arguments: dynamixel:port=/dev/...
        fill_choices(self.robot_combo, robot_choices(), disable=True)
        self.robot_combo.setCurrentText(s.robot)
        self.robot_combo.setToolTip(
            "hand backend, NAME[:key=value,...]: "
            + ", ".join(devices.robots.ROBOTS.names())
            + " (sim: the simulated hand)"
        )
        form.addRow("robot", self.robot_combo)
        self.arm_combo = QComboBox()
        self.arm_combo.setEditable(True)  # an arm's arguments: franka:host=172.16.0.2
        fill_choices(self.arm_combo, arm_choices(), disable=True)
        self.arm_combo.setCurrentText(s.arm)
        self.arm_combo.setToolTip(
            "the arm carrying the hand, NAME[:key=value,...]: none (the wrist mount), sim (a "
            "simulated Franka Panda, with the simulated hand), franka:host=IP (a real one)"
        )
        form.addRow("arm", self.arm_combo)
        self.object_combo = QComboBox()
        self.object_combo.addItems(["none", *sorted(OBJECTS)])
        self.object_combo.setCurrentText(s.object)
        form.addRow("object", self.object_combo)
        self.wrist_combo = QComboBox()
        self.wrist_combo.addItems(list(devices.robots.WRIST_MODES))
        self.wrist_combo.setCurrentText(s.wrist)
        form.addRow("wrist", self.wrist_combo)
        self.retarget_combo = QComboBox()
        self.retarget_combo.addItems(list(RETARGET_MODES))
        self.retarget_combo.setCurrentText(s.retarget_mode)
        form.addRow("retargeting", self.retarget_combo)
        self.operator_combo = QComboBox()
        self.operator_combo.addItem(NO_OPERATOR)
        self.operator_combo.addItems(list_profiles())
        if s.operator:
            if self.operator_combo.findText(s.operator) < 0:
                self.operator_combo.addItem(s.operator)
            self.operator_combo.setCurrentText(s.operator)
        self.operator_combo.currentTextChanged.connect(self.show_calibration)
        form.addRow("operator", self.operator_combo)
        self.calibration_label = QLabel("-")
        self.calibration_label.setWordWrap(True)
        form.addRow("calibration", self.calibration_label)
        row = QHBoxLayout()
        self.operator_edit = QLineEdit()
        self.operator_edit.setPlaceholderText("operator id")
        self.calibrate_button = QPushButton("Calibrate")
        self.calibrate_button.setToolTip(
            f"Hold your hand flat, palm down, fingers forward, for "
            f"{self.calibration.seconds:.0f} s: measures your hand size and neutral wrist "
            "and saves your profile"
        )
        self.calibrate_button.clicked.connect(self.start_calibration)
        row.addWidget(self.operator_edit)
        row.addWidget(self.calibrate_button)
        form.addRow("", row)
        self.connect_button = QPushButton("Connect")
        form.addRow(self.connect_button)
        self.show_calibration()

    def choices(self) -> dict[str, Any]:
        """The connection choices as :class:`AppSettings` fields."""
        op = self.operator_combo.currentText()
        return {
            "device": self.device_combo.currentText().strip(),
            "hand": self.hand_combo.currentText(),
            "robot": self.robot_combo.currentText().strip(),
            "arm": self.arm_combo.currentText().strip() or "none",
            "object": self.object_combo.currentText(),
            "wrist": self.wrist_combo.currentText(),
            "retarget_mode": self.retarget_combo.currentText(),
            "operator": "" if op == NO_OPERATOR else op,
        }

    def show_calibration(self) -> None:
        text, problem = calibration_text(self.operator_combo.currentText())
        self.calibration_label.setText(_red(text) if problem else text)

    def start_calibration(self) -> Future[Any] | None:
        """Collect frames of the calibration pose from the connected device, then save the
        operator's profile (applied at the next Connect)."""
        name = self.operator_edit.text().strip() or self.operator_combo.currentText()
        try:
            future = self.calibration.start(name)
        except ProfileError as e:
            self.calibration_label.setText(_red(str(e)))
            return None
        except ValueError as e:  # no name
            self.calibration_label.setText(str(e))
            return None
        self.calibrate_button.setEnabled(False)
        self.calibration_label.setText(
            f"calibrating {name}: hold your hand flat, palm down, fingers forward..."
        )
        return future

    def poll(self) -> None:
        """Show a finished calibration."""
        done = self.calibration.poll()
        if done is None:
            return
        self.calibrate_button.setEnabled(True)
        if done.profile is None:
            self.calibration_label.setText(_red(f"calibration failed: {done.error}"))
            return
        name = done.name
        if self.operator_combo.findText(name) < 0:
            self.operator_combo.addItem(name)
        self.operator_combo.setCurrentText(name)
        self.show_calibration()
        self.message.emit(
            f"operator {name}: scale {done.profile.scale:.3f} saved; press Connect to apply",
            10000,
        )
