"""Atomic writes (assets.atomic): the old file or the new one, never half, no temp left."""

import numpy as np
import pytest

from assets.atomic import atomic_path, write_atomic


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_atomic(path, "old")
    assert write_atomic(path, b"new") == path
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".tmp.npz") and not tmp.exists()
        np.savez(tmp, x=np.zeros(3))  # the writer names the file: no extension added
        raise RuntimeError("disk full")
    np.testing.assert_array_equal(np.load(path)["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_a_writer_that_needs_a_path(tmp_path):
    path = tmp_path / "b.npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, x=np.ones(2))
    np.testing.assert_array_equal(np.load(path)["x"], np.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "chunk_00000"
    with pytest.raises(OSError), atomic_path(target, folder=True) as tmp:
        tmp.mkdir()
        (tmp / "a.npy").write_bytes(b"1")
        raise OSError("crash")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target, folder=True) as tmp:
        tmp.mkdir()
        (tmp / "a.npy").write_bytes(b"1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.npy").write_bytes(b"2")
    assert (target / "a.npy").read_bytes() == b"1" and (target / "sub" / "b.npy").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["chunk_00000"]
