"""The main window: e-stop, connection, controller and recording panels on the left, the 3D
view in the middle, live plots on the right, loop health in the status bar; for a real hand
(``drives_hardware``), the hand's hardware (health, faults) in a dock at the bottom.

Nothing here runs the control loop. A 30 Hz timer reads the runner's snapshots (history,
scene, device status) into the panels (:mod:`teleop_app.ui.panels`), and every change goes
to the session's queue.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures import Future
from typing import Any

from PyQt6.QtCore import QByteArray, Qt, QTimer
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import (
    QApplication,
    QDockWidget,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from teleop_app.app_models import connect_settings, one_line
from teleop_app.app_settings import AppSettings, save_settings, session_config
from teleop_app.runner import SessionRunner
from teleop_app.ui.panels import (
    ConnectionPanel,
    ControllerPanel,
    EstopKeys,
    EstopPanel,
    HardwarePanel,
    PlotsPanel,
    RecordingPanel,
    StatusLine,
)
from teleop_app.ui.panels.hardware import DEFAULT_HEIGHT as HARDWARE_HEIGHT
from teleop_app.ui.scene_view import SceneRenderer, SceneView

log = logging.getLogger(__name__)

UI_HZ = 30.0
#: Plots redraw at every second UI tick (15 Hz): painting them costs more than reading.
PLOT_EVERY = 2


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
        self._connecting_with: dict[str, Any] = {}
        self._ui_ticks = 0
        self._refresh_failed = False
        self.setWindowTitle("dexteleop")

        self.estop_panel = EstopPanel(self.runner)
        self.connection_panel = ConnectionPanel(settings, self.runner)
        self.controller_panel = ControllerPanel(
            settings, self.runner, hand=self.connection_panel.hand_combo.currentText
        )
        self.recording_panel = RecordingPanel(settings, self.runner)
        self.scene_view = SceneView(self.renderer)
        self.plots_panel = PlotsPanel(settings.plot_finger)
        self.status_line = StatusLine(self.statusBar())
        for panel in (self.estop_panel, self.connection_panel):
            panel.message.connect(self.statusBar().showMessage)
        self.connection_panel.connect_button.clicked.connect(self.connect_session)
        self.controller_panel.form_built.connect(self.plots_panel.show_settings)

        left = QWidget()
        lay = QVBoxLayout(left)
        for panel in (
            self.estop_panel,
            self.connection_panel,
            self.controller_panel,
            self.recording_panel,
        ):
            lay.addWidget(panel)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(max(330, left.minimumSizeHint().width() + 24))
        split = QSplitter()
        split.addWidget(scroll)
        split.addWidget(self.scene_view)
        split.addWidget(self.plots_panel)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 3)
        self.setCentralWidget(split)
        # The hand's hardware: only for a hand that drives real hardware (the panel says).
        self.hardware_panel = HardwarePanel(self.runner)
        self.hardware_dock = QDockWidget("Hand hardware", self)
        self.hardware_dock.setObjectName("hardware_dock")
        self.hardware_dock.setWidget(self.hardware_panel)
        self.hardware_dock.setFeatures(  # not closable: nothing would bring it back
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.hardware_dock)
        self.resizeDocks([self.hardware_dock], [HARDWARE_HEIGHT], Qt.Orientation.Vertical)
        self.hardware_dock.setVisible(self.hardware_panel.hardware)
        self.hardware_panel.hardware_changed.connect(self.hardware_dock.setVisible)
        if message:
            self.statusBar().showMessage(message, 10000)

        # The widgets scripts and tests reach, by name.
        self.estop_button = self.estop_panel.estop_button
        self.release_button = self.estop_panel.release_button
        c = self.connection_panel
        self.device_combo, self.device_status = c.device_combo, c.device_status
        self.hand_combo, self.robot_combo = c.hand_combo, c.robot_combo
        self.object_combo, self.wrist_combo = c.object_combo, c.wrist_combo
        self.retarget_combo, self.operator_combo = c.retarget_combo, c.operator_combo
        self.operator_edit, self.calibrate_button = c.operator_edit, c.calibrate_button
        self.calibration_label, self.connect_button = c.calibration_label, c.connect_button
        self.start_calibration = c.start_calibration
        self.controller_combo = self.controller_panel.controller_combo
        self.controller_reason = self.controller_panel.controller_reason
        self.choose_controller = self.controller_panel.choose
        r = self.recording_panel
        self.recording = r.control
        self.dataset_edit, self.task_edit = r.dataset_edit, r.task_edit
        self.record_start, self.record_stop = r.record_start, r.record_stop
        self.record_discard, self.recording_message = r.record_discard, r.recording_message
        self.episodes_label = r.episodes_label
        self.finger_combo, self.plots = self.plots_panel.finger_combo, self.plots_panel.plots
        self.status_state, self.status_loop = self.status_line.state, self.status_line.loop
        self.status_device, self.status_safety = self.status_line.device, self.status_line.safety
        h = self.hardware_panel
        self.hardware_table, self.fault_banner = h.table, h.banner
        self.clear_fault_button, self.clear_fault_message = h.clear_button, h.clear_message

        # Space / Esc / Pause engage the emergency stop from anywhere in the window.
        self.estop_keys = EstopKeys(self, lambda: self.set_estop(True))
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self.estop_keys)

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

    @property
    def form(self) -> Any:
        """The running controller's live-settings form (None before the first tick)."""
        return self.controller_panel.form

    def set_estop(self, on: bool) -> None:
        """Engage (any time) or release (only through the release button) the e-stop."""
        self.estop_panel.set_estop(on)

    # -- actions ----------------------------------------------------------------------------
    def _collect_settings(self) -> AppSettings:
        """Copy the widgets into the settings. The connection choices are copied only once
        a connect with them succeeded, so choices never used are not saved."""
        self.recording_panel.store_values()
        self.settings.plot_finger = self.finger_combo.currentText()
        self.controller_panel.store_values()
        return self.settings

    def connect_session(self) -> None:
        """(Re)connect with the chosen device, hand, backend, object, wrist and operator."""
        self._collect_settings()
        choices = self.connection_panel.choices()
        self.controller_panel.switching = None  # a switch in flight belongs to the old session
        self.recording.close()  # an episode in progress is saved before the session goes
        try:
            s, note = connect_settings(self.settings, choices)
            if note:
                self.statusBar().showMessage(note, 10000)
            config = session_config(s)
        except Exception as e:  # noqa: BLE001 - a bad choice is shown, never raised
            self.statusBar().showMessage(f"cannot connect: {one_line(e)}", 15000)
            return
        self.connect_button.setEnabled(False)
        self._connecting = self.runner.connect_async(config)
        self._connecting_with = choices
        self.controller_panel.form_controller = None

    @property
    def connecting(self) -> bool:
        """A connect is in progress (its outcome not yet shown)."""
        return self._connecting is not None

    def _finish_connect(self) -> None:
        if self._connecting is None or not self._connecting.done():
            return
        exc = self._connecting.exception()
        self._connecting = None
        self.connect_button.setEnabled(True)
        if exc is not None:
            self.statusBar().showMessage(f"cannot connect: {one_line(exc)}", 15000)
            return
        for key, value in self._connecting_with.items():  # used: now they are saved
            setattr(self.settings, key, value)
        self.controller_panel.fill()
        self.recording_panel.show_operator(self.settings.operator)
        self.plots_panel.connected(self.runner.session)

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
            self.statusBar().showMessage(f"display error: {one_line(e)}", 5000)
        else:
            self._refresh_failed = False

    def _refresh(self) -> None:
        runner = self.runner
        self._finish_connect()
        self.controller_panel.poll()
        self.estop_panel.poll()
        self.recording_panel.poll()
        self.connection_panel.poll()
        self.hardware_panel.poll()
        self.scene_view.refresh()
        history = runner.history
        view = history.view() if history is not None else None
        self._ui_ticks += 1
        if view is not None and self.isVisible() and self._ui_ticks % PLOT_EVERY == 0:
            self.plots_panel.update_from(view, self.controller_panel.plotted)
        device = self.status_line.update(
            runner, view, self.renderer.fps(), self.recording.recording
        )
        self.device_status.setText(device)

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
