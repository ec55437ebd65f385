"""The emergency stop: the big button, the release button under it, and the keys that
engage it from anywhere in the window (Space, Esc, Pause).

Engaging takes one press of anything; releasing takes a click on the release button,
enabled a second after engaging (a double click or a second key press in a panic must not
release it).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from teleop_app.app_models import one_line

ESTOP_STYLE = (
    "QPushButton {background: #c0392b; color: white; font-size: 18px; font-weight: bold;"
    " border-radius: 6px; padding: 14px;} QPushButton:hover {background: #e74c3c;}"
)
ESTOP_ENGAGED_STYLE = (
    "QPushButton {background: #f1c40f; color: black; font-size: 16px; font-weight: bold;"
    " border: 3px solid #c0392b; border-radius: 6px; padding: 12px;}"
)
#: Keys that engage the emergency stop wherever the focus is. Space too, except while the
#: operator types text (a task label, a cost function), where it is a space.
ESTOP_KEYS = (Qt.Key.Key_Escape, Qt.Key.Key_Pause)
#: Releasing needs a click on the release button, not sooner than this after engaging.
RELEASE_DELAY_MS = 1000


def typing_text(w: QWidget | None) -> bool:
    """The focus is where the operator types text that may hold spaces (a task label, a
    cost function, a device argument such as a file path), not a number box."""
    if isinstance(w, QPlainTextEdit | QTextEdit):
        return True
    return isinstance(w, QLineEdit) and not isinstance(w.parent(), QAbstractSpinBox)


class EstopKeys(QObject):
    """Application-wide key filter: the e-stop keys reach ``window`` before any widget (a
    focused button, spin box or combo box cannot swallow them) and call ``engage``."""

    def __init__(self, window: QWidget, engage: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self._engage = engage

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:
        if event is None or event.type() not in (
            QEvent.Type.KeyPress,
            QEvent.Type.KeyRelease,
            QEvent.Type.ShortcutOverride,
        ):
            return False
        assert isinstance(event, QKeyEvent)
        key = event.key()
        hit = key in ESTOP_KEYS or (
            key == Qt.Key.Key_Space and not typing_text(QApplication.focusWidget())
        )
        popup = QApplication.activePopupWidget() is not None
        if not hit or not (self._window.isActiveWindow() or popup):
            return False
        if event.type() == QEvent.Type.KeyPress:
            self._engage()
        # Consumed, so a focused button does not also "click" on Space; but an open popup
        # (a combo box list, a plot's menu) still gets Esc to close itself.
        return not (popup and key == Qt.Key.Key_Escape)


class EstopPanel(QWidget):
    """The e-stop and release buttons over the runner's e-stop (kept across reconnects)."""

    #: (text, timeout in ms, 0: until replaced) for the status bar
    message = pyqtSignal(str, int)

    def __init__(self, runner: Any) -> None:
        super().__init__()
        self.runner = runner
        self._future: Future[Any] | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.estop_button = QPushButton()
        self.estop_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.estop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.estop_button.clicked.connect(lambda: self.set_estop(True))  # engages, only
        lay.addWidget(self.estop_button)
        self.release_button = QPushButton("Release emergency stop")
        self.release_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.release_button.clicked.connect(lambda: self.set_estop(False))
        lay.addWidget(self.release_button)
        self._show(self.runner.estop)

    def set_estop(self, on: bool) -> None:
        """Engage (any time) or release (only through the release button) the e-stop."""
        was = self.runner.estop
        self._future = self.runner.set_estop(on)
        self._show(on)
        if on and not was:
            self.message.emit("EMERGENCY STOP: targets frozen at the measured pose", 0)
            self.release_button.setEnabled(False)
            QTimer.singleShot(RELEASE_DELAY_MS, self._allow_release)
        elif not on and was:
            self.message.emit("emergency stop released", 5000)

    def poll(self) -> None:
        """A release that failed (the session could not restart) leaves the hand stopped."""
        ef = self._future
        if ef is not None and ef.done():
            self._future = None
            if ef.exception() is not None and not self.runner.estop:
                self.set_estop(True)
                self.message.emit(f"could not release: {one_line(ef.exception())}", 0)

    def _allow_release(self) -> None:
        self.release_button.setEnabled(self.runner.estop)

    def _show(self, on: bool) -> None:
        if on:
            self.estop_button.setText("E-STOP ENGAGED\ntargets frozen")
            self.estop_button.setStyleSheet(ESTOP_ENGAGED_STYLE)
        else:
            self.estop_button.setText("EMERGENCY STOP\nspace · esc")
            self.estop_button.setStyleSheet(ESTOP_STYLE)
        self.release_button.setVisible(on)
        if on and self._future is None:  # engaged before this window: after a delay
            self.release_button.setEnabled(False)
            QTimer.singleShot(RELEASE_DELAY_MS, self._allow_release)
