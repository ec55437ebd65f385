"""The ``quest3`` device: Meta Quest 3 controllers through the teleop app.

Rejections
----------
Every malformed tagged line is counted under its reason (:data:`REJECT_REASONS`, shown in
``status().rejected``) and publishes nothing, except a line whose only problem is one
controller's pose (``bad_pose``: the identity / all-zero garbage the Quest 3 sends when it loses
a controller, or ``non_finite``): it is counted *and* published without that controller (with
``confidence`` 0 if it was the wrist controller), so losing the idle controller does not stop
the stream. A wrist-controller step over :data:`MAX_JUMP_M` between close samples is counted as
``jump`` and dropped (at most :data:`MAX_JUMPS_IN_A_ROW` in a row, then the new position is
taken and the clutch re-anchored).

Transports
----------
Live over adb (:mod:`devices.inputs.quest.adb`) or a captured logcat file
(:mod:`devices.inputs.quest.playback`).
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from devices.inputs.base import DEVICES, Device, DeviceStatus
from devices.inputs.quest.adb import (
    ADB_TIMEOUT_S,
    DEFAULT_ACTIVITY,
    DEFAULT_PACKAGE,
    AdbLink,
)
from devices.inputs.quest.frames import QuestFrameBuilder
from devices.inputs.quest.playback import NOMINAL_PERIOD_S, CaptureEvent, CapturePlayback
from devices.inputs.quest.protocol import QuestSample, parse_logcat_line_partial
from devices.tick import HumanFrame

log = logging.getLogger("devices.inputs.quest")


@dataclass
class QuestConfig:
    """Settings of the Quest 3 device.

    Attributes:
        serial: adb serial of the headset; None = the only one adb sees (or ``host:port``).
        host: Wi-Fi debugging: ``adb connect host[:port]`` first (port default 5555).
        apk: the teleop app to install with ``adb install -r`` before starting it.
        package: the app's package (force-stopped on disconnect).
        activity: the activity to start (``am start -n package/activity``).
        logcat: a captured logcat text file to play instead of a headset.
        speed: playback speed factor (file playback).
        loop: start the capture over at the end (file playback).
        clutch: button that engages the wrist ("" or "none": always engaged).
        grasp: value that closes the hand, 0 open .. 1 fist ("" or "none": always open).
        hand: which controller drives the wrist, "right" or "left".
        adb: path of the adb executable; None = ``shutil.which("adb")``.
    """

    serial: str | None = None
    host: str | None = None
    apk: str | None = None
    package: str = DEFAULT_PACKAGE
    activity: str = DEFAULT_ACTIVITY
    logcat: str | None = None
    speed: float = 1.0
    loop: bool = False
    clutch: str = "RG"
    grasp: str = "rightTrig"
    hand: str = "right"
    adb: str | None = None


@DEVICES.register("quest3")
class QuestDevice(CapturePlayback, AdbLink, Device):
    """Meta Quest 3 controllers through the teleop app, live over adb or from a capture.

    Lines become frames through :class:`~devices.inputs.quest.frames.QuestFrameBuilder`; the
    transports are the mixins :class:`~devices.inputs.quest.adb.AdbLink` (live) and
    :class:`~devices.inputs.quest.playback.CapturePlayback` (file).
    """

    Config = QuestConfig

    @classmethod
    def availability(cls) -> str | None:
        """None when ``adb`` is on PATH, else why not (one line)."""
        if shutil.which("adb"):
            return None
        return "adb not found: apt-get install adb, or play a capture with quest3:logcat=FILE"

    def __init__(self, config: QuestConfig) -> None:
        super().__init__()
        if not (math.isfinite(float(config.speed)) and config.speed > 0):
            raise ValueError(f"quest3 speed must be positive, got {config.speed}")
        if config.hand not in ("right", "left"):
            raise ValueError(f"quest3 hand must be 'right' or 'left', got {config.hand!r}")
        self.config = config
        self._builder = QuestFrameBuilder(config.clutch, config.grasp, config.hand)
        self._builder_lock = threading.RLock()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        # file playback
        self._events: list[CaptureEvent] = []
        self._offsets: list[float] = []
        self._period = NOMINAL_PERIOD_S
        self._t0: float | None = None
        self._loop_i = 0
        self._cursor = 0
        self._ended = False
        # live
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self.serial: str | None = None
        self.reconnects = 0
        self._pending_recovery: str | None = None
        self._tail = "0"  # logcat -T: start at the end of the log
        if config.logcat is not None:
            if config.host or config.apk or config.serial:
                log.warning("quest3: logcat=%s given, ignoring serial/host/apk", config.logcat)
            self._load_capture(Path(config.logcat))
        elif config.apk is not None and not Path(config.apk).is_file():
            raise FileNotFoundError(f"quest3 apk not found: {config.apk}")
        if config.hand == "left" and (config.clutch, config.grasp) == ("RG", "rightTrig"):
            log.warning("quest3: hand=left with the right controller's clutch and grasp buttons")

    @property
    def playback(self) -> bool:
        """True when playing a capture file rather than a headset."""
        return self.config.logcat is not None

    # -------------------------------------------------------------------- common
    def _handle(self, sample: QuestSample | None, reason: str | None, t: float) -> None:
        """Count ``reason`` and publish the frame of ``sample`` (if any) stamped ``t``."""
        if reason is not None:
            self._reject(reason, f"quest3: dropped a line ({reason})")
        if sample is None:
            return
        with self._builder_lock:
            frame, problem = self._builder.build(sample, t, self._seq)
            if frame is None:
                self._reject(problem or "bad_pose", f"quest3: dropped a sample ({problem})")
                return
            self._seq += 1
        self._publish(frame)

    def _handle_line(self, line: str, t: float) -> bool:
        """Parse and handle one line; True if it was a tagged line. Never raises."""
        try:
            sample, reason = parse_logcat_line_partial(line)
            if sample is None and reason is None:
                return False
            self._handle(sample, reason, t)
            return True
        except Exception as e:
            log.exception("quest3: failed to handle a line")
            self._reject("internal_error", f"quest3: internal error: {e}")
            return True

    def report_extra(self) -> dict[str, object]:
        return {
            "source": "file" if self.playback else "adb",
            "serial": self.serial,
            "reconnects": self.reconnects,
        }

    def _start(self) -> None:
        self._stop_evt.clear()
        if self.playback:
            self._start_playback()
        else:
            self._start_live()

    def _stop(self) -> None:
        self._stop_evt.set()
        self._kill_proc()
        self._join_thread(self._thread, ADB_TIMEOUT_S + 2.0)  # at most one adb call to wait
        self._thread = None
        if not self.playback and self.serial is not None:
            self._force_stop_app()

    def latest(self) -> HumanFrame | None:
        if self.playback and not self.clock.realtime and self._t0 is not None:
            self._advance(self.clock.now())
        return super().latest()

    def status(self) -> DeviceStatus:
        if self.playback and not self.clock.realtime and self._t0 is not None:
            self._advance(self.clock.now())
        return super().status()
