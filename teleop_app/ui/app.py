"""``dexteleop app``: open the main window.

    dexteleop app [--hand leap] [--device replay] [--controller retarget] [--object cube]
                  [--wrist palm_up] [--operator NAME]
    dexteleop app --duration 10 --screenshot app.png [--report report.json]

With ``--duration`` the app runs that long, saves the screenshot and the session's report
(with the UI's own figures: 3D view frames per second, plot redraws per second) and quits;
settings are then not saved. Options given on the command line override the saved settings
for this run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from teleop_app.workers import join_workers

log = logging.getLogger(__name__)


def display_problem() -> str | None:
    """Why no window can open here (None: one can)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc")):
        return None
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return (
            "no display (DISPLAY and WAYLAND_DISPLAY are unset); run under a desktop or "
            "Xvfb, or set QT_QPA_PLATFORM=offscreen with --screenshot"
        )
    return None


def _wait_for_loaders(timeout_s: float = 60.0) -> None:
    """Let a hand or controller still loading finish before the interpreter exits (it
    discards what it built; see :mod:`teleop_app.workers`)."""
    if join_workers(0.0):
        log.info("waiting for the model still loading to finish before exiting")
        still = join_workers(timeout_s)
        if still:
            log.warning(
                "%s still running %.0f s after the window closed", ", ".join(still), timeout_s
            )


def run_app(
    overrides: dict[str, Any] | None = None,
    *,
    duration_s: float | None = None,
    screenshot: str | Path | None = None,
    report: str | Path | None = None,
) -> int:
    """Open the window; returns the exit status."""
    problem = display_problem()
    if problem is not None:
        raise RuntimeError(problem)
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from teleop_app.app_settings import load_settings
    from teleop_app.ui.main_window import MainWindow

    # The control loop shares the interpreter with the UI and the 3D view: hand it the GIL
    # within 0.5 ms when it wakes (the default 5 ms, paid at every handoff, costs deadlines).
    sys.setswitchinterval(float(os.environ.get("DEXTELEOP_SWITCH_INTERVAL", "0.0005")))
    settings, message = load_settings()
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(settings, key, value)

    # PyQt aborts the process on an exception escaping a slot unless an excepthook is set;
    # a UI bug must not take the control loop (and the hand) down with it.
    ui_errors: list[str] = []

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        log.error("unexpected error in the UI", exc_info=(kind, value, tb))
        ui_errors.append(f"{kind.__name__}: {value}")

    previous_hook, sys.excepthook = sys.excepthook, excepthook
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("dexteleop")
    timed = duration_s is not None
    window = MainWindow(settings, persist=not timed, message=message)
    window.show()
    # Ctrl+C or a kill from the terminal closes the window properly: the hand is
    # disconnected and the settings saved (the window's 30 Hz timer lets Python see signals).
    # The handler only schedules the close: it runs wherever the main thread happens to be,
    # possibly holding a lock the control loop needs, so it must not wait for the loop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: QTimer.singleShot(0, window.close))
    log.info("the window is up (Ctrl+C closes it)")
    result: dict[str, Any] = {}
    if timed:
        assert duration_s is not None
        t0 = time.perf_counter()
        start = {"redraws": 0, "frames": 0, "t": t0}

        def mark_start() -> None:  # measure from the first tick, not from model loading
            if window.runner.running and window.runner.snapshot() is not None:
                start.update(
                    redraws=window.plots.redraws,
                    frames=window.scene_view.frames_shown,
                    t=time.perf_counter(),
                )
                session = window.runner.session
                assert session is not None
                start["ticks0"] = session.metrics.ticks
                start["missed0"] = session.metrics.missed_deadlines
                QTimer.singleShot(round(duration_s * 1000), finish)
            elif window.runner.state == "error":
                result["error"] = window.runner.error
                app.quit()
            else:
                QTimer.singleShot(50, mark_start)

        def finish() -> None:
            elapsed = time.perf_counter() - start["t"]
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                if not window.grab().save(str(screenshot)):
                    result["error"] = f"could not save the screenshot to {screenshot}"
            session = window.runner.session
            frames0, redraws0 = start["frames"], start["redraws"]
            if session is not None:
                ticks = session.metrics.ticks - start.get("ticks0", 0)
                missed = session.metrics.missed_deadlines - start.get("missed0", 0)
                result["ui"] = {
                    "seconds": round(elapsed, 3),
                    "ticks": ticks,
                    "missed_deadlines": missed,
                    "missed_fraction": round(missed / max(ticks, 1), 5),
                    "loop_hz": round(ticks / elapsed, 3),
                    "view_fps": round((window.scene_view.frames_shown - frames0) / elapsed, 2),
                    "plot_redraws_per_s": round((window.plots.redraws - redraws0) / elapsed, 2),
                }
            window.close()
            app.quit()

        QTimer.singleShot(0, mark_start)
    try:
        app.exec()
    finally:
        sys.excepthook = previous_hook
        _wait_for_loaders()
    if timed:
        if "error" in result:
            raise RuntimeError(result["error"])
        if ui_errors:  # a timed run is a check: a UI error fails it
            raise RuntimeError(f"{len(ui_errors)} error(s) in the UI, first: {ui_errors[0]}")
        session_report = window.runner.last_report
        out = {**(session_report or {}), **result}
        if report is not None:
            Path(report).parent.mkdir(parents=True, exist_ok=True)
            Path(report).write_text(json.dumps(out, indent=2) + "\n")
        ui = result.get("ui", {})
        log.info(
            "app ran %.1f s: loop %.2f Hz, %d missed deadlines of %d ticks, view %.1f fps",
            ui.get("seconds", 0),
            ui.get("loop_hz", 0),
            ui.get("missed_deadlines", 0),
            ui.get("ticks", 0),
            ui.get("view_fps", 0),
        )
    return 0
