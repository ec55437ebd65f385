"""Recording a running session into a dataset, crash-safe.

A :class:`Recorder` is a session listener: on the loop thread it turns each tick into a row
(a few array copies) and queues it; its ``recorder`` thread appends rows to the episode's
write-ahead log, fsynced at least every 0.5 s, and commits finished episodes to the dataset
(:func:`~teleop_app.recording.dataset.commit_episode`). Nothing it does can stall or stop
the control loop: a full disk or a permission error ends the recording with a message
(``state == "failed"``) while teleoperation goes on, and what reached the log stays
recoverable.

Opening a dataset that holds an unfinished log (a crash, a kill) recovers it into an episode
first, or discards it on request (``dexteleop dataset doctor``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assets.atomic import fsync_dir
from teleop_app.recording.dataset import (
    RECORDING_DIR,
    DatasetError,
    all_features,
    commit_episode,
    finish_committed,
    is_committed,
    prune_uncommitted,
    read_info,
)
from teleop_app.recording.features import hand_features, tick_row
from teleop_app.recording.wal import WalError, WalWriter, read_wal

if TYPE_CHECKING:
    from assets.hands import Hand
    from teleop_app.session import TickRecord

log = logging.getLogger(__name__)

SYNC_S = 0.5


def _wal_path(root: Path, episode: int) -> Path:
    return Path(root) / RECORDING_DIR / f"episode_{episode:06d}.wal"


def pending_logs(root: Path) -> list[Path]:
    """Logs of episodes that were being recorded when a recorder stopped without finishing."""
    return sorted((Path(root) / RECORDING_DIR).glob("episode_*.wal"))


def lock_dataset(root: Path) -> Any:
    """Take the dataset's writer lock (a file handle to keep open); DatasetError when another
    process (a recorder, a doctor) holds it."""
    folder = Path(root) / RECORDING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "lock", "w")  # noqa: SIM115 - returned, closed by the caller
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DatasetError(f"{root} is being recorded by another process") from None
    return handle


def recover(
    root: Path, *, discard: bool = False, locked: bool = False, rebuild_stats: bool = False
) -> list[str]:
    """Recover (or discard) every unfinished episode log in ``root``, then remove what an
    interrupted commit left behind (and, with ``rebuild_stats``, rewrite stats.json from the
    episodes' own stats); returns what was done, one line per action. Takes the dataset's
    lock unless the caller holds it (``locked``)."""
    root = Path(root)
    handle = None if locked else lock_dataset(root)
    try:
        done = []
        for path in pending_logs(root):
            try:
                header, rows, clean = read_wal(path)
            except WalError as e:
                if discard:
                    path.unlink()
                    done.append(f"{path.name}: unreadable, discarded")
                else:
                    path.rename(path.with_suffix(".wal.bad"))
                    done.append(f"{path.name}: unreadable ({e}); set aside as {path.name}.bad")
                continue
            tail = "" if clean else " (a torn last record was dropped)"
            if is_committed(root, header):  # crashed after the commit point: finish the stats
                finish_committed(root)
                done.append(f"{path.name}: episode {header['episode']} was already saved{tail}")
            elif discard:
                done.append(f"{path.name}: discarded ({len(rows)} frames)")
            elif rows:
                ep = commit_episode(root, header, rows)
                done.append(f"{path.name}: recovered as episode {ep}, {len(rows)} frames{tail}")
            else:
                done.append(f"{path.name}: empty, removed")
            path.unlink()
            fsync_dir(path.parent)
        pruned = prune_uncommitted(root)
        if pruned:
            done.append(f"removed {pruned} file(s) of an interrupted save")
        if rebuild_stats and read_info(root) is not None:
            finish_committed(root)
            done.append("rewrote meta/stats.json from the episodes")
        return done
    finally:
        if handle is not None:
            handle.close()


def describe_os_error(e: OSError, what: str) -> str:
    why = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
    }.get(e.errno or 0, e.strerror or str(e))
    where = f" ({e.filename})" if e.filename else ""
    return f"recording stopped: {why} while {what}{where}; teleoperation goes on"


class Recorder:
    """Records ticks of a session into the dataset at ``root`` (created if needed).

    ``start(task)`` begins an episode, ``stop()`` commits it (a future of its episode index),
    ``discard()`` drops it. Subscribe the recorder to the session (``session.subscribe``).
    ``on_sync(episode, frames)`` is called from the recorder thread after each fsync.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        hand: Hand,
        fps: float,
        with_object: bool,
        robot_type: str | None = None,
        sync_s: float = SYNC_S,
        on_sync: Callable[[int, int], None] | None = None,
        session_info: dict[str, Any] | None = None,
        sim_state_size: int | None = None,
        arm_joints: tuple[str, ...] | None = None,
    ) -> None:
        self.root = Path(root)
        if abs(fps - round(fps)) > 1e-9:
            raise DatasetError(f"LeRobot datasets need a whole fps, got {fps}")
        self.fps = round(fps)
        self.features = hand_features(
            hand, with_object=with_object, sim_state_size=sim_state_size, arm_joints=arm_joints
        )
        self.robot_type = robot_type or f"{hand.name}_hand"
        self.sync_s = sync_s
        self.on_sync = on_sync
        self.session_info = dict(session_info or {})
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = lock_dataset(self.root)
        try:
            for line in recover(self.root, locked=True):
                log.warning("%s: %s", self.root, line)
            info = read_info(self.root)
            if info is not None and info["features"] != all_features(self.features):
                raise DatasetError(
                    f"{self.root} holds a dataset with other features (another hand or object "
                    "setting); record into a new folder"
                )
            if info is not None and int(info["fps"]) != self.fps:
                raise DatasetError(f"{self.root} is at {info['fps']} fps, this session {self.fps}")
        except BaseException:
            self._lock_file.close()
            raise
        self.episodes = 0 if info is None else int(info["total_episodes"])
        self.state = "idle"  # idle | recording | failed | closed
        self.message = ""
        self.frames = 0  # in the episode being recorded
        self.bytes_written = 0
        # Bounded: about 2 s of ticks. If the disk cannot keep up, recording stops (the
        # loop never waits for it, and a kill could not lose more than that backlog).
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(20, 2 * self.fps))
        self._wal: WalWriter | None = None
        self._header: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    @classmethod
    def for_session(cls, root: str | Path, session: Any, **kw: Any) -> Recorder:
        """A recorder for ``session``'s hand, rate and object, keeping the simulator state
        and the session's settings (so an episode can be replayed exactly)."""
        import dataclasses

        from devices.robots.base import Simulated
        from teleop_app.session import _jsonable

        robot = session.robot
        size = len(robot.sim_state()) if isinstance(robot, Simulated) else None
        config = session.config
        info = _jsonable(dataclasses.asdict(config))
        if robot.drives_hardware:  # the backend and its calibration (the motor map)
            hw = robot.hand.spec.hardware
            info["hardware"] = {
                "backend": config.robot,
                "settings": _jsonable(robot.settings()),
                "motor_map": None if hw is None else _jsonable(dataclasses.asdict(hw)),
            }
        return cls(
            root,
            hand=robot.hand,
            fps=config.rate_hz,
            with_object="object" in config.robot_options,
            sim_state_size=size,
            session_info=info,
            arm_joints=None if session.arm is None else tuple(session.arm.spec.joint_names),
            **kw,
        )

    # -- control (any thread) ------------------------------------------------------------------
    def start(self, task: str = "", operator: str = "") -> Future[int]:
        """Begin an episode labelled ``task`` by ``operator``; the future holds its index."""
        return self._ask("start", (task, operator))

    def stop(self) -> Future[int]:
        """Finish the episode: commit it to the dataset. The future holds its index."""
        return self._ask("stop", None)

    def discard(self) -> Future[None]:
        """Drop the episode being recorded."""
        return self._ask("discard", None)

    def close(self) -> None:
        """Finish (commit) an episode in progress and stop the thread."""
        if self.state == "recording":
            with contextlib.suppress(Exception):
                self.stop().result(timeout=60)
        self._q.put(("quit", None))
        self._thread.join(timeout=60)
        if self._thread.is_alive():  # still writing: keep the lock, say so
            log.error("the recorder did not finish within 60 s; its log stays for recovery")
            return
        self._lock_file.close()
        self.state = "closed"

    def __call__(self, record: TickRecord) -> None:
        """The session listener (loop thread): queue the tick while recording; never waits."""
        if self.state != "recording":
            return
        if not self._thread.is_alive():
            self.state, self.message = "failed", "recording stopped: the recorder thread ended"
            return
        try:
            self._q.put_nowait(("row", tick_row(record, self.features)))
        except queue.Full:
            self.state = "failed"
            self.message = (
                "recording stopped: the disk cannot keep up (2 s of ticks waiting); "
                "teleoperation goes on; the episode so far stays in its log"
            )
            log.error(self.message)

    def _ask(self, what: str, arg: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._q.put((what, (arg, future)))
        return future

    # -- the recorder thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                what, arg = self._q.get(timeout=self.sync_s / 2)
            except queue.Empty:
                what, arg = "tick", None
            if what == "quit":
                return
            try:
                if what == "tick":
                    self._maybe_sync()
                elif what == "row":
                    self._append(arg)
                else:
                    payload, future = arg
                    try:
                        future.set_result(getattr(self, f"_do_{what}")(payload))
                    except Exception as e:  # noqa: BLE001 - reported through the future
                        future.set_exception(e)
            except Exception as e:  # a bug here must not end the thread silently
                log.exception("recorder failed")
                self.state = "failed"
                self.message = f"recording stopped: {type(e).__name__}: {e}; the log is kept"
                if self._wal is not None:
                    with contextlib.suppress(OSError):
                        self._wal.close()
                    self._wal = None

    def _fail(self, e: OSError, what: str) -> None:
        self.state, self.message = "failed", describe_os_error(e, what)
        log.error(self.message)
        if self._wal is not None:
            with contextlib.suppress(OSError):
                self._wal.close()
        self._wal = None

    def _append(self, row: dict[str, Any]) -> None:
        if self.state != "recording" or self._wal is None:
            return
        try:
            self._wal.append(row)
            self.frames += 1
            self.bytes_written = self._wal.bytes
        except OSError as e:
            self._fail(e, "writing the episode log")
            return
        self._maybe_sync()

    def _maybe_sync(self) -> None:
        wal = self._wal
        if wal is None or self.state != "recording":
            return
        if time.monotonic() - wal.last_sync < self.sync_s:
            return
        try:
            wal.sync()
        except OSError as e:
            self._fail(e, "writing the episode log")
            return
        if self.on_sync is not None and self._header is not None:
            self.on_sync(int(self._header["episode"]), wal.rows)

    def _do_start(self, arg: tuple[str, str] | str) -> int:
        task, operator = arg if isinstance(arg, tuple) else (arg, "")
        if self.state == "recording":
            raise RuntimeError("already recording an episode")
        if self.state == "failed":
            self.message = ""
        # A failed save leaves its log: recover it first (it becomes an episode), and count
        # from what the dataset says, never from memory.
        for line in recover(self.root, locked=True):
            log.warning("%s: %s", self.root, line)
        info = read_info(self.root)
        self.episodes = 0 if info is None else int(info["total_episodes"])
        episode = self.episodes
        self._header = {
            "uid": uuid.uuid4().hex,
            "episode": episode,
            "task": str(task),
            "fps": self.fps,
            "robot_type": self.robot_type,
            "features": self.features,
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "pid": os.getpid(),
            "operator": str(operator),
            "session": self.session_info,
        }
        try:
            self._wal = WalWriter(_wal_path(self.root, episode), self._header, sync_s=self.sync_s)
        except OSError as e:
            self._fail(e, "starting the episode log")
            raise RuntimeError(self.message) from None
        self.frames = 0
        self.state = "recording"
        return episode

    def _do_stop(self, _: Any) -> int:
        if self.state == "failed":
            raise RuntimeError(self.message)
        if self.state != "recording" or self._wal is None or self._header is None:
            raise RuntimeError("not recording")
        wal, self._wal = self._wal, None
        self.state = "idle"
        try:
            wal.close()
            header, rows, _clean = read_wal(wal.path)
            if not rows:
                wal.path.unlink()
                raise RuntimeError("the episode has no frames; nothing saved")
            episode = commit_episode(self.root, header, rows)
            wal.path.unlink()
        except OSError as e:
            self._fail(e, "saving the episode")
            raise RuntimeError(f"{self.message}; the episode stays in its log") from None
        self.episodes = episode + 1
        return episode

    def _do_discard(self, _: Any) -> None:
        wal, self._wal = self._wal, None
        if wal is not None:
            with contextlib.suppress(OSError):
                wal.close()
            with contextlib.suppress(OSError):
                wal.path.unlink()
        self.state, self.frames = "idle", 0
