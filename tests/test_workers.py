"""The app's loader threads: joined before it exits (teleop_app.workers)."""

from __future__ import annotations

import threading

from teleop_app.workers import join_workers, start_worker


def test_join_workers_waits_for_a_loader_and_names_one_still_running():
    release, done = threading.Event(), threading.Event()

    def load() -> None:
        release.wait(timeout=30)
        done.set()

    thread = start_worker(load, "test-loader")
    assert thread.daemon and thread.name == "test-loader"
    assert "test-loader" in join_workers(0.05)  # still loading: named, not waited for
    release.set()
    assert "test-loader" not in join_workers(30.0)
    assert done.is_set() and not thread.is_alive()


def test_join_workers_from_a_worker_does_not_wait_for_itself():
    seen: list[list[str]] = []
    thread = start_worker(lambda: seen.append(join_workers(0.5)), "test-self")
    thread.join(timeout=30)
    assert seen and "test-self" not in seen[0]
