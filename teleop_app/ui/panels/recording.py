"""The Recording panel: dataset folder, task label, operator, **● Record**, **Stop & save**,
**Discard**, the episode count and what is being written, and the last message (a full
disk, a folder of another hand) in red. The logic is :class:`RecordingModel`'s."""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton

from teleop_app.app_models import RecordingModel
from teleop_app.app_settings import AppSettings, default_dataset
from teleop_app.recording.control import RecordingControl


class RecordingPanel(QGroupBox):
    """Records the runner's session (``control``) into the chosen dataset folder."""

    def __init__(self, settings: AppSettings, runner: Any) -> None:
        super().__init__("Recording")
        self.settings = settings
        self.control = RecordingControl(runner)
        self.model = RecordingModel(self.control, runner)
        form = QFormLayout(self)
        self.dataset_edit = QLineEdit(settings.dataset or str(default_dataset()))
        self.dataset_edit.setToolTip(
            "Dataset folder (LeRobot v3.0 layout); episodes are appended to it"
        )
        form.addRow("dataset", self.dataset_edit)
        self.task_edit = QLineEdit(settings.task)
        self.task_edit.setPlaceholderText("e.g. rotate cube about z")
        form.addRow("task", self.task_edit)
        self.operator_id = QLabel(settings.operator or "(none)")
        form.addRow("operator", self.operator_id)
        row = QHBoxLayout()
        self.record_start = QPushButton("● Record")
        self.record_stop = QPushButton("Stop && save")
        self.record_discard = QPushButton("Discard")
        self.record_start.clicked.connect(self.start)
        self.record_stop.clicked.connect(self.stop)
        self.record_discard.clicked.connect(self.discard)
        for b in (self.record_start, self.record_stop, self.record_discard):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # space is the e-stop, not a click
            row.addWidget(b)
        form.addRow(row)
        self.episodes_label = QLabel(self.model.counts)
        form.addRow(self.episodes_label)
        self.recording_message = QLabel("")
        self.recording_message.setWordWrap(True)
        form.addRow(self.recording_message)
        self._show()

    def store_values(self) -> None:
        """Copy the task label and the folder into the settings."""
        self.settings.task = self.task_edit.text()
        self.settings.dataset = self.dataset_edit.text().strip()

    def show_operator(self, operator: str) -> None:
        self.operator_id.setText(operator or "(none)")

    def start(self) -> None:
        self.store_values()
        self.model.start(
            self.dataset_edit.text().strip(), self.task_edit.text(), self.settings.operator
        )
        self._show()

    def stop(self) -> None:
        self.model.stop()
        self._show()

    def discard(self) -> None:
        self.model.discard()
        self._show()

    def poll(self) -> None:
        self.model.poll()
        self._show()

    def _show(self) -> None:
        m = self.model
        if m.message:
            color = "#d33" if m.error else "#2a2"
            self.recording_message.setText(f"<span style='color:{color}'>{m.message}</span>")
        self.episodes_label.setText(m.counts)
        b = m.buttons()
        self.record_start.setEnabled(b.start)
        self.record_stop.setEnabled(b.stop)
        self.record_discard.setEnabled(b.discard)
        self.dataset_edit.setEnabled(b.dataset)
