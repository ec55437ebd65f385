"""The live transport: the headset through the Debian ``adb`` command-line tool.

Live: ``adb`` through :mod:`subprocess`: find the headset, optionally ``adb connect`` and
``adb install -r``, ``am start`` the app, then ``adb logcat -T 0 -v threadtime`` on the
device's thread, reconnecting with backoff when adb exits or goes silent; disconnecting
force-stops the app. :class:`AdbLink` is that half of :class:`~devices.inputs.quest.QuestDevice`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Final

from devices.inputs.quest.protocol import TAG

if TYPE_CHECKING:
    from devices.inputs.quest.device import QuestConfig

log = logging.getLogger("devices.inputs.quest")

DEFAULT_PACKAGE: Final[str] = "com.rail.oculus.teleop"
DEFAULT_ACTIVITY: Final[str] = "com.rail.oculus.teleop.MainActivity"
#: Default adb TCP port of ``adb connect`` (Wi-Fi debugging).
ADB_TCP_PORT: Final[int] = 5555

#: Waits between reconnection attempts (s); the last one repeats.
RECONNECT_BACKOFF_S: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
#: No tagged line from a running logcat for this long: say so in the status message (s).
STALL_WARN_S: float = 2.0
#: No tagged line for this long: restart logcat (the link may be dead without adb noticing) (s).
STALL_RESTART_S: float = 10.0
#: A logcat line longer than this is dropped (bytes); the app's lines are under 1 KiB.
MAX_LINE_BYTES: Final[int] = 1 << 16
#: Timeout of short adb commands (devices, connect, am start/force-stop) (s).
ADB_TIMEOUT_S: float = 15.0
#: Timeout of ``adb install`` (s).
ADB_INSTALL_TIMEOUT_S: float = 180.0


class QuestError(ConnectionError):
    """The headset cannot be reached or set up through adb (the message says what to do)."""


# ------------------------------------------------------------------------------ adb helpers
def parse_adb_devices(text: str) -> list[tuple[str, str]]:
    """``(serial, state)`` pairs from ``adb devices`` output (state e.g. ``device``,
    ``unauthorized``, ``offline``, ``no permissions (...)``)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("*", "List of devices")) or line.startswith("adb "):
            continue
        serial, _, state = line.partition("\t") if "\t" in line else line.partition(" ")
        if serial and state.strip():
            out.append((serial.strip(), state.strip()))
    return out


def _state_problem(serial: str, state: str) -> str | None:
    """What to do about a headset in adb state ``state``, or None if it is usable."""
    if state == "device":
        return None
    if state.startswith("unauthorized"):
        return (
            f"headset {serial} is unauthorized: put the headset on and accept USB debugging "
            "in the prompt (tick 'always allow')"
        )
    if state.startswith("no permissions"):
        return (
            f"no permissions for headset {serial}: accept USB debugging in the headset and "
            "check the udev rules (Meta vendor id 2833)"
        )
    if state.startswith("offline"):
        return f"headset {serial} is offline: replug the cable or run 'adb kill-server'"
    return f"headset {serial} is in state {state!r}, not ready"


def select_headset(devices: list[tuple[str, str]], serial: str | None) -> str:
    """The serial to use among ``adb devices``' entries.

    Raises:
        QuestError: none, several without ``serial``, ``serial`` missing, or not ready (the
            message says what to do, e.g. accept USB debugging in the headset).
    """
    if serial is not None:
        states = dict(devices)
        if serial not in states:
            seen = ", ".join(f"{s} ({st})" for s, st in devices) or "nothing"
            raise QuestError(f"headset {serial} not found by adb; adb sees: {seen}")
        problem = _state_problem(serial, states[serial])
        if problem:
            raise QuestError(problem)
        return serial
    if not devices:
        raise QuestError(
            "no headset found by adb: connect the Quest by USB with developer mode on, "
            "or set host=IP for Wi-Fi debugging"
        )
    if len(devices) > 1:
        listed = ", ".join(f"{s} ({st})" for s, st in devices)
        raise QuestError(f"several adb devices ({listed}): choose one with serial=...")
    only, state = devices[0]
    problem = _state_problem(only, state)
    if problem:
        raise QuestError(problem)
    return only


def _adb_executable(override: str | None) -> str:
    path = override or shutil.which("adb")
    if not path:
        raise QuestError(
            "adb not found: apt-get install adb, or play a capture with quest3:logcat=FILE"
        )
    return path


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


