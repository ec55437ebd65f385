"""The main window: connection, controller, recording and e-stop on the left, the 3D view
in the middle, live plots on the right, loop health in the status bar.

Nothing here runs the control loop. A 30 Hz timer reads the runner's snapshots (history,
scene, device status) and every change goes to the session's queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time
from concurrent.futures import Future, InvalidStateError
from typing import Any

from PyQt6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QCloseEvent, QKeyEvent
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

import devices.inputs
import devices.robots
from assets import HAND_SPECS, OBJECTS
from assets.hands import FINGERS
from controllers.base import CONTROLLERS
from devices.retargeting.retargeter import RETARGET_MODES
from teleop_app.app_settings import (
    AppSettings,
    controller_options,
    default_dataset,
    save_settings,
    session_config,
)
from teleop_app.profiles import (
    ProfileError,
    calibrate,
    check_operator_name,
    list_profiles,
    load_profile,
    save_profile,
)
from teleop_app.recording.control import RecordingControl
from teleop_app.runner import SessionRunner
from teleop_app.ui.plots import LivePlots
from teleop_app.ui.scene_view import SceneRenderer, SceneView
from teleop_app.ui.settings_form import SettingsForm

log = logging.getLogger(__name__)

UI_HZ = 30.0
CALIBRATION_S = 3.0
#: Plots redraw at every second UI tick (15 Hz): painting them costs more than reading.
PLOT_EVERY = 2
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


def _typing_text(w: QWidget | None) -> bool:
    """The focus is where the operator types text that may hold spaces (a task label, a
    cost function, a device argument such as a file path), not a number box."""
    if isinstance(w, QPlainTextEdit | QTextEdit):
        return True
    return isinstance(w, QLineEdit) and not isinstance(w.parent(), QAbstractSpinBox)


class EstopKeys(QObject):
    """Application-wide key filter: the e-stop keys reach the window before any widget
    (a focused button, spin box or combo box cannot swallow them)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

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
            key == Qt.Key.Key_Space and not _typing_text(QApplication.focusWidget())
        )
        popup = QApplication.activePopupWidget() is not None
        if not hit or not (self._window.isActiveWindow() or popup):
            return False
        if event.type() == QEvent.Type.KeyPress:
            self._window.set_estop(True)
        # Consumed, so a focused button does not also "click" on Space; but an open popup
        # (a combo box list, a plot's menu) still gets Esc to close itself.
        return not (popup and key == Qt.Key.Key_Escape)


def controller_reason(name: str, hand: str) -> str | None:
    """Why ``name`` cannot run on ``hand`` (None: it can)."""
    try:
        return CONTROLLERS.get(name).availability(hand)
    except Exception as e:  # noqa: BLE001 - a broken probe means unavailable
        return f"{type(e).__name__}: {e}"


