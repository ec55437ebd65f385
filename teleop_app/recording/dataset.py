"""Datasets on disk in the LeRobot v3.0 layout (as lerobot 0.4.4 writes and loads them).

    meta/info.json                                   schema, counts, fps, path templates
    meta/stats.json                                  per-feature min/max/mean/std/count/q01..q99
    meta/tasks.parquet                               task strings (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet          one row per episode (+ per-episode stats)
    data/chunk-000/file-000.parquet                   the frames
    .recording/                                      ours: the write-ahead log of the episode
                                                     being recorded, and the writer's lock

We write one data file and one episode-metadata file per episode (LeRobot packs several
into one file up to 100 MB; its loader reads any packing, through the file indices in the
episode rows). Committing an episode (:func:`commit_episode`) writes, each atomically
(temp file, fsync, rename): the data file, the episode row, the tasks, then ``info.json``
(the commit point: an episode exists once ``total_episodes`` counts it), then
``stats.json``; only then is the episode's log deleted. A crash at any step leaves either
the old dataset plus a log to recover, or the new dataset plus a log whose episode is
already counted (recovery then only rewrites the stats).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assets.atomic import write_atomic
from teleop_app.recording.features import DEFAULT_FEATURES

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
#: the lerobot release whose reader and writer this layout was checked against
LEROBOT_VERSION = "0.4.4"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_MB = 100
VIDEO_FILES_SIZE_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO = "meta/info.json"
STATS = "meta/stats.json"
#: ours, beside LeRobot's files (its loader ignores it): how each episode's session was set up
SESSIONS = "meta/dexteleop.json"
TASKS = "meta/tasks.parquet"
RECORDING_DIR = ".recording"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STAT_KEYS = ("min", "max", "mean", "std", "count", *(f"q{round(q * 100):02d}" for q in QUANTILES))


class DatasetError(ValueError):
    """The dataset is not readable or not ours to append to; the message says why."""


# -- schema ---------------------------------------------------------------------------------
def all_features(features: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``features`` followed by LeRobot's default columns (as lerobot orders them)."""
    return {**features, **DEFAULT_FEATURES}


def arrow_type(feature: dict[str, Any]) -> pa.DataType:
    """How a feature is stored: (1,) as a scalar column, (N,) as a fixed-size list."""
    base = (
        pa.string()
        if feature["dtype"] == "string"
        else pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    )
    n = int(np.prod(feature["shape"]))
    return base if n == 1 else pa.list_(base, n)


def arrow_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    return pa.schema([pa.field(k, arrow_type(f)) for k, f in all_features(features).items()])


def new_info(features: dict[str, Any], fps: int, robot_type: str | None) -> dict[str, Any]:
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_MB,
        "fps": int(fps),
        "splits": {"train": "0:0"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": all_features(features),
    }


def read_info(root: Path) -> dict[str, Any] | None:
    path = Path(root) / INFO
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable ({e})") from None
    if not isinstance(info, dict) or "features" not in info:
        raise DatasetError(f"{path}: not a dataset description")
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{path}: codebase_version {info.get('codebase_version')!r}, expected "
            f"{CODEBASE_VERSION!r} (LeRobot {LEROBOT_VERSION} layout)"
        )
    return info


def read_sessions(root: Path) -> dict[str, Any]:
    """Episode index (str) -> the session settings it was recorded with."""
    path = Path(root) / SESSIONS
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text()).get("episodes", {}))
    except (OSError, ValueError, AttributeError) as e:
        raise DatasetError(f"{path}: unreadable ({e})") from None


def read_tasks(root: Path) -> list[str]:
    path = Path(root) / TASKS
    if not path.exists():
        return []
    df = pq.read_table(path).to_pandas()
    return [str(t) for t in df.sort_values("task_index").index]


def write_tasks(root: Path, tasks: list[str]) -> None:
    import pandas as pd

    df = pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)}, index=tasks)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df), sink)
    write_atomic(Path(root) / TASKS, sink.getvalue().to_pybytes())


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes()


def chunk_file(episode: int) -> tuple[int, int]:
    return episode // CHUNKS_SIZE, episode % CHUNKS_SIZE


# -- statistics ------------------------------------------------------------------------------
def column_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's per-episode stats of one numeric feature; NaN (absent) entries ignored."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (absent values)
        masked = np.where(np.isfinite(a), a, np.nan)
        out = {
            "min": np.nanmin(masked, axis=0),
            "max": np.nanmax(masked, axis=0),
            "mean": np.nanmean(masked, axis=0),
            "std": np.nanstd(masked, axis=0),
            "count": np.array([a.shape[0]], dtype=np.int64),
        }
        qs = np.nanquantile(masked, QUANTILES, axis=0)
    for q, row in zip(QUANTILES, qs, strict=True):
        out[f"q{round(q * 100):02d}"] = row
    return out  # NaN where an element had no value in the episode