class AdbLink:
    """The live half of :class:`~devices.inputs.quest.QuestDevice`: adb, logcat, reconnection.

    A mixin: the device provides the attributes below and ``_handle_line``, ``_set_message``,
    ``_reject`` and ``clock`` (from :class:`~devices.inputs.base.Device`).
    """

    config: QuestConfig
    serial: str | None
    reconnects: int
    _stop_evt: threading.Event
    _thread: threading.Thread | None
    _proc: subprocess.Popen[bytes] | None
    _proc_lock: threading.Lock
    _pending_recovery: str | None
    _tail: str

    def _adb(self, *args: str, timeout: float = ADB_TIMEOUT_S) -> tuple[int, str]:
        """Run ``adb args...``; (exit code, stdout+stderr). Raises QuestError if it cannot run."""
        cmd = [_adb_executable(self.config.adb), *args]
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise QuestError(f"'adb {' '.join(args)}' timed out after {timeout:.0f} s") from e
        except OSError as e:
            raise QuestError(f"cannot run adb ({cmd[0]}): {e}") from e
        return proc.returncode, proc.stdout.decode("utf-8", errors="replace")

    def _host_port(self) -> str | None:
        host = self.config.host
        if not host:
            return None
        return host if ":" in host else f"{host}:{ADB_TCP_PORT}"

    def _open(self, *, install: bool) -> str:
        """Find the headset (connecting over Wi-Fi if asked), install, start the app.

        Returns:
            the serial in use.
        """
        hp = self._host_port()
        if hp is not None:
            rc, out = self._adb("connect", hp)
            low = out.lower()
            if rc != 0 or not ("connected to" in low and "cannot" not in low):
                raise QuestError(f"adb connect {hp} failed: {_one_line(out) or f'exit {rc}'}")
        rc, out = self._adb("devices")
        if rc != 0:
            raise QuestError(f"adb devices failed: {_one_line(out) or f'exit {rc}'}")
        serial = select_headset(parse_adb_devices(out), self.config.serial or hp)
        if install and self.config.apk:
            log.info("quest3: installing %s on %s", self.config.apk, serial)
            rc, out = self._adb(
                "-s", serial, "install", "-r", self.config.apk, timeout=ADB_INSTALL_TIMEOUT_S
            )
            if rc != 0 or "Success" not in out:
                raise QuestError(f"adb install {self.config.apk} failed: {_one_line(out)}")
        if self._stop_evt.is_set():  # disconnecting: do not start the app again
            raise QuestError("stopped")
        component = f"{self.config.package}/{self.config.activity}"
        rc, out = self._adb("-s", serial, "shell", "am", "start", "-n", component)
        if rc != 0 or "Error" in out:
            raise QuestError(f"cannot start {component} on {serial}: {_one_line(out)}")
        self.serial = serial
        return serial

    def _start_live(self) -> None:
        serial = self._open(install=True)  # raises a clear QuestError before any thread
        log.info("quest3: streaming from %s", serial)
        self._thread = threading.Thread(target=self._run_live, name="quest3", daemon=True)
        self._thread.start()

    def _run_live(self) -> None:
        attempt = 0
        first = True
        while not self._stop_evt.is_set():
            got_data = False
            try:
                if not first:
                    self.reconnects += 1
                    self._open(install=False)
                first = False
                got_data, reason = self._stream()
            except QuestError as e:
                reason = str(e)
            except Exception as e:
                log.exception("quest3: live thread error")
                reason = f"internal error: {e}"
            if self._stop_evt.is_set():
                break
            attempt = 0 if got_data else attempt + 1
            delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            self._set_message(f"quest3: {reason}; reconnecting in {delay:.1f} s")
            log.warning("quest3: %s; reconnecting in %.1f s", reason, delay)
            self._pending_recovery = reason
            self._stop_evt.wait(delay)

    def _stream(self) -> tuple[bool, str]:
        """Run ``adb logcat`` until it ends, goes silent or the device stops.

        Returns:
            (whether any tagged line arrived, why the stream ended).
        """
        assert self.serial is not None
        cmd = [
            _adb_executable(self.config.adb),
            "-s",
            self.serial,
            "logcat",
            "-T",
            self._tail,
            "-v",
            "threadtime",
            f"{TAG}:V",
            "*:S",
        ]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as e:
            raise QuestError(f"cannot run adb logcat: {e}") from e
        with self._proc_lock:
            if self._stop_evt.is_set():
                _terminate(proc)
                return False, "stopped"
            self._proc = proc
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        got = False
        other = ""
        last_data = time.monotonic()
        warned = False
        reason = ""
        try:
            while not self._stop_evt.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    silent = time.monotonic() - last_data
                    if silent > STALL_RESTART_S:
                        reason = f"no data from {self.serial} for {silent:.0f} s"
                        break
                    if silent > STALL_WARN_S and not warned:
                        warned = True
                        self._set_message(
                            f"quest3: no data from {self.serial} for {silent:.0f} s: is the app "
                            "in front and the headset awake (proximity sensor)?"
                        )
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                if len(buf) > MAX_LINE_BYTES:  # no newline for far too long: drop it
                    self._reject("truncated", "quest3: dropped an over-long logcat line")
                    buf = b""
                for raw in lines:
                    line = raw.decode("utf-8", errors="replace")
                    if self._handle_line(line, self.clock.now()):
                        if not got:
                            self._on_first_data()
                        got = True
                        last_data = time.monotonic()
                        warned = False
                    elif line.strip() and not line.startswith("-----"):
                        other = line.strip()
        finally:
            with self._proc_lock:
                self._proc = None
            _terminate(proc)
            proc.stdout.close()
        if not got and self._tail == "0" and "greater than zero" in other:
            self._tail = "1"  # a logcat that refuses "-T 0": ask for the last line instead
        if not reason:
            rc = proc.returncode
            reason = f"adb logcat ended (exit {rc})" + (f": {_one_line(other)}" if other else "")
        return got, reason

    def _on_first_data(self) -> None:
        if self._pending_recovery is not None:
            self._set_message(
                f"quest3: reconnected to {self.serial} after: {self._pending_recovery}"
            )
            log.info("quest3: reconnected to %s", self.serial)
            self._pending_recovery = None
        with self._builder_lock:
            self._builder.release()

    def _kill_proc(self) -> None:
        with self._proc_lock:
            proc = self._proc
        if proc is not None:
            _terminate(proc)

    def _force_stop_app(self) -> None:
        assert self.serial is not None
        try:
            rc, out = self._adb("-s", self.serial, "shell", "am", "force-stop", self.config.package)
            if rc != 0:
                log.warning("quest3: force-stop failed: %s", _one_line(out))
        except QuestError as e:
            log.warning("quest3: force-stop failed: %s", e)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` (kill after 1 s) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.terminate()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait(timeout=5.0)
