"""The Controller panel: pick a controller at run time (the ones that cannot run greyed out,
with the reason) and its live settings below, built from its config; for a controller that
reads a rotation axis (``axis`` in its ``command_fields``), the six palm axes to pick from
(or the input device's own selection).

A switch happens between ticks while the hand holds; the panel follows the controller the
session actually runs (a switch that failed, a reconnect) from the runner's snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QGroupBox, QLabel, QVBoxLayout, QWidget

from controllers.base import CONTROLLERS
from devices.retargeting.axis import AXIS_CHOICES
from teleop_app.app_models import controller_choices, controller_reason, one_line, plotted_settings
from teleop_app.app_settings import AppSettings, controller_options
from teleop_app.ui.settings_form import AxisButtons, SettingsForm


class ControllerPanel(QGroupBox):
    """The controller combo and the live-settings form of the running controller.

    Attributes:
        form: the running controller's settings form (None before the first tick).
        axis: the rotation-axis buttons, when the running controller reads an axis.
        form_controller: the controller the form is for.
        switching: (name, future) of a switch in flight.
        plotted: the live settings the plots draw for it.
    """

    #: the new form's setting specs (the plots take their range from them)
    form_built = pyqtSignal(list)

    def __init__(self, settings: AppSettings, runner: Any, hand: Callable[[], str]) -> None:
        """``hand``: the hand the list is for (the connection panel's choice)."""
        super().__init__("Controller")
        self.settings = settings
        self.runner = runner
        self._hand = hand
        self.form: SettingsForm | None = None
        self.axis: AxisButtons | None = None
        self._axis_box: QWidget | None = None
        self.form_controller: str | None = None
        self.switching: tuple[str, Future[Any]] | None = None
        self.plotted: tuple[str, ...] = ()
        lay = QVBoxLayout(self)
        self.controller_combo = QComboBox()
        lay.addWidget(self.controller_combo)
        self.controller_reason = QLabel("")
        self.controller_reason.setWordWrap(True)
        self.controller_reason.setStyleSheet("color: #c80;")
        lay.addWidget(self.controller_reason)
        self.form_holder = QVBoxLayout()
        lay.addLayout(self.form_holder)
        self.fill()
        self.controller_combo.activated.connect(self._chosen)

    def fill(self) -> None:
        """List every registered controller; the ones that cannot run are greyed out with
        the reason as their tooltip (e.g. not trained yet for this hand)."""
        combo = self.controller_combo
        combo.blockSignals(True)
        combo.clear()
        model = combo.model()
        for c in controller_choices(self._hand()):
            combo.addItem(c.name if c.available else f"{c.name} (unavailable)")
            i = combo.count() - 1
            combo.setItemData(i, c.name, Qt.ItemDataRole.UserRole)
            combo.setItemData(i, c.tooltip, Qt.ItemDataRole.ToolTipRole)
            if not c.available:
                model.item(i).setEnabled(False)  # type: ignore[attr-defined]
        i = combo.findData(self.settings.controller, Qt.ItemDataRole.UserRole)
        combo.setCurrentIndex(max(i, 0))
        combo.blockSignals(False)

    def store_values(self) -> None:
        """Copy the form's values into the settings (per controller)."""
        if self.form is not None and self.form_controller is not None:
            self.settings.controller_settings[self.form_controller] = dict(self.form.values)

    def _chosen(self, index: int) -> None:
        self.choose(self.controller_combo.itemData(index, Qt.ItemDataRole.UserRole))

    def choose(self, name: str) -> Future[Any] | None:
        """Switch to ``name`` between ticks (the hand holds while it is built)."""
        reason = controller_reason(name, self.settings.hand)
        if reason is not None:
            self.controller_reason.setText(f"{name} is unavailable: {reason}")
            self.fill()
            return None
        self.store_values()
        self.controller_reason.setText(f"switching to {name}; the hand holds...")
        future = self.runner.set_controller(name, **controller_options(self.settings, name))
        self.switching = (name, future)
        return future

    def poll(self) -> None:
        """Show a finished switch; rebuild the form when the session runs another controller
        (the runner's latest tick says which)."""
        if self.switching is not None and self.switching[1].done():
            name, future = self.switching
            self.switching = None
            exc = future.exception()
            if exc is None:
                self.settings.controller = name
                self.controller_reason.setText(self._notice())
            else:
                self.controller_reason.setText(f"could not switch to {name}: {one_line(exc)}")
            self.fill()
        snap = self.runner.snapshot()
        new_controller = snap is not None and snap.controller != self.form_controller
        if new_controller and self.switching is None:
            self.settings.controller = snap.controller
            self._rebuild_form(snap.controller, snap.settings)
            self.controller_reason.setText(self._notice())
            self.fill()
        if self.form is not None:
            self.form.poll()

    def _notice(self) -> str:
        """What the running controller wants the operator to know (e.g. trained on other
        physics than the hand runs), or ""."""
        session = getattr(self.runner, "session", None)
        controller = getattr(session, "controller", None)
        return getattr(controller, "notice", "") or ""

    def _send_setting(self, name: str, value: Any) -> Future[Any]:
        return self.runner.update_controller(**{name: value})

    def _rebuild_form(self, controller: str, values: dict[str, Any]) -> None:
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
        if self._axis_box is not None:
            self._axis_box.setParent(None)
            self._axis_box.deleteLater()
            self._axis_box = self.axis = None
        if "axis" in CONTROLLERS.get(controller).command_fields:
            self._axis_box = QGroupBox("rotation axis (palm frame)")
            box = QVBoxLayout(self._axis_box)
            self.axis = AxisButtons(AXIS_CHOICES, self.runner.axis, self.runner.set_axis)
            self.axis.setToolTip("a palm axis overrides the device's; 'device' follows it again")
            box.addWidget(self.axis)
            self.form_holder.addWidget(self._axis_box)
        specs = CONTROLLERS.get(controller).setting_specs()
        live = {sp.name: values[sp.name] for sp in specs if sp.name in values}
        self.form = SettingsForm(specs, live, self._send_setting)
        self.form_holder.addWidget(self.form)
        self.form_controller = controller
        self.plotted = plotted_settings(specs)
        self.form_built.emit(list(specs))
