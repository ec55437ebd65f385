"""Test set-up: offline robot models and headless rendering, fixed seeds."""

import errno
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MENAGERIE_ROOT", str(REPO.parent / "shared" / "menagerie"))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from assets.hands import HAND_SPECS  # noqa: E402  (after the environment is set)

#: Every hand in the registry: tests parametrized over it cover a newly added hand too.
HANDS = tuple(sorted(HAND_SPECS))


@pytest.fixture
def disk_full_after(monkeypatch):
    """``arm(n)``: from now on the recording log's writes fail with ENOSPC once it holds
    ``n`` frames (a disk filling up); returns ``disarm()``."""
    from teleop_app.recording import wal

    real_append = wal.WalWriter.append

    def arm(n):
        def append(self, row):
            if self.rows >= n:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
            real_append(self, row)

        monkeypatch.setattr(wal.WalWriter, "append", append)
        return lambda: monkeypatch.setattr(wal.WalWriter, "append", real_append)

    return arm


def dexteleop(*args, timeout=120):
    """Run ``dexteleop ARGS`` in a fresh interpreter (the installed entry point's module)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "teleop_app", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},  # DEXTELEOP_HOME passes through
    )
