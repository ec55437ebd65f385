"""Logging a failure that repeats every tick: once, then a count, not a line per tick.

A controller that raises on every tick (a bad model file, a setting that breaks its step)
would otherwise write 20 identical warnings a second and bury everything else::

    self._failures = RepeatedLog(log)
    ...
    except Exception as e:
        self._failures.warning("controller %s failed: %s", name, e)

The first failure of each message template is logged as is; repeats are counted, and said
as one line (with the count and the latest message) once ``every_s`` seconds have passed
since the template was last logged, and by :meth:`RepeatedLog.flush` (the end of a run).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Repeat:
    logged_at: float  # when the template was last logged
    count: int = 0  # repeats since then, not logged yet
    latest: str = ""  # the latest repeat's message
    total: int = 1  # every occurrence


class RepeatedLog:
    """Logs the first occurrence of each message template, counts the repeats.

    Args:
        logger: where the lines go. level: their level (``logging.WARNING``).
        every_s: a repeat at least this long after the last line of its template is logged,
            with the count of those in between (None: only :meth:`flush` says the count).
        clock: seconds (monotonic); tests pass their own.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.WARNING,
        every_s: float | None = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.level = level
        self.every_s = every_s
        self.clock = clock
        self._repeats: dict[str, _Repeat] = {}
        self._lock = threading.Lock()

    def warning(self, msg: str, *args: object) -> None:
        """``logger.warning(msg, *args)`` the first time ``msg`` (the template) comes;
        afterwards counted, and logged with the count every ``every_s`` seconds."""
        now = self.clock()
        with self._lock:
            rep = self._repeats.get(msg)
            if rep is None:
                self._repeats[msg] = _Repeat(logged_at=now)
                line = msg % args if args else msg
            else:
                rep.total += 1
                rep.count += 1
                rep.latest = msg % args if args else msg
                if self.every_s is None or now - rep.logged_at < self.every_s:
                    return
                line = self._summary(rep)
                rep.logged_at, rep.count = now, 0
        self.logger.log(self.level, "%s", line)

    def flush(self) -> None:
        """Log the count of every template's repeats not said yet (call at the end of a run)."""
        with self._lock:
            lines = [self._summary(rep) for rep in self._repeats.values() if rep.count]
            for rep in self._repeats.values():
                rep.count = 0
        for line in lines:
            self.logger.log(self.level, "%s", line)

    def counts(self) -> dict[str, int]:
        """Template -> occurrences so far (the first one included)."""
        with self._lock:
            return {msg: rep.total for msg, rep in self._repeats.items()}

    @staticmethod
    def _summary(rep: _Repeat) -> str:
        times = "once more" if rep.count == 1 else f"{rep.count} more times"
        return f"{rep.latest} ({times}; {rep.total} in all)"
