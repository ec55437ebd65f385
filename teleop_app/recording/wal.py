"""The write-ahead log of the episode being recorded.

One file per episode in progress, ``<dataset>/.recording/episode_NNNNNN.wal``::

    b"DXWAL1\\n"  then  one JSON header line (episode, task, fps, schema...)
    then records:  [u32 length][u32 crc32 of payload][payload (msgpack: column -> value)]

Records are appended by the writer thread and the file is flushed and fsynced at least
every ``sync_s`` (0.5 s), so a kill loses at most that much. Reading stops at the first
record that is truncated or fails its CRC (what a kill mid-write leaves); everything before
it is intact by construction.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from assets.atomic import fsync_dir

MAGIC = b"DXWAL1\n"
_HEAD = struct.Struct("<II")
#: a record larger than this is corruption, not data (a tick is a few kB)
MAX_RECORD = 16 << 20


class WalError(ValueError):
    """The log cannot be read at all (not a log, or its header is damaged)."""


def _pack_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return {"__nd__": str(v.dtype), "s": list(v.shape), "b": v.tobytes()}
    if isinstance(v, np.generic):
        return v.item()
    return v


def _unpack_value(v: Any) -> Any:
    if isinstance(v, dict) and "__nd__" in v:
        return np.frombuffer(v["b"], dtype=np.dtype(v["__nd__"])).reshape(v["s"])
    return v


class WalWriter:
    """Appends rows to a new log; :meth:`sync` makes them durable."""

    def __init__(self, path: Path, header: dict[str, Any], *, sync_s: float = 0.5) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never truncate a log that exists (it holds an episode to recover)
        self._f = open(self.path, "xb")  # noqa: SIM115 - closed in close()
        self._f.write(MAGIC + json.dumps(header).encode() + b"\n")
        self.sync_s = sync_s
        self.rows = 0
        self.bytes = self._f.tell()
        self.last_sync = time.monotonic()
        self.sync()
        fsync_dir(self.path.parent)

    def append(self, row: dict[str, Any]) -> None:
        payload = msgpack.packb({k: _pack_value(v) for k, v in row.items()}, use_bin_type=True)
        self._f.write(_HEAD.pack(len(payload), zlib.crc32(payload)) + payload)
        self.rows += 1
        self.bytes += _HEAD.size + len(payload)
        if time.monotonic() - self.last_sync >= self.sync_s:
            self.sync()

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self.last_sync = time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            try:
                self.sync()
            finally:
                self._f.close()


def read_wal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """The header, the intact rows, and whether the log ended cleanly (False: a torn or
    corrupt tail was dropped)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # e.g. a link to a device: never read it whole
        raise WalError(f"{path}: not a regular file")
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise WalError(f"{path}: not a recording log")
    nl = data.find(b"\n", len(MAGIC))
    if nl < 0:
        raise WalError(f"{path}: the log's header is incomplete")
    try:
        header = json.loads(data[len(MAGIC) : nl])
    except ValueError as e:
        raise WalError(f"{path}: the log's header is damaged ({e})") from None
    missing = {"episode", "fps", "features"} - set(header if isinstance(header, dict) else {})
    if missing:
        raise WalError(f"{path}: the log's header lacks {sorted(missing)}")
    rows: list[dict[str, Any]] = []
    i, clean = nl + 1, True
    while i < len(data):
        if i + _HEAD.size > len(data):
            clean = False
            break
        n, crc = _HEAD.unpack_from(data, i)
        start, end = i + _HEAD.size, i + _HEAD.size + n
        if n > MAX_RECORD or end > len(data) or zlib.crc32(data[start:end]) != crc:
            clean = False
            break
        try:
            raw = msgpack.unpackb(data[start:end], raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            clean = False
            break
        rows.append({k: _unpack_value(v) for k, v in raw.items()})
        i = end
    return header, rows, clean
