"""The Hand hardware panel, for a hand that drives real hardware (``drives_hardware``): one
row per actuator (joint, temperature, current, voltage, hardware error, answering), the ones
with a problem highlighted; a banner with the active fault (the hand holds while there is
one) and the count of faults so far; **Clear fault**, which asks the backend to clear it and
says whether it did.

The hand is never read from the UI thread: :class:`~teleop_app.app_models.HardwareMonitor`
submits a read to the loop about twice a second and :meth:`HardwarePanel.poll` (the
window's UI tick) shows it once its future is done. The logic, without Qt, is there and in
:func:`~teleop_app.app_models.health_rows`.
"""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from teleop_app.app_models import ERROR, HEALTH_COLUMNS, RED, WARN, HardwareMonitor, HealthRow

#: Row backgrounds by a row's worst problem, and the text colour of a problem cell.
ROW_COLORS = {ERROR: "#f5b7b1", WARN: "#fcf3cf"}
CELL_COLORS = {ERROR: "#a93226", WARN: "#9a7d0a"}
FAULT_STYLE = (
    f"QLabel {{background: {RED}; color: white; font-weight: bold; padding: 4px;"
    " border-radius: 3px;}"
)
OK_STYLE = "QLabel {padding: 4px;}"
#: The width of the fault column left of the table (the window's left column's).
SIDE_WIDTH = 320
#: The height the window gives the panel at first (the table scrolls; the dock resizes).
DEFAULT_HEIGHT = 230


class HardwarePanel(QWidget):
    """The hand's health table, fault banner and Clear fault button; :meth:`poll` on the
    window's tick. ``hardware_changed(bool)`` says whether there is hardware to show (the
    window shows the panel only then)."""

    hardware_changed = pyqtSignal(bool)

    def __init__(self, runner: Any) -> None:
        super().__init__()
        self.model = HardwareMonitor(runner)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        # left: what there is to know (the fault, clearing it); right: the table
        side = QVBoxLayout()
        self.note = QLabel(self.model.note)
        self.note.setWordWrap(True)
        side.addWidget(self.note)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        side.addWidget(self.banner)
        self.clear_button = QPushButton("Clear fault")
        self.clear_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # space is the e-stop
        self.clear_button.setToolTip(
            "Ask the hand to clear the fault: it checks the cause is gone (a servo that "
            "answers again; an overloaded servo is rebooted) and the hand moves again from "
            "where it is"
        )
        self.clear_button.clicked.connect(self.clear_fault)
        side.addWidget(self.clear_button)
        self.clear_message = QLabel("")
        self.clear_message.setWordWrap(True)
        side.addWidget(self.clear_message)
        side.addStretch(1)
        box = QWidget()
        box.setLayout(side)
        box.setFixedWidth(SIDE_WIDTH)
        lay.addWidget(box)
        self.table = QTableWidget(0, len(HEALTH_COLUMNS))
        self.table.setHorizontalHeaderLabels([heading for _, heading in HEALTH_COLUMNS])
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.table.verticalHeader().setDefaultSectionSize(20)  # type: ignore[union-attr]
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.table.setMinimumHeight(120)
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table)
        lay.addStretch(1)
        self._shown_fault: str | None = None
        self._hardware: bool | None = None
        self._show()

    @property
    def hardware(self) -> bool:
        return self.model.hardware

    def clear_fault(self) -> None:
        self.model.clear_fault()
        self._show()

    def poll(self) -> None:
        if self.model.poll():
            self._show()

    def _show(self) -> None:
        m = self.model
        if m.hardware != self._hardware:
            self._hardware = m.hardware
            for w in (self.banner, self.clear_button, self.clear_message, self.table):
                w.setVisible(m.hardware)
            self.hardware_changed.emit(m.hardware)
        self.note.setText(m.note or m.read_error)
        self.note.setVisible(bool(m.note or m.read_error))
        text, level = m.banner
        self.banner.setText(text)
        self.banner.setStyleSheet(FAULT_STYLE if level == ERROR else OK_STYLE)
        self.clear_button.setEnabled(m.can_clear)
        color = RED if m.clear_error else "#2a2"
        self.clear_message.setText(
            f"<span style='color:{color}'>{m.clear_message}</span>" if m.clear_message else ""
        )
        self._fill(m.rows)
        if m.fault != self._shown_fault:  # a new fault: its actuator's row in view
            self._shown_fault = m.fault
            names = [row.name for row in m.rows]
            source = m.fault_source
            if source in names:
                item = self.table.item(names.index(source), 0)
                if item is not None:
                    self.table.scrollToItem(item, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _fill(self, rows: list[HealthRow]) -> None:
        t = self.table
        if t.rowCount() != len(rows):
            t.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for r, row in enumerate(rows):
            background = ROW_COLORS.get(row.level or "")
            tip = "\n".join(x for x in (row.name, row.detail, *row.reasons) if x)
            for c, ((key, _), text) in enumerate(zip(HEALTH_COLUMNS, row.cells, strict=True)):
                item = t.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    t.setItem(r, c, item)
                item.setText(text)
                item.setToolTip(tip)
                item.setBackground(QBrush(QColor(background)) if background else QBrush())
                problem = row.problems.get(key)
                item.setForeground(QBrush(QColor(CELL_COLORS[problem])) if problem else QBrush())
                item.setFont(bold if problem else QFont())
                if c >= 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
