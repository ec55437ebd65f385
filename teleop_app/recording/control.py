"""Recording from the app (no Qt): one recorder per running session, started and stopped
by the operator, reporting what the panel shows."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from teleop_app.recording.recorder import Recorder, describe_os_error

log = logging.getLogger(__name__)


class RecordingControl:
    """Records the runner's current session into a dataset folder.

    The recorder is (re)made when the session or the folder changes; an episode in progress
    is committed before that, and on :meth:`close`.
    """

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.recorder: Recorder | None = None
        self._session: Any = None

    def _recorder_for(self, root: Path) -> Recorder:
        session = self.runner.session
        if session is None or not self.runner.running:
            raise RuntimeError("connect a device and a hand first")
        rec = self.recorder
        if rec is not None and (self._session is not session or rec.root != root):
            self.close()
            rec = None
        if rec is None:
            try:
                rec = Recorder.for_session(root, session)
            except OSError as e:  # cannot create or lock the folder
                raise RuntimeError(describe_os_error(e, "opening the dataset folder")) from None
            session.subscribe(rec)
            self.recorder, self._session = rec, session
        return rec

    def start(self, root: str | Path, task: str, operator: str = "") -> Future[int]:
        """Begin an episode (raises what stops it: no session, a folder of another hand)."""
        return self._recorder_for(Path(root).expanduser()).start(task, operator)

    def stop(self) -> Future[int]:
        return self._require().stop()

    def discard(self) -> Future[None]:
        return self._require().discard()

    def _require(self) -> Recorder:
        if self.recorder is None:
            raise RuntimeError("not recording")
        return self.recorder

    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.state == "recording"

    def status(self) -> dict[str, Any]:
        rec = self.recorder
        if rec is None:
            return {"state": "idle", "episodes": None, "frames": 0, "bytes": 0, "message": ""}
        return {
            "state": rec.state,
            "episodes": rec.episodes,
            "frames": rec.frames,
            "bytes": rec.bytes_written,
            "message": rec.message,
            "root": str(rec.root),
        }

    def close(self) -> None:
        """Commit an episode in progress and let go of the dataset."""
        rec, session = self.recorder, self._session
        self.recorder, self._session = None, None
        if rec is None:
            return
        if session is not None:
            session.unsubscribe(rec)
        try:
            rec.close()
        except Exception as e:  # noqa: BLE001 - closing must go on; the log stays recoverable
            log.error("closing the recorder: %s", e)
