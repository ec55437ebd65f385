"""File playback: a captured logcat text file played as the headset would send it.

A capture (``quest3:logcat=FILE``) is timed by its threadtime stamps; on a virtual clock,
:meth:`QuestDevice.latest <devices.inputs.quest.QuestDevice.latest>` plays everything due at
``clock.now()`` without a thread, as :mod:`devices.inputs.replay` does.
:class:`CapturePlayback` is that half of :class:`~devices.inputs.quest.QuestDevice`.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from devices.inputs.quest.frames import QuestFrameBuilder
from devices.inputs.quest.protocol import TAG, QuestSample, parse_logcat_line_partial

if TYPE_CHECKING:
    from devices.inputs.quest.device import QuestConfig

log = logging.getLogger("devices.inputs.quest")

#: Nominal frame period of the app (72 Hz), for capture lines without a timestamp (s).
NOMINAL_PERIOD_S: Final[float] = 1.0 / 72.0


@dataclass(frozen=True)
class CaptureEvent:
    """A tagged capture line: ``offset_s`` after the first good line (capture seconds)."""

    offset_s: float
    sample: QuestSample | None
    reason: str | None
    line_no: int


class CapturePlayback:
    """The file-playback half of :class:`~devices.inputs.quest.QuestDevice`.

    A mixin: the device provides the attributes below and ``_handle``, ``_set_message``,
    ``_reject`` and ``clock`` (from :class:`~devices.inputs.base.Device`).
    """

    config: QuestConfig
    _builder: QuestFrameBuilder
    _builder_lock: threading.RLock
    _stop_evt: threading.Event
    _thread: threading.Thread | None
    _events: list[CaptureEvent]
    _offsets: list[float]
    _period: float
    _t0: float | None
    _loop_i: int
    _cursor: int
    _ended: bool

    def _load_capture(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"quest3 logcat capture not found: {path}")
        text = path.read_text(encoding="utf-8", errors="replace")
        raw: list[tuple[float, QuestSample | None, str | None, int]] = []
        t_prev: float | None = None
        stamp_prev: float | None = None
        day = 0.0
        for no, line in enumerate(text.splitlines(), start=1):
            sample, reason = parse_logcat_line_partial(line)
            if sample is None and reason is None:
                continue  # unrelated line
            stamp = sample.logcat_time_s if sample is not None else None
            if stamp is not None:
                if stamp_prev is not None and stamp < stamp_prev - 43200.0:
                    day += 86400.0  # the capture went past midnight
                stamp_prev = stamp
                t = stamp + day
            elif t_prev is None:
                t = 0.0
            else:  # no stamp: a malformed line plays with the previous one, a sample 1/72 s on
                t = t_prev + (NOMINAL_PERIOD_S if sample is not None else 0.0)
            t = t if t_prev is None else max(t, t_prev)
            raw.append((t, sample, reason, no))
            t_prev = t
        good = [t for t, s, _, _ in raw if s is not None]
        if not good:
            raise ValueError(f"quest3: no usable {TAG} lines in {path}")
        first = good[0]
        offsets: list[float] = []
        for t, s, r, no in raw:
            off = max(0.0, t - first)
            if offsets:
                off = max(off, offsets[-1])
            offsets.append(off)
            self._events.append(CaptureEvent(off, s, r, no))
        self._offsets = offsets
        span = good[-1] - first
        self._period = offsets[-1] + (span / (len(good) - 1) if len(good) > 1 else NOMINAL_PERIOD_S)
        if self._period <= 0:
            self._period = NOMINAL_PERIOD_S
        log.info(
            "quest3: %s: %d samples, %d bad lines, %.2f s",
            path,
            len(good),
            sum(1 for e in self._events if e.reason is not None),
            self._period,
        )

    def _start_playback(self) -> None:
        with self._builder_lock:
            self._t0 = self.clock.now()
            self._loop_i = 0
            self._cursor = 0
            self._ended = False
            self._builder.release()
        if self.clock.realtime:
            self._thread = threading.Thread(target=self._run_playback, name="quest3", daemon=True)
            self._thread.start()

    def _advance(self, now: float) -> None:
        """Handle, in order, every capture event due at clock time ``now``."""
        with self._builder_lock:
            if self._t0 is None:
                return
            speed = float(self.config.speed)
            pos = max(0.0, (now - self._t0) * speed)
            n_loop = 0
            if self.config.loop:
                n_loop = int(pos // self._period)
                pos -= n_loop * self._period
            target = bisect.bisect_right(self._offsets, pos)
            n = len(self._events)
            while (self._loop_i, self._cursor) < (n_loop, target):
                if self._cursor >= n:
                    # Wrapped: skip whole loops when the clock jumped far ahead.
                    self._loop_i = self._loop_i + 1 if n_loop - self._loop_i <= 2 else n_loop
                    self._cursor = 0
                    self._builder.release()
                    continue
                ev = self._events[self._cursor]
                self._cursor += 1
                t = self._t0 + (self._loop_i * self._period + ev.offset_s) / speed
                try:
                    self._handle(ev.sample, ev.reason, t)
                except Exception as e:
                    log.exception("quest3: failed to play line %d", ev.line_no)
                    self._reject("internal_error", f"quest3: internal error: {e}")
            if not self.config.loop and self._cursor >= n and not self._ended:
                self._ended = True
                self._set_message(f"quest3: end of capture {self.config.logcat}")

    def _next_due(self) -> float | None:
        """Clock time of the next capture event, or None at the end (no loop)."""
        with self._builder_lock:
            if self._t0 is None:
                return None
            speed = float(self.config.speed)
            if self._cursor < len(self._events):
                off = self._loop_i * self._period + self._offsets[self._cursor]
            elif self.config.loop:
                off = (self._loop_i + 1) * self._period + self._offsets[0]
            else:
                return None
            return self._t0 + off / speed

    def _run_playback(self) -> None:
        while not self._stop_evt.is_set():
            try:
                self._advance(self.clock.now())
                nxt = self._next_due()
                wait = 0.1 if nxt is None else min(0.1, max(0.0005, nxt - self.clock.now()))
            except Exception:
                log.exception("quest3: playback thread error")
                wait = 0.05
            self._stop_evt.wait(wait)
