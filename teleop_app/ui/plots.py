"""Live plots (pyqtgraph) over the last seconds of the session.

1. The chosen finger's tip, palm frame: commanded (dashed) vs executed (solid), x/y/z.
2. The chosen finger's joints: target sent (dashed) vs measured (solid).
3. Per-stage latency (ms) with the tick period; missed deadlines in the title.
4. Intervention: how far the hand's keypoints are from what the operator commanded one tick
   earlier (mm), and the controller's own intervention when it reports one.
5. The controller's numeric live settings (e.g. guidance strength), on the same time axis,
   so the effect of moving a slider is visible in plot 4 as it moves.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QGraphicsItem

from assets.hands import FINGERS
from teleop_app.history import PLOT_STAGES, HistoryView

COLORS = ("#e6550d", "#31a354", "#3182bd", "#756bb1", "#636363")
WINDOW_S = 10.0


def _pen(i: int, dashed: bool = False, width: float = 1.6) -> pg.QtGui.QPen:
    pen = pg.mkPen(COLORS[i % len(COLORS)], width=width)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _legend(names: object) -> str:
    """Names coloured as their curves, for a plot title (cheaper to paint than a legend)."""
    return " ".join(
        f"<span style='color:{COLORS[i % len(COLORS)]}'>{n}</span>" for i, n in enumerate(names)
    )


class LivePlots(pg.GraphicsLayoutWidget):
    """Five stacked plots sharing the time axis; :meth:`update_from` redraws them."""

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self.setBackground("#1b1d21")
        self.finger = 0
        self.period_ms = 50.0
        self.p_tip = self._plot(0, "fingertip (mm, palm frame): dashed commanded, solid executed")
        self.p_joint = self._plot(1, "joints (rad): dashed target sent, solid measured")
        self.p_lat = self._plot(2, "latency (ms)")
        self.p_int = self._plot(3, "intervention (mm)")
        self.p_set = self._plot(4, "live settings")
        for p in (self.p_joint, self.p_lat, self.p_int, self.p_set):
            p.setXLink(self.p_tip)
        self.p_set.setLabel("bottom", "time (s)")
        self.tip_cmd = [self.p_tip.plot(pen=_pen(i, True)) for i in range(3)]
        self.tip_exe = [self.p_tip.plot(pen=_pen(i)) for i in range(3)]
        self.j_sent = [self.p_joint.plot(pen=_pen(i, True)) for i in range(4)]
        self.j_meas = [self.p_joint.plot(pen=_pen(i)) for i in range(4)]
        self.p_lat.addLegend(offset=(-5, 5))
        self.lat = {s: self.p_lat.plot(pen=_pen(i), name=s) for i, s in enumerate(PLOT_STAGES)}
        self.period_line = pg.InfiniteLine(
            pos=self.period_ms, angle=0, pen=pg.mkPen("#aaaaaa", style=Qt.PenStyle.DotLine)
        )
        self.p_lat.addItem(self.period_line)
        self.p_lat.setYRange(0.0, 1.5 * self.period_ms, padding=0)
        self.p_int.addLegend(offset=(-5, 5))
        self.int_gap = self.p_int.plot(pen=_pen(0), name="commanded vs executed")
        self.int_ctrl = self.p_int.plot(pen=_pen(2, True), name="controller")
        self.p_set.addLegend(offset=(-5, 5))
        self.set_curves: dict[str, pg.PlotDataItem] = {}
        self.ci.layout.setRowStretchFactor(4, 1)
        for row in range(4):
            self.ci.layout.setRowStretchFactor(row, 2)
        self.redraws = 0
        self._titles: dict[int, str] = {}
        self._joint_names: tuple[str, ...] = ()
        self.set_finger(FINGERS[0])

    def _plot(self, row: int, title: str) -> pg.PlotItem:
        p = self.addPlot(row=row, col=0)
        p.setTitle(title, size="9pt")
        p.showGrid(x=True, y=True, alpha=0.2)
        p.setMouseEnabled(x=False, y=True)
        p.getAxis("left").setWidth(42)
        if row < 4:
            p.hideAxis("bottom")  # the time axis is shown once, under the last plot
        for name in ("left", "bottom"):
            # Axis text is the costliest thing to paint in software; keep each axis as a
            # cached pixmap, redrawn only when its range changes.
            p.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        return p

    def set_limits(self, lower: object, upper: object) -> None:
        """Fix the joint plot's range to the hand's joint limits (no rescaling per frame)."""
        self.p_joint.setYRange(float(min(lower)), float(max(upper)), padding=0.02)

    def set_setting_range(self, low: float | None, high: float | None) -> None:
        if low is not None and high is not None and high > low:
            self.p_set.setYRange(low, high, padding=0.05)
        else:
            self.p_set.enableAutoRange(axis="y")

    def _title(self, plot: pg.PlotItem, text: str) -> None:
        if self._titles.get(id(plot)) != text:  # titles are rich text: set only on change
            plot.setTitle(text, size="9pt")
            self._titles[id(plot)] = text

    def set_finger(self, finger: str, joint_names: tuple[str, ...] | None = None) -> None:
        """Show ``finger``; ``joint_names`` (the hand's, in order) name the joint curves."""
        self.finger = FINGERS.index(finger)
        if joint_names is not None:
            self._joint_names = tuple(joint_names)
        names = self._joint_names[4 * self.finger : 4 * self.finger + 4] or ("", "", "", "")
        self._title(
            self.p_tip,
            f"{finger} tip (mm, palm frame) {_legend('xyz')}: dashed commanded, solid executed",
        )
        self._title(
            self.p_joint,
            f"{finger} joints (rad) {_legend(names)}: dashed target sent, solid measured",
        )

    def update_from(self, h: HistoryView, live_names: tuple[str, ...] = ()) -> None:
        """Redraw from a history view (called at ~30 Hz by the app)."""
        if len(h) == 0:
            return
        t = h.t - h.t[-1]
        keep = t >= -WINDOW_S
        t = t[keep]
        f = self.finger
        tip = 2 * f + 1
        for a in range(3):
            self.tip_cmd[a].setData(t, 1e3 * h.commanded[keep, tip, a], connect="finite")
            self.tip_exe[a].setData(t, 1e3 * h.executed[keep, tip, a])
        for j in range(4):
            self.j_sent[j].setData(t, h.sent[keep, 4 * f + j])
            self.j_meas[j].setData(t, h.measured[keep, 4 * f + j])
        for s, curve in self.lat.items():
            curve.setData(t, h.latency_ms[s][keep], connect="finite")
        missed = int(h.missed[-1]) if h.missed.size else 0
        tick = h.latency_ms["tick"][keep]
        worst = float(np.nanmax(tick)) if np.isfinite(tick).any() else 0.0
        self._title(
            self.p_lat,
            f"latency (ms), dotted: tick period; slowest tick {worst:.0f} ms; "
            f"missed deadlines {missed}",
        )
        self.int_gap.setData(t, h.intervention_mm[keep], connect="finite")
        self.int_ctrl.setData(t, h.controller_intervention_mm[keep], connect="finite")
        shown = [n for n in live_names if n in h.settings]
        for i, name in enumerate(shown):
            curve = self.set_curves.get(name)
            if curve is None:
                curve = self.set_curves[name] = self.p_set.plot(pen=_pen(i, width=2), name=name)
            curve.setData(t, h.settings[name][keep], connect="finite")
        for name, curve in self.set_curves.items():
            if name not in shown:
                curve.setData([], [])
        self.p_tip.setXRange(-WINDOW_S, 0.0, padding=0.01)
        self.redraws += 1

    def set_period(self, period_s: float) -> None:
        self.period_ms = 1e3 * period_s
        self.period_line.setValue(self.period_ms)
        self.p_lat.setYRange(0.0, 1.5 * self.period_ms, padding=0)
