"""A controller's live settings as widgets, built from its Config's :class:`LiveSetting`s.

float -> slider with a number box, int -> spin box, bool -> check box, choice -> combo box,
axis -> six axis buttons and "free", text -> code editor with an Apply button. Each change
goes to the session's queue (applied at the start of the next tick); a refused change (out
of range, a cost function that does not compile) is shown under the form, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from controllers.base import LiveSetting

SLIDER_STEPS = 1000


class FloatSetting(QWidget):
    """A slider and a number box kept in step; ``changed(value)`` on every move of the
    slider and when a typed number is committed (Enter or leaving the box). A setting
    without both bounds gets the number box alone."""

    def __init__(self, spec: LiveSetting, value: float, changed: Callable[[float], None]) -> None:
        super().__init__()
        self.spec, self._changed = spec, changed
        bounded = spec.low is not None and spec.high is not None
        self.low = float(spec.low) if spec.low is not None else -1e9
        self.high = float(spec.high) if spec.high is not None else 1e9
        n = SLIDER_STEPS
        if spec.step and bounded:
            n = max(1, round((self.high - self.low) / spec.step))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, n)
        self.slider.setVisible(bounded)
        self.box = QDoubleSpinBox()
        self.box.setRange(self.low, self.high)
        self.box.setDecimals(3)
        self.box.setKeyboardTracking(False)  # "7.5" is one value, not "7" then "7.5"
        self.box.setSingleStep(spec.step or ((self.high - self.low) / 100 if bounded else 0.1))
        self._n = n
        self._bounded = bounded
        self._syncing = False
        self.set_value(value)
        self.slider.valueChanged.connect(self._from_slider)
        self.box.valueChanged.connect(self._from_box)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 3)
        lay.addWidget(self.box, 1)

    def value(self) -> float:
        return float(self.box.value())

    def set_value(self, value: float) -> None:
        self._syncing = True
        try:
            self.box.setValue(float(value))
            self._slider_to(float(value))
        finally:
            self._syncing = False

    def _slider_to(self, value: float) -> None:
        if self._bounded and self.high > self.low:
            was = self.slider.blockSignals(True)
            self.slider.setValue(round((value - self.low) / (self.high - self.low) * self._n))
            self.slider.blockSignals(was)

    def _from_slider(self, i: int) -> None:
        if self._syncing:
            return
        value = self.low + (self.high - self.low) * i / self._n
        self._syncing = True
        self.box.setValue(value)
        self._syncing = False
        self._changed(float(value))

    def _from_box(self, value: float) -> None:
        if self._syncing:
            return
        self._slider_to(value)  # the box keeps what was typed; only the slider follows
        self._changed(float(value))


class AxisButtons(QWidget):
    """Exclusive buttons, e.g. the six signed palm axes (DexNDM's rotation commands) and
    "device"; one is checked."""

    def __init__(
        self, choices: tuple[str, ...], value: str, changed: Callable[[str], None]
    ) -> None:
        super().__init__()
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, choice in enumerate(choices):
            b = QPushButton(choice)
            b.setCheckable(True)
            b.setChecked(choice == value)
            self.group.addButton(b)
            self.buttons[choice] = b
            grid.addWidget(b, i // 4, i % 4)
            b.clicked.connect(lambda _=False, c=choice: changed(c))

    def value(self) -> str:
        for choice, b in self.buttons.items():
            if b.isChecked():
                return choice
        return ""


class TextSetting(QWidget):
    """A monospace editor; the text is sent when Apply is pressed (not on every key)."""

    def __init__(self, spec: LiveSetting, value: str, changed: Callable[[str], None]) -> None:
        super().__init__()
        self.editor = QPlainTextEdit(value)
        self.editor.setFont(QFont("monospace"))
        self.editor.setMinimumHeight(120)
        self.apply = QPushButton("Apply")
        self.apply.clicked.connect(lambda: changed(self.editor.toPlainText()))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.editor)
        lay.addWidget(self.apply, alignment=Qt.AlignmentFlag.AlignRight)


class SettingsForm(QWidget):
    """The live-settings form of one controller.

    ``send(name, value) -> Future`` queues a change; :meth:`poll` (called by the app's
    timer) shows the outcome of the changes sent since.
    """

    def __init__(
        self,
        specs: tuple[LiveSetting, ...],
        values: dict[str, Any],
        send: Callable[[str, Any], Future[Any]],
    ) -> None:
        super().__init__()
        self.specs = {s.name: s for s in specs}
        self.values = dict(values)
        self._send = send
        self._pending: list[tuple[str, Any, Future[Any]]] = []
        self.widgets: dict[str, QWidget] = {}
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        for spec in specs:
            w = self._make(spec, values.get(spec.name))
            w.setToolTip(spec.help)
            self.widgets[spec.name] = w
            form.addRow(spec.label, w)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d33;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        if not specs:
            lay.addWidget(QLabel("This controller has no live settings."))
        lay.addLayout(form)
        lay.addWidget(self.error)

    def _make(self, spec: LiveSetting, value: Any) -> QWidget:
        def changed(v: Any, name: str = spec.name) -> None:
            self._changed(name, v)

        if spec.kind == "float":
            start = value if value is not None else (spec.low if spec.low is not None else 0.0)
            return FloatSetting(spec, float(start), changed)
        if spec.kind == "int":
            box = QSpinBox()
            box.setKeyboardTracking(False)
            box.setRange(int(spec.low or 0), int(spec.high if spec.high is not None else 1000))
            box.setSingleStep(int(spec.step or 1))
            box.setValue(int(value or 0))
            box.valueChanged.connect(changed)
            return box
        if spec.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(changed)
            return box
        if spec.kind == "choice":
            combo = QComboBox()
            combo.addItems(list(spec.choices))
            if value in spec.choices:
                combo.setCurrentText(str(value))
            combo.currentTextChanged.connect(changed)
            return combo
        return TextSetting(spec, str(value or ""), changed)

    def _changed(self, name: str, value: Any) -> None:
        self._pending.append((name, value, self._send(name, value)))

    def poll(self) -> None:
        """Show refused changes; remember accepted ones (they are saved with the app)."""
        still = []
        for name, value, future in self._pending:
            if not future.done():
                still.append((name, value, future))
                continue
            exc = future.exception()
            if exc is None:
                self.values[name] = value
                self.error.setText("")
            else:
                self.error.setText(f"{self.specs[name].label}: {exc}")
        self._pending = still
