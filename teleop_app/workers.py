"""Worker threads that load models (a session's hand, a controller), joined before the app exits.

Loading runs in a model library's C code with the GIL released (MuJoCo compiling a model,
torch reading weights). A daemon thread still in there when the interpreter finalizes is
ended by ``pthread_exit`` as it takes the GIL back, which unwinds through C++ frames and
crashes the process (a Ctrl+C in the app's first seconds did, while the hand was loading).
So the app starts such threads here and, once its window is closed, waits for them
(:func:`join_workers`); a loader that sees the app closing discards what it built.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

_workers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_lock = threading.Lock()


def start_worker(target: Callable[[], None], name: str) -> threading.Thread:
    """Start ``target`` on a daemon thread called ``name`` that :func:`join_workers` waits for."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    with _lock:
        _workers.add(thread)
    thread.start()
    return thread


def join_workers(timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` in all for the workers still running; the names of those
    that did not finish (empty when all did)."""
    deadline = time.monotonic() + timeout_s
    with _lock:
        threads = [t for t in _workers if t is not threading.current_thread()]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]
