"""Replay a recorded or generated clip (``devices.inputs.clips`` format) as a live device.

In real time a thread publishes each frame when its time comes, as a live device would. On a
virtual clock (``--fast``) there is no thread: :meth:`latest` returns the frame due at the
clock's current time, so fast runs are deterministic and see, at each tick, the frame a
real-time run sees (up to the thread's scheduling, within one frame).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devices.inputs.base import DEVICES, Device
from devices.inputs.clips import Clip, load_clip
from devices.tick import HumanFrame

log = logging.getLogger(__name__)


def bundled_clip(name: str = "demo") -> Path:
    """Path of a clip shipped in ``assets/clips`` (``demo``, ``pinch_index``, ...)."""
    from assets import CLIPS_DIR

    path = CLIPS_DIR / f"{name}.npz"
    if not path.exists():
        known = sorted(p.stem for p in CLIPS_DIR.glob("*.npz"))
        raise FileNotFoundError(f"no bundled clip {name!r}; bundled: {', '.join(known)}")
    return path


@dataclass
class ReplayConfig:
    """Settings of the replay device.

    Attributes:
        path: an .npz clip; None plays the bundled demo clip.
        loop: start over at the end (otherwise the last frame stays, and goes stale).
        speed: playback speed factor.
    """

    path: str | None = None
    loop: bool = True
    speed: float = 1.0


@DEVICES.register("replay")
class ReplayDevice(Device):
    Config = ReplayConfig

    @classmethod
    def shorthand_settings(cls, arg: str) -> dict[str, str]:
        """``replay:PATH``: the clip file."""
        return {"path": arg}

    def __init__(self, config: ReplayConfig) -> None:
        super().__init__()
        if not config.speed > 0:
            raise ValueError(f"replay speed must be positive, got {config.speed}")
        self.config = config
        self.path = Path(config.path) if config.path else bundled_clip("demo")
        self.clip: Clip = load_clip(self.path)  # raises ClipFormatError with a clear message
        t = self.clip.t - self.clip.t[0]
        self._t = t
        # One loop lasts the clip plus one mean frame interval, so the wrap is seamless.
        self._period = float(t[-1] + (t[-1] / (len(t) - 1)))
        self._t0: float | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()

    def _index_at(self, now: float) -> tuple[int, int]:
        """(loop count, frame index) of the frame due at clock time ``now``."""
        assert self._t0 is not None
        clip_time = max(0.0, (now - self._t0) * self.config.speed)
        n_loop = 0
        if self.config.loop:
            n_loop = int(clip_time // self._period)
            clip_time -= n_loop * self._period
        i = int(np.searchsorted(self._t, clip_time, side="right")) - 1
        return n_loop, max(0, min(i, len(self._t) - 1))

    def _frame(self, n_loop: int, i: int) -> HumanFrame:
        assert self._t0 is not None
        t = self._t0 + (n_loop * self._period + self._t[i]) / self.config.speed
        buttons = {k: float(v[i]) for k, v in self.clip.buttons.items()}
        return HumanFrame(
            keypoints=self.clip.keypoints[i],
            wrist=self.clip.wrist[i],
            t=t,
            seq=n_loop * len(self._t) + i,
            confidence=1.0,
            buttons=buttons,
        )

    def _start(self) -> None:
        self._t0 = self.clock.now()
        if self.clock.realtime:
            self._stop_evt.clear()
            self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
            self._thread.start()

    def _stop(self) -> None:
        self._stop_evt.set()
        self._join_thread(self._thread, 1.0)
        self._thread = None

    def _run(self) -> None:
        last = (-1, -1)
        while not self._stop_evt.is_set():
            key = self._index_at(self.clock.now())
            if key != last:
                self._publish(self._frame(*key))
                last = key
            n_loop, i = key
            if i + 1 < len(self._t):
                nxt = self._t0 + (n_loop * self._period + self._t[i + 1]) / self.config.speed
            elif self.config.loop:
                nxt = self._t0 + (n_loop + 1) * self._period / self.config.speed
            else:
                nxt = self.clock.now() + 0.05
            self._stop_evt.wait(max(0.0005, nxt - self.clock.now()))

    def latest(self) -> HumanFrame | None:
        if not self.clock.realtime and self._t0 is not None:
            n_loop, i = self._index_at(self.clock.now())
            current = super().latest()
            if current is None or current.seq != n_loop * len(self._t) + i:
                self._publish(self._frame(n_loop, i))
        return super().latest()