def aggregate_stats(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode stats (LeRobot's rule: exact min/max/mean/std/count, quantiles
    as count-weighted means), each element weighted by its finite values in each episode
    (NaN: absent). Elements with no value anywhere come out as NaN."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.array([np.asarray(p["mean"], dtype=float) for p in parts])
        frames = np.array([float(p["count"][0]) for p in parts])[:, None]
        n = np.where(np.isfinite(means), frames, 0.0)  # an episode without the value: no say
        total = n.sum(axis=0)
        w = np.where(total > 0, n / np.where(total > 0, total, 1.0), 0.0)

        def wsum(key: str) -> np.ndarray:
            vals = np.array([np.asarray(p[key], dtype=float) for p in parts])
            out = np.nansum(w * np.nan_to_num(vals), axis=0)
            return np.where(total > 0, out, np.nan)

        mean = wsum("mean")
        stds = np.array([np.asarray(p["std"], dtype=float) for p in parts])
        var = np.nansum(w * np.nan_to_num(stds**2 + (means - mean) ** 2), axis=0)
        out = {
            "min": np.nanmin([np.asarray(p["min"], dtype=float) for p in parts], axis=0),
            "max": np.nanmax([np.asarray(p["max"], dtype=float) for p in parts], axis=0),
            "mean": mean,
            "std": np.where(total > 0, np.sqrt(var), np.nan),
            "count": np.array([int(sum(p["count"][0] for p in parts))], dtype=np.int64),
        }
        for k in STAT_KEYS[5:]:
            out[k] = wsum(k)
    return out


def stats_for_json(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LeRobot's keys only; absent elements (no value anywhere) as 0 (normalisation needs
    numbers)."""
    return {
        k: (v if k == "count" else np.nan_to_num(v)) for k, v in stats.items() if k in STAT_KEYS
    }


def _stats_json(stats: dict[str, dict[str, np.ndarray]]) -> str:
    return json.dumps(
        {
            f: {k: np.asarray(v).tolist() for k, v in stats_for_json(s).items()}
            for f, s in stats.items()
        },
        indent=4,
    )


def read_stats(root: Path) -> dict[str, dict[str, np.ndarray]] | None:
    path = Path(root) / STATS
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return {f: {k: np.asarray(v) for k, v in s.items()} for f, s in raw.items()}


def episode_stats_from_meta(root: Path) -> list[dict[str, dict[str, np.ndarray]]]:
    """Per-episode stats stored in the episode rows, in episode order."""
    out = []
    for path in sorted((Path(root) / "meta" / "episodes").glob("*/*.parquet")):
        t = pq.read_table(path)
        for i in range(t.num_rows):
            stats: dict[str, dict[str, np.ndarray]] = {}
            for name in t.column_names:
                if name.startswith("stats/"):
                    _, feat, key = name.split("/", 2)
                    stats.setdefault(feat, {})[key] = np.asarray(t.column(name)[i].as_py())
            out.append(stats)
    return out


# -- committing an episode --------------------------------------------------------------------
def rows_to_columns(
    rows: list[dict[str, Any]],
    features: dict[str, dict[str, Any]],
    *,
    episode: int,
    start_index: int,
    task_index: int,
    fps: int,
) -> dict[str, np.ndarray | list[str]]:
    """The rows of one episode as columns, with LeRobot's bookkeeping added."""
    n = len(rows)
    cols: dict[str, Any] = {}
    for name, feat in features.items():
        if feat["dtype"] == "string":
            cols[name] = [str(r.get(name, "")) for r in rows]
            continue
        width = int(np.prod(feat["shape"]))
        arr = np.empty((n, width), dtype=np.dtype(feat["dtype"]))
        for i, r in enumerate(rows):
            arr[i] = np.asarray(r[name]).reshape(-1)[:width]
        cols[name] = arr[:, 0] if width == 1 else arr
    frame = np.arange(n, dtype=np.int64)
    cols["timestamp"] = (frame / float(fps)).astype(np.float32)
    cols["frame_index"] = frame
    cols["episode_index"] = np.full(n, episode, dtype=np.int64)
    cols["index"] = start_index + frame
    cols["task_index"] = np.full(n, task_index, dtype=np.int64)
    return cols


def columns_to_table(cols: dict[str, Any], features: dict[str, dict[str, Any]]) -> pa.Table:
    schema = arrow_schema(features)
    arrays = []
    for field in schema:
        v = cols[field.name]
        if pa.types.is_fixed_size_list(field.type):
            flat = pa.array(np.ascontiguousarray(v).reshape(-1), type=field.type.value_type)
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, field.type.list_size))
        else:
            arrays.append(pa.array(v, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def commit_episode(root: Path, header: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """Write a recorded episode (``header`` from its log, ``rows`` its ticks) into the
    dataset at ``root``; returns its episode index. Idempotent after a crash (see module)."""
    root = Path(root)
    features = header["features"]
    fps = int(header["fps"])
    info = read_info(root) or new_info(features, fps, header.get("robot_type"))
    if info["features"] != all_features(features):
        raise DatasetError(f"{root}: the episode's features differ from the dataset's")
    if int(info["fps"]) != fps:
        raise DatasetError(f"{root}: the episode is at {fps} fps, the dataset at {info['fps']}")
    episode = int(info["total_episodes"])
    if not rows:
        raise DatasetError("an episode needs at least one frame")
    tasks = read_tasks(root)
    task = str(header.get("task", ""))
    if task not in tasks:
        tasks.append(task)
    task_index = tasks.index(task)
    start = int(info["total_frames"])
    cols = rows_to_columns(
        rows, features, episode=episode, start_index=start, task_index=task_index, fps=fps
    )
    chunk, file = chunk_file(episode)
    write_atomic(
        root / DATA_PATH.format(chunk_index=chunk, file_index=file),
        _parquet_bytes(columns_to_table(cols, features)),
    )
    stats = {
        name: column_stats(np.asarray(cols[name]))
        for name, feat in all_features(features).items()
        if feat["dtype"] != "string"
    }
    n = len(rows)
    ep_row: dict[str, Any] = {
        "episode_index": [episode],
        "tasks": [[task]],
        "length": [n],
        "data/chunk_index": [chunk],
        "data/file_index": [file],
        "dataset_from_index": [start],
        "dataset_to_index": [start + n],
    }
    for name, s in stats.items():
        for key in STAT_KEYS:
            v = np.asarray(s[key]).astype(np.int64 if key == "count" else np.float64)
            ep_row[f"stats/{name}/{key}"] = [v.tolist()]
    ep_row["meta/episodes/chunk_index"] = [chunk]
    ep_row["meta/episodes/file_index"] = [file]
    write_atomic(
        root / EPISODES_PATH.format(chunk_index=chunk, file_index=file),
        _parquet_bytes(pa.Table.from_pydict(ep_row)),
    )
    write_tasks(root, tasks)
    sessions = read_sessions(root)
    sessions[str(episode)] = {
        **header.get("session", {}),
        "operator": header.get("operator", ""),
        "started": header.get("started", ""),
        "uid": header.get("uid", ""),  # how recovery knows this log was committed
    }
    write_atomic(root / SESSIONS, json.dumps({"episodes": sessions}, indent=2) + "\n")
    info.update(
        total_episodes=episode + 1,
        total_frames=start + n,
        total_tasks=len(tasks),
        splits={"train": f"0:{episode + 1}"},
    )
    write_atomic(root / INFO, json.dumps(info, indent=4) + "\n")  # the commit point
    # From every episode's own stats (kept with NaN for absent values in the episode rows),
    # never merged into the previous stats.json: that one may be stale after a crash.
    write_atomic(root / STATS, _stats_json(rebuild_stats(root)) + "\n")
    return episode


def is_committed(root: Path, header: dict[str, Any]) -> bool:
    """Whether the episode a log holds is already in the dataset (a crash after the commit
    point): its id is recorded for an episode below ``total_episodes``."""
    info = read_info(root)
    uid = header.get("uid")
    if info is None or not uid:
        return False
    sessions = read_sessions(root)
    return any(
        int(k) < int(info["total_episodes"]) and v.get("uid") == uid
        for k, v in sessions.items()
        if str(k).isdigit() and isinstance(v, dict)
    )


def prune_uncommitted(root: Path) -> int:
    """Remove what an interrupted commit left: data and episode files of episodes the
    dataset does not count (LeRobot would read any parquet file it finds), tasks beyond
    ``total_tasks``. Returns the number of files removed."""
    root = Path(root)
    info = read_info(root)
    total = 0 if info is None else int(info["total_episodes"])
    removed = 0
    for pattern in (DATA_PATH, EPISODES_PATH):
        folder = root / pattern.split("/chunk-")[0]
        for path in folder.glob("chunk-*/file-*.parquet"):
            try:
                chunk = int(path.parent.name.split("-")[1])
                file = int(path.stem.split("-")[1])
            except (IndexError, ValueError):
                continue
            if chunk * CHUNKS_SIZE + file >= total:
                path.unlink()
                removed += 1
    if info is not None:
        tasks = read_tasks(root)
        if len(tasks) > int(info["total_tasks"]):
            write_tasks(root, tasks[: int(info["total_tasks"])])
        sessions = read_sessions(root)
        extra = [k for k in sessions if not str(k).isdigit() or int(k) >= total]
        if extra:
            for k in extra:
                sessions.pop(k)
            write_atomic(root / SESSIONS, json.dumps({"episodes": sessions}, indent=2) + "\n")
    return removed


def rebuild_stats(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """stats.json from the per-episode stats (after a crash between commit and stats)."""
    info = read_info(root)
    total = 0 if info is None else int(info["total_episodes"])
    per_episode = episode_stats_from_meta(root)[:total]
    names = set().union(*(set(p) for p in per_episode)) if per_episode else set()
    return {k: aggregate_stats([p[k] for p in per_episode if k in p]) for k in sorted(names)}


def finish_committed(root: Path) -> None:
    """Rewrite stats.json for an episode committed just before a crash."""
    write_atomic(Path(root) / STATS, _stats_json(rebuild_stats(root)) + "\n")