class MainWindow(QMainWindow):
    """The app. ``settings`` are the persisted choices; ``persist`` saves them on close."""

    def __init__(
        self,
        settings: AppSettings,
        *,
        runner: SessionRunner | None = None,
        persist: bool = True,
        connect: bool = True,
        message: str = "",
    ) -> None:
        super().__init__()
        self.settings = settings
        self.persist = persist
        self.runner = runner or SessionRunner()
        self.renderer = SceneRenderer(self.runner)
        self._connecting: Future[Any] | None = None
        self._switching: tuple[str, Future[Any]] | None = None
        self._form_controller: str | None = None
        self.form: SettingsForm | None = None
        self._ui_ticks = 0
        self._calibrating: tuple[str, Future[Any]] | None = None
        self._calibration_deadline = 0.0
        self._connecting_with: dict[str, Any] = {}
        self._estop_future: Future[Any] | None = None
        self.recording = RecordingControl(self.runner)
        self._recording_future: tuple[str, Future[Any]] | None = None
        self._refresh_failed = False
        self.setWindowTitle("dexteleop")

        left = QWidget()
        lay = QVBoxLayout(left)
        self.estop_button = QPushButton()
        self.estop_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.estop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.estop_button.clicked.connect(lambda: self.set_estop(True))  # engages, only
        lay.addWidget(self.estop_button)
        self.release_button = QPushButton("Release emergency stop")
        self.release_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.release_button.clicked.connect(lambda: self.set_estop(False))
        lay.addWidget(self.release_button)
        lay.addWidget(self._connection_panel())
        lay.addWidget(self._controller_panel())
        lay.addWidget(self._recording_panel())
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(max(330, left.minimumSizeHint().width() + 24))

        self.scene_view = SceneView(self.renderer)
        plots_box = QWidget()
        pl = QVBoxLayout(plots_box)
        pl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("finger:"))
        self.finger_combo = QComboBox()
        self.finger_combo.addItems(list(FINGERS))
        self.finger_combo.setCurrentText(settings.plot_finger)
        self.finger_combo.currentTextChanged.connect(self._finger_changed)
        row.addWidget(self.finger_combo)
        row.addStretch(1)
        pl.addLayout(row)
        self.plots = LivePlots()
        self.plots.set_finger(self.finger_combo.currentText())
        pl.addWidget(self.plots)

        split = QSplitter()
        split.addWidget(scroll)
        split.addWidget(self.scene_view)
        split.addWidget(plots_box)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 3)
        self.setCentralWidget(split)

        self.status_loop = QLabel()
        self.status_device = QLabel()
        self.status_safety = QLabel()
        self.status_state = QLabel()
        for w in (self.status_state, self.status_loop, self.status_device, self.status_safety):
            self.statusBar().addPermanentWidget(w)
        if message:
            self.statusBar().showMessage(message, 10000)

        # Space / Esc / Pause engage the emergency stop from anywhere in the window; the
        # big button engages too. Releasing takes a click on the release button, enabled a
        # second after engaging (a double click or a second key press in a panic must not
        # release it).
        self.estop_keys = EstopKeys(self)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.estop_keys)
        self._show_estop(self.runner.estop)

        if settings.geometry:
            self.restoreGeometry(QByteArray.fromHex(settings.geometry.encode()))
        else:
            self.resize(1500, 860)

        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / UI_HZ))
        self.timer.timeout.connect(self.refresh)
        self.renderer.start()
        self.timer.start()
        if connect:
            self.connect_session()

    # -- panels ---------------------------------------------------------------------------
    def _connection_panel(self) -> QGroupBox:
        box = QGroupBox("Connection")
        form = QFormLayout(box)
        s = self.settings
        self.device_combo = QComboBox()
        self.device_combo.setEditable(True)
        for name in devices.inputs.DEVICES.names():
            self.device_combo.addItem(name)
            reason = _device_reason(name)
            i = self.device_combo.count() - 1
            self.device_combo.setItemData(i, reason or "available", Qt.ItemDataRole.ToolTipRole)
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
        self.backend_label = QLabel(", ".join(devices.robots.ROBOTS.names()) + " (simulated)")
        form.addRow("backend", self.backend_label)
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
        self.operator_combo.addItem("(none)")
        self.operator_combo.addItems(list_profiles())
        if s.operator:
            if self.operator_combo.findText(s.operator) < 0:
                self.operator_combo.addItem(s.operator)
            self.operator_combo.setCurrentText(s.operator)
        self.operator_combo.currentTextChanged.connect(self._show_calibration)
        form.addRow("operator", self.operator_combo)
        self.calibration_label = QLabel("-")
        self.calibration_label.setWordWrap(True)
        form.addRow("calibration", self.calibration_label)
        row = QHBoxLayout()
        self.operator_edit = QLineEdit()
        self.operator_edit.setPlaceholderText("operator id")
        self.calibrate_button = QPushButton("Calibrate")
        self.calibrate_button.setToolTip(
            f"Hold your hand flat, palm down, fingers forward, for {CALIBRATION_S:.0f} s: "
            "measures your hand size and neutral wrist and saves your profile"
        )
        self.calibrate_button.clicked.connect(self.start_calibration)
        row.addWidget(self.operator_edit)
        row.addWidget(self.calibrate_button)
        form.addRow("", row)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_session)
        form.addRow(self.connect_button)
        self._show_calibration()
        return box

    def _controller_panel(self) -> QGroupBox:
        box = QGroupBox("Controller")
        lay = QVBoxLayout(box)
        self.controller_combo = QComboBox()
        lay.addWidget(self.controller_combo)
        self.controller_reason = QLabel("")
        self.controller_reason.setWordWrap(True)
        self.controller_reason.setStyleSheet("color: #c80;")
        lay.addWidget(self.controller_reason)
        self.form_holder = QVBoxLayout()
        lay.addLayout(self.form_holder)
        self._fill_controllers()
        self.controller_combo.activated.connect(self._controller_chosen)
        return box

    def _fill_controllers(self) -> None:
        """List every registered controller; the ones that cannot run are greyed out with
        the reason as their tooltip (e.g. not trained yet for this hand)."""
        hand = self.hand_combo.currentText()
        self.controller_combo.blockSignals(True)
        self.controller_combo.clear()
        model = self.controller_combo.model()
        for name in CONTROLLERS.names():
            reason = controller_reason(name, hand)
            self.controller_combo.addItem(name if reason is None else f"{name} (unavailable)")
            i = self.controller_combo.count() - 1
            self.controller_combo.setItemData(i, name, Qt.ItemDataRole.UserRole)
            self.controller_combo.setItemData(i, reason or "available", Qt.ItemDataRole.ToolTipRole)
            if reason is not None:
                item = model.item(i)  # type: ignore[attr-defined]
                item.setEnabled(False)
        i = self.controller_combo.findData(self.settings.controller, Qt.ItemDataRole.UserRole)
        self.controller_combo.setCurrentIndex(max(i, 0))
        self.controller_combo.blockSignals(False)

    def _recording_panel(self) -> QGroupBox:
        box = QGroupBox("Recording")
        form = QFormLayout(box)
        self.dataset_edit = QLineEdit(self.settings.dataset or str(default_dataset()))
        self.dataset_edit.setToolTip(
            "Dataset folder (LeRobot v3.0 layout); episodes are appended to it"
        )
        form.addRow("dataset", self.dataset_edit)
        self.task_edit = QLineEdit(self.settings.task)
        self.task_edit.setPlaceholderText("e.g. rotate cube about z")
        form.addRow("task", self.task_edit)
        self.operator_id = QLabel(self.settings.operator or "(none)")
        form.addRow("operator", self.operator_id)
        row = QHBoxLayout()
        self.record_start = QPushButton("● Record")
        self.record_stop = QPushButton("Stop && save")
        self.record_discard = QPushButton("Discard")
        self.record_start.clicked.connect(self.start_recording)
        self.record_stop.clicked.connect(self.stop_recording)
        self.record_discard.clicked.connect(self.discard_recording)
        for b in (self.record_start, self.record_stop, self.record_discard):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # space is the e-stop, not a click
            row.addWidget(b)
        form.addRow(row)
        self.episodes_label = QLabel("episodes: -")
        form.addRow(self.episodes_label)
        self.recording_message = QLabel("")
        self.recording_message.setWordWrap(True)
        form.addRow(self.recording_message)
        self._update_recording_buttons()
        return box

    def start_recording(self) -> None:
        self._collect_settings()
        try:
            future = self.recording.start(
                self.dataset_edit.text().strip(), self.task_edit.text(), self.settings.operator
            )
        except Exception as e:  # noqa: BLE001 - shown, never raised into Qt
            self._recording_said(f"cannot record: {_one_line(e)}", error=True)
            return
        self._recording_future = ("start", future)
        self._update_recording_buttons()

    def stop_recording(self) -> None:
        if self.recording.recorder is None:
            return
        self._recording_future = ("stop", self.recording.stop())
        self.record_stop.setEnabled(False)
        self.record_discard.setEnabled(False)
        self._recording_said("saving the episode...")

    def discard_recording(self) -> None:
        if self.recording.recorder is None:
            return
        self._recording_future = ("discard", self.recording.discard())

    def _recording_said(self, text: str, *, error: bool = False) -> None:
        color = "#d33" if error else "#2a2"
        self.recording_message.setText(f"<span style='color:{color}'>{text}</span>")

    def _update_recording_buttons(self) -> None:
        busy = self._recording_future is not None
        recording = self.recording.recording
        self.record_start.setEnabled(self.runner.running and not recording and not busy)
        self.record_stop.setEnabled(recording and not busy)
        self.record_discard.setEnabled(recording and not busy)
        self.dataset_edit.setEnabled(not recording)

    def _refresh_recording(self) -> None:
        pending = self._recording_future
        if pending is not None and pending[1].done():
            what, future = pending
            self._recording_future = None
            exc = future.exception()
            if exc is not None:
                self._recording_said(f"{what} failed: {_one_line(exc)}", error=True)
            elif what == "start":
                self._recording_said(f"recording episode {future.result()}")
            elif what == "stop":
                self._recording_said(f"saved episode {future.result()}")
            else:
                self._recording_said("episode discarded")
        st = self.recording.status()
        if st["state"] == "failed" and st["message"]:
            self._recording_said(st["message"], error=True)
        if st["episodes"] is None:
            self.episodes_label.setText("episodes: -")
        else:
            text = f"episodes: {st['episodes']}"
            if st["state"] == "recording":
                text += f"   recording: {st['frames']} frames, {st['bytes'] / 1e6:.2f} MB"
            self.episodes_label.setText(text)
        self._update_recording_buttons()

    # -- actions ----------------------------------------------------------------------------
    def _connection_choices(self) -> dict[str, Any]:
        op = self.operator_combo.currentText()
        return {
            "device": self.device_combo.currentText().strip(),
            "hand": self.hand_combo.currentText(),
            "object": self.object_combo.currentText(),
            "wrist": self.wrist_combo.currentText(),
            "retarget_mode": self.retarget_combo.currentText(),
            "operator": "" if op == "(none)" else op,
        }

    def _collect_settings(self) -> AppSettings:
        """Copy the widgets into the settings. The connection choices are copied only once
        a connect with them succeeded, so choices never used are not saved."""
        s = self.settings
        s.task = self.task_edit.text()
        s.dataset = self.dataset_edit.text().strip()
        s.plot_finger = self.finger_combo.currentText()
        if self.form is not None and self._form_controller is not None:
            s.controller_settings[self._form_controller] = dict(self.form.values)
        return s

    def connect_session(self) -> None:
        """(Re)connect with the chosen device, hand, object, wrist and operator."""
        self._collect_settings()
        choices = self._connection_choices()
        s = dataclasses.replace(self.settings, **choices)
        self._switching = None  # a switch in flight belongs to the session being replaced
        self.recording.close()  # an episode in progress is saved before the session goes
        reason = controller_reason(s.controller, s.hand) if s.controller in CONTROLLERS else ""
        if reason is not None:
            why = reason or "not registered"
            self.statusBar().showMessage(
                f"controller {s.controller} unavailable ({why}); using retarget", 10000
            )
            s.controller = "retarget"
        try:
            config = session_config(s)
        except Exception as e:  # noqa: BLE001 - a bad choice is shown, never raised
            self.statusBar().showMessage(f"cannot connect: {_one_line(e)}", 15000)
            return
        self.connect_button.setEnabled(False)
        self._connecting = self.runner.connect_async(config)
        self._connecting_with = choices
        self._form_controller = None

    @property
    def connecting(self) -> bool:
        """A connect is in progress (its outcome not yet shown)."""
        return self._connecting is not None

    def _controller_chosen(self, index: int) -> None:
        name = self.controller_combo.itemData(index, Qt.ItemDataRole.UserRole)
        self.choose_controller(name)

    def choose_controller(self, name: str) -> Future[Any] | None:
        """Switch to ``name`` between ticks (the hand holds while it is built)."""
        reason = controller_reason(name, self.settings.hand)
        if reason is not None:
            self.controller_reason.setText(f"{name} is unavailable: {reason}")
            self._fill_controllers()
            return None
        self._collect_settings()
        self.controller_reason.setText(f"switching to {name}; the hand holds...")
        future = self.runner.set_controller(name, **controller_options(self.settings, name))
        self._switching = (name, future)
        return future

    def set_estop(self, on: bool) -> None:
        """Engage (any time) or release (only through the release button) the e-stop."""
        was = self.runner.estop
        self._estop_future = self.runner.set_estop(on)
        self._show_estop(on)
        if on and not was:
            self.statusBar().showMessage("EMERGENCY STOP: targets frozen at the measured pose")
            self.release_button.setEnabled(False)
            QTimer.singleShot(RELEASE_DELAY_MS, self._allow_release)
        elif not on and was:
            self.statusBar().showMessage("emergency stop released", 5000)

    def _allow_release(self) -> None:
        self.release_button.setEnabled(self.runner.estop)

    def _show_estop(self, on: bool) -> None:
        if on:
            self.estop_button.setText("E-STOP ENGAGED\ntargets frozen")
            self.estop_button.setStyleSheet(ESTOP_ENGAGED_STYLE)
        else:
            self.estop_button.setText("EMERGENCY STOP\nspace · esc")
            self.estop_button.setStyleSheet(ESTOP_STYLE)
        self.release_button.setVisible(on)
        if on and self._estop_future is None:  # engaged before this window: after a delay
            self.release_button.setEnabled(False)
            QTimer.singleShot(RELEASE_DELAY_MS, self._allow_release)

    def _finger_changed(self, finger: str) -> None:
        self.plots.set_finger(finger)

    def _show_calibration(self) -> None:
        op = self.operator_combo.currentText()
        if op == "(none)":
            self.calibration_label.setText("none (scale 1.0); run 'dexteleop calibrate'")
            return
        try:
            p = load_profile(op)
        except ProfileError as e:
            self.calibration_label.setText(f"<span style='color:#d33'>{e}</span>")
            return
        when = p.calibrated_at or "never calibrated"
        self.calibration_label.setText(f"scale {p.scale:.3f}, {when}")

    def start_calibration(self) -> Future[Any] | None:
        """Collect frames of the calibration pose from the connected device, then save the
        operator's profile (applied at the next Connect)."""
        name = self.operator_edit.text().strip() or self.operator_combo.currentText()
        if name in ("", "(none)"):
            self.calibration_label.setText("type an operator id first")
            return None
        try:
            check_operator_name(name)
        except ProfileError as e:
            self.calibration_label.setText(f"<span style='color:#d33'>{e}</span>")
            return None
        future = self.runner.collect_frames(CALIBRATION_S)
        self._calibrating = (name, future)
        self._calibration_deadline = time.monotonic() + CALIBRATION_S + 5.0
        self.calibrate_button.setEnabled(False)
        self.calibration_label.setText(
            f"calibrating {name}: hold your hand flat, palm down, fingers forward..."
        )
        return future

    def _finish_calibration(self) -> None:
        assert self._calibrating is not None
        name, future = self._calibrating
        self._calibrating = None
        self.calibrate_button.setEnabled(True)
        try:
            profile = calibrate(future.result(), name)
            save_profile(profile)
        except (ProfileError, RuntimeError, OSError) as e:
            self.calibration_label.setText(
                f"<span style='color:#d33'>calibration failed: {e}</span>"
            )
            return
        if self.operator_combo.findText(name) < 0:
            self.operator_combo.addItem(name)
        self.operator_combo.setCurrentText(name)
        self._show_calibration()
        self.statusBar().showMessage(
            f"operator {name}: scale {profile.scale:.3f} saved; press Connect to apply", 10000
        )

    def _send_setting(self, name: str, value: Any) -> Future[Any]:
        return self.runner.update_controller(**{name: value})

    def _rebuild_form(self, controller: str, values: dict[str, Any]) -> None:
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
        specs = CONTROLLERS.get(controller).setting_specs()
        live = {sp.name: values[sp.name] for sp in specs if sp.name in values}
        self.form = SettingsForm(specs, live, self._send_setting)
        self.form_holder.addWidget(self.form)
        self._form_controller = controller
        plotted = [sp for sp in specs if sp.plot and sp.kind in ("float", "int")]
        lows = {sp.low for sp in plotted}
        highs = {sp.high for sp in plotted}
        if len(lows) == 1 and len(highs) == 1:
            self.plots.set_setting_range(lows.pop(), highs.pop())
        else:
            self.plots.set_setting_range(None, None)

    # -- the UI tick (30 Hz) ----------------------------------------------------------------
    def refresh(self) -> None:
        """The UI tick. An exception here is logged and shown, never raised into Qt (which
        would abort the app, and with it the control loop)."""
        try:
            self._refresh()
        except Exception as e:  # noqa: BLE001 - see above
            if not self._refresh_failed:  # reported once (the app's hook logs and counts it)
                sys.excepthook(type(e), e, e.__traceback__)
            self._refresh_failed = True
            self.statusBar().showMessage(f"display error: {_one_line(e)}", 5000)
        else:
            self._refresh_failed = False

    def _refresh(self) -> None:
        runner = self.runner
        if self._connecting is not None and self._connecting.done():
            exc = self._connecting.exception()
            self._connecting = None
            self.connect_button.setEnabled(True)
            if exc is not None:
                self.statusBar().showMessage(f"cannot connect: {_one_line(exc)}", 15000)
            else:
                for key, value in self._connecting_with.items():  # used: now they are saved
                    setattr(self.settings, key, value)
                self._fill_controllers()
                self.operator_id.setText(self.settings.operator or "(none)")
                self.plots.set_period(1.0 / self.settings_rate())
                session = self.runner.session
                if session is not None:
                    hand = session.robot.hand
                    self.plots.set_limits(hand.lower, hand.upper)
                    self.plots.set_finger(self.finger_combo.currentText(), hand.joint_names)
        if self._switching is not None and self._switching[1].done():
            name, future = self._switching
            self._switching = None
            exc = future.exception()
            if exc is None:
                self.settings.controller = name
                self.controller_reason.setText("")
            else:
                self.controller_reason.setText(f"could not switch to {name}: {_one_line(exc)}")
            self._fill_controllers()
        snap = runner.snapshot()
        new_controller = snap is not None and snap.controller != self._form_controller
        if new_controller and self._switching is None:
            assert snap is not None
            self.settings.controller = snap.controller
            self._rebuild_form(snap.controller, snap.settings)
            self._fill_controllers()
        if self.form is not None:
            self.form.poll()
        ef = self._estop_future
        if ef is not None and ef.done():
            self._estop_future = None
            if ef.exception() is not None and not self.runner.estop:
                # the release failed (the session could not restart): still stopped
                self.set_estop(True)
                self.statusBar().showMessage(f"could not release: {_one_line(ef.exception())}")
        self._refresh_recording()
        if self._calibrating is not None:
            name, future = self._calibrating
            if not future.done() and time.monotonic() > self._calibration_deadline:
                with contextlib.suppress(InvalidStateError):  # the loop may finish it now
                    future.set_exception(RuntimeError("the session stopped or sent no ticks"))
            if future.done():
                self._finish_calibration()
        self.scene_view.refresh()
        history = runner.history
        view = history.view() if history is not None else None
        self._ui_ticks += 1
        if view is not None and self.isVisible() and self._ui_ticks % PLOT_EVERY == 0:
            live = ()
            if self._form_controller is not None:
                live = tuple(
                    sp.name
                    for sp in CONTROLLERS.get(self._form_controller).setting_specs()
                    if sp.plot
                )
            self.plots.update_from(view, live)
        self._update_status(view)

    def settings_rate(self) -> float:
        session = self.runner.session
        return session.config.rate_hz if session is not None else 20.0

    def _update_status(self, view: Any) -> None:
        runner = self.runner
        state = runner.state
        snap = runner.snapshot()
        if state == "error":
            text = f"<b style='color:#d33'>error: {runner.error}</b>"
        elif runner.estop:
            text = "<b style='color:#d33'>E-STOP</b>"
        elif snap is not None and snap.target is None and snap.events and state == "running":
            text = f"running (holding: {', '.join(snap.events)})"
        else:
            text = state
        if self.recording.recording:
            text = "<b style='color:#d33'>● REC</b> " + text
        self.status_state.setText(text)
        session = runner.session
        if view is not None and session is not None and len(view):
            self.status_loop.setText(
                f"loop {view.rate_hz():5.1f} Hz / {session.config.rate_hz:g}   "
                f"missed deadlines {session.metrics.missed_deadlines}   "
                f"view {self.renderer.fps():4.1f} fps"
            )
            try:
                counts = dict(session.robot.safety.counts)
            except RuntimeError:  # the loop added a key while we copied: next time
                counts = {}
            total = sum(counts.values())
            worst = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
            top = ", ".join(f"{k} {v}" for k, v in worst)
            self.status_safety.setText(f"safety events {total}" + (f" ({top})" if top else ""))
        else:
            self.status_loop.setText("loop -")
            self.status_safety.setText("")
        st = runner.device_status()
        if st is None:
            text = "device: not connected"
            self.device_status.setText("not connected")
        else:
            age = "-" if st.frame_age_s is None else f"{st.frame_age_s * 1e3:.0f} ms"
            if not st.connected:
                health = "<b style='color:#d33'>disconnected</b>"
            elif st.frame_age_s is None or st.frame_age_s > 0.5:
                health = "<b style='color:#c80'>no recent frames</b>"
            else:
                health = "<span style='color:#2a2'>connected</span>"
            detail = f"{st.rate_hz:.0f} Hz, frame age {age}, {st.frames} frames"
            if st.errors:
                detail += f", {st.errors} rejected"
            msg = f"<br>{st.message}" if st.message else ""
            self.device_status.setText(f"{health}, {detail}{msg}")
            text = f"device {'connected' if st.connected else 'DISCONNECTED'}, {detail}"
        self.status_device.setText(text)

    # -- shutdown ---------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.renderer.stop()
        self.recording.close()  # saves an episode in progress
        self.runner.close()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.estop_keys)
        s = self._collect_settings()
        s.geometry = bytes(self.saveGeometry().toHex()).decode()
        if self.persist:
            try:
                save_settings(s)
            except OSError as e:
                log.error("could not save the app settings: %s", e)
        super().closeEvent(event)


def _device_reason(name: str) -> str | None:
    try:
        return devices.inputs.DEVICES.get(name).availability()
    except Exception as e:  # noqa: BLE001 - a broken probe means unavailable
        return f"{type(e).__name__}: {e}"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
