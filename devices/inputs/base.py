"""Input devices: each owns its I/O thread and publishes its latest HumanFrame under a lock."""

from __future__ import annotations

import abc
import dataclasses
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from assets.registry import Registry
from devices.clock import Clock, RealClock
from devices.tick import HumanFrame

log = logging.getLogger(__name__)

#: Every input device by name: ``DEVICES.make("replay", path="clip.npz")``.
DEVICES: Registry[Device] = Registry("device")


@dataclass(frozen=True)
class DeviceStatus:
    """What the UI shows about a device.

    Attributes:
        connected: the device is connected and its thread runs.
        rate_hz: frames published per second over the last ~2 s.
        frame_age_s: age of the latest frame on the device's clock, or None before the first.
        frames: frames published since connecting.
        errors: inputs dropped (malformed, out of order, ...), the sum of ``rejected``.
        rejected: dropped inputs by reason.
        message: the last problem, human-readable, or "".
    """

    connected: bool
    rate_hz: float
    frame_age_s: float | None
    frames: int
    errors: int
    message: str = ""
    rejected: dict[str, int] = field(default_factory=dict)


class Device(abc.ABC):
    """Base class of input devices.

    Subclasses implement :meth:`_start` / :meth:`_stop` (usually a thread calling
    :meth:`_publish` for good frames and :meth:`_reject` for bad input) and may override
    :meth:`availability`. :meth:`latest` is safe to call from any thread.
    """

    Config: ClassVar[type]

    @classmethod
    def availability(cls) -> str | None:
        """None if the device can be used on this machine, else why not (one line)."""
        return None

    @classmethod
    def shorthand_settings(cls, arg: str) -> dict[str, str] | None:
        """The settings, as text, of the positional shorthand ``NAME:ARG`` (no ``=`` in ARG).

        None (this default): the device has no shorthand, only ``key=value`` settings. A
        device with one overrides this (``replay:PATH`` -> ``{"path": PATH}``);
        :func:`devices.inputs.spec.parse_device_spec` converts the values to the settings'
        types and rejects names that are not fields of ``Config``.
        """
        return None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: HumanFrame | None = None
        self._frames = 0
        self._rejected: Counter[str] = Counter()
        self._message = ""
        self._stamps: deque[float] = deque(maxlen=64)
        self._connected = False
        self.clock: Clock = RealClock()

    def connect(self, clock: Clock | None = None) -> None:
        """Open the device and start publishing; frames are stamped on ``clock``."""
        if clock is not None:
            self.clock = clock
        self._start()
        self._connected = True

    def disconnect(self) -> None:
        if self._connected:
            self._stop()
        self._connected = False

    def __enter__(self) -> Device:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def latest(self) -> HumanFrame | None:
        """The most recent frame, or None before the first."""
        with self._lock:
            return self._latest

    def status(self) -> DeviceStatus:
        now = self.clock.now()
        with self._lock:
            stamps = [s for s in self._stamps if now - s <= 2.0]
            span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
            rate = (len(stamps) - 1) / span if span > 0 else 0.0
            age = None if self._latest is None else now - self._latest.t
            return DeviceStatus(
                connected=self._connected,
                rate_hz=rate,
                frame_age_s=age,
                frames=self._frames,
                errors=sum(self._rejected.values()),
                message=self._message,
                rejected=dict(self._rejected),
            )

    def report_extra(self) -> dict[str, object]:
        """Device-specific counters for the run report (e.g. lost packets); override."""
        return {}

    def _publish(self, frame: HumanFrame) -> None:
        with self._lock:
            self._latest = frame
            self._frames += 1
            self._stamps.append(frame.t)

    def _reject(self, reason: str, message: str = "", *, lost: bool = False) -> None:
        """Count one dropped input under ``reason`` (e.g. ``"bad_packet"``, ``"duplicate"``).

        With ``lost`` the latest frame is also marked lost (confidence 0) under the
        same lock, so a reader never sees the rejection counted before the frame is marked.
        """
        with self._lock:
            self._rejected[reason] += 1
            if message:
                self._message = message
            if lost:
                self._mark_lost_locked()

    def _mark_lost_locked(self) -> None:
        """Tracking lost: keep the latest frame but with confidence 0, so the loop holds at
        once (``low_confidence``) instead of after the stale timeout. Caller holds the lock."""
        if self._latest is not None and self._latest.confidence != 0.0:
            self._latest = dataclasses.replace(self._latest, confidence=0.0)

    def _join_thread(self, thread: threading.Thread | None, timeout_s: float) -> bool:
        """Wait for a device's I/O thread to end; False (and a warning) if it did not."""
        if thread is None:
            return True
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            log.warning("%s: I/O thread did not stop within %.1f s", type(self).__name__, timeout_s)
            return False
        return True

    @staticmethod
    def _close_quietly(close: Callable[[], object], what: str) -> None:
        """Call ``close()``; log instead of raising (closing must not fail the caller)."""
        try:
            close()
        except Exception as e:  # noqa: BLE001
            log.warning("closing %s failed: %s", what, e)

    def _set_message(self, message: str) -> None:
        with self._lock:
            self._message = message

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def _stop(self) -> None: ...
