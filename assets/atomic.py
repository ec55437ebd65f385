"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every file the project writes in place goes through :func:`atomic_path`: the writer writes a
temp file (or folder) in the same folder, which is then fsynced and renamed over the target,
and the folder fsynced so that the rename survives a power loss. :func:`write_atomic` is the
case of bytes or text in memory; writers that need a file name (``np.savez``, ``torch.save``
to a file, h5py) use :func:`atomic_path` directly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, *, folder: bool = False) -> Iterator[Path]:
    """A temp path next to ``path`` to write; on leaving the block, it becomes ``path``.

    The temp name is hidden (``.<name>.<random>.tmp<suffix>``, so that ``np.savez`` adds no
    extension) and does not exist yet: the writer creates it, as a file, or as a folder
    when ``folder`` (every file in it is fsynced too). The parent folder is created if
    needed. When the block ends normally the temp is fsynced, renamed over ``path`` (a
    folder only onto a missing or empty one) and the parent folder fsynced. On any failure
    (in the block or after) the temp is removed, the old ``path`` untouched, and the
    exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique name, reserved by creating it, then freed for the writer to create
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        if folder:
            for sub, _, files in os.walk(tmp):
                for f in files:
                    _fsync_file(Path(sub) / f)
                fsync_dir(sub)
        else:
            _fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the rename itself survives a power loss
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, rename.

    The folder is created if needed. On any failure (full disk, permissions) the old file
    is untouched, the temp file removed, and the OSError propagates.
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        f.write(raw)
    return path


def fsync_dir(folder: str | Path) -> None:
    """Make a folder's entries (files created, renamed, removed in it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
