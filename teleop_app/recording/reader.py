"""Reading datasets back: episodes as numpy or torch, validation, HDF5 export.

    ds = RecordedDataset("demos/")
    ep = ds.episode(0)             # {"observation.state": (T, 16) float32, ..., "task": str}
    ds.validate()                  # [] when the dataset matches its schema, else the problems

The reader needs only pyarrow; it does not need (or load) lerobot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from teleop_app.recording.dataset import (
    DATA_PATH,
    STATS,
    DatasetError,
    arrow_schema,
    read_info,
    read_tasks,
)
from teleop_app.recording.recorder import pending_logs

#: LeRobot's bookkeeping columns, which are not features a user recorded
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")


class RecordedDataset:
    """A dataset folder in the LeRobot v3.0 layout."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info = read_info(self.root)
        if info is None:
            raise DatasetError(f"{self.root}: no dataset here (meta/info.json is missing)")
        self.info = info
        self.tasks = read_tasks(self.root)
        paths = sorted((self.root / "meta" / "episodes").glob("*/*.parquet"))
        tables = [pq.read_table(p) for p in paths]
        keep = [c for c in (tables[0].column_names if tables else []) if not c.startswith("stats/")]
        rows: list[dict[str, Any]] = []
        for t in tables:
            rows.extend(t.select([c for c in keep if c in t.column_names]).to_pylist())
        # Episodes beyond total_episodes are leftovers of an interrupted commit.
        self.episodes = [r for r in rows if r["episode_index"] < self.num_episodes]

    # -- what is in it --------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.info["features"].items() if k not in BOOKKEEPING}

    def summary(self) -> dict[str, Any]:
        lengths = [int(e["length"]) for e in self.episodes]
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return {
            "path": str(self.root),
            "format": f"LeRobot {self.info['codebase_version']}",
            "robot_type": self.info.get("robot_type"),
            "episodes": self.num_episodes,
            "frames": self.num_frames,
            "fps": self.fps,
            "duration_s": round(self.num_frames / self.fps, 3),
            "episode_lengths": lengths,
            "tasks": self.tasks,
            "features": {k: [v["dtype"], *v["shape"]] for k, v in self.features.items()},
            "bytes": size,
            "unfinished_logs": [p.name for p in pending_logs(self.root)],
        }

    # -- episodes -----------------------------------------------------------------------------
    def _episode_row(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_episodes:
            raise DatasetError(
                f"{self.root}: no episode {index} (episodes 0..{self.num_episodes - 1})"
            )
        return self.episodes[index]

    def episode_table(self, index: int) -> pa.Table:
        e = self._episode_row(index)
        path = self.root / DATA_PATH.format(
            chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]
        )
        t = pq.read_table(path, filters=[("episode_index", "=", index)])
        return t.sort_by("frame_index")

    def episode(self, index: int) -> dict[str, Any]:
        """Episode ``index`` as numpy arrays (T, ...) per feature, string columns as lists,
        and ``task`` (its task string)."""
        t = self.episode_table(index)
        out: dict[str, Any] = {}
        for name in t.column_names:
            col = t.column(name).combine_chunks()
            if pa.types.is_fixed_size_list(col.type):
                width = col.type.list_size
                out[name] = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
            elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                out[name] = col.to_pylist()
            else:
                out[name] = col.to_numpy(zero_copy_only=False)
        task_index = int(out["task_index"][0]) if len(t) else 0
        out["task"] = self.tasks[task_index] if task_index < len(self.tasks) else ""
        return out

    def episode_torch(self, index: int) -> dict[str, Any]:
        """Like :meth:`episode`, numeric columns as torch tensors."""
        import torch

        return {
            k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
            for k, v in self.episode(index).items()
        }

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> list[str]:
        """Problems found (empty when the dataset is consistent with its schema)."""
        problems: list[str] = []
        expected = arrow_schema(self.features)
        if [e["episode_index"] for e in self.episodes] != list(range(self.num_episodes)):
            problems.append("episode rows are not 0..N-1 in order")
        if len(self.tasks) != int(self.info["total_tasks"]):
            problems.append(f"{len(self.tasks)} tasks, info.json says {self.info['total_tasks']}")
        next_index = 0
        for e in self.episodes:
            i = e["episode_index"]
            try:
                t = self.episode_table(i)
            except (OSError, pa.ArrowException) as err:
                problems.append(f"episode {i}: data unreadable ({err})")
                continue
            if t.schema.remove_metadata() != expected:
                got = {f.name: str(f.type) for f in t.schema}
                want = {f.name: str(f.type) for f in expected}
                diff = sorted(set(got.items()) ^ set(want.items()))
                problems.append(f"episode {i}: columns differ from the schema: {diff[:4]}")
                continue
            n = t.num_rows
            if n != e["length"]:
                problems.append(f"episode {i}: {n} frames, its row says {e['length']}")
            idx = t.column("index").to_numpy()
            if e["dataset_from_index"] != next_index or not np.array_equal(
                idx, np.arange(next_index, next_index + n)
            ):
                problems.append(f"episode {i}: global index not contiguous from {next_index}")
            if e["dataset_to_index"] != next_index + n:
                problems.append(f"episode {i}: dataset_to_index is not {next_index + n}")
            frames = t.column("frame_index").to_numpy()
            if not np.array_equal(frames, np.arange(n)):
                problems.append(f"episode {i}: frame_index is not 0..{n - 1}")
            ts = t.column("timestamp").to_numpy()
            if not np.allclose(ts, frames / self.fps, atol=1e-4):
                problems.append(f"episode {i}: timestamps are not frame_index / fps")
            next_index += n
        if next_index != self.num_frames:
            problems.append(f"{next_index} frames in the data, info.json says {self.num_frames}")
        # files LeRobot would read that the dataset does not count (an interrupted save)
        counted = {(e["data/chunk_index"], e["data/file_index"]) for e in self.episodes}
        for path in sorted((self.root / "data").glob("*/*.parquet")):
            key = (int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1]))
            if key not in counted:
                problems.append(f"{path.relative_to(self.root)} belongs to no episode")
                continue
            rows = pq.read_table(path, columns=["episode_index", "task_index"])
            owners = set(rows.column("episode_index").to_pylist())
            if len(owners) != 1:
                problems.append(f"{path.relative_to(self.root)} holds episodes {sorted(owners)}")
            bad_tasks = [
                t for t in set(rows.column("task_index").to_pylist()) if t >= len(self.tasks)
            ]
            if bad_tasks:
                problems.append(f"{path.relative_to(self.root)}: task_index {bad_tasks} unknown")
        n_meta = sum(
            pq.read_metadata(p).num_rows
            for p in (self.root / "meta" / "episodes").glob("*/*.parquet")
        )
        if n_meta != self.num_episodes:
            problems.append(f"{n_meta} episode rows, info.json says {self.num_episodes}")
        stats_path = self.root / STATS
        if self.num_episodes and not stats_path.exists():
            problems.append("meta/stats.json is missing")
        elif stats_path.exists():
            stats = json.loads(stats_path.read_text())
            count = stats.get("index", {}).get("count", [None])[0]
            if count != self.num_frames:
                problems.append(f"stats.json counts {count} frames, not {self.num_frames}")
            for name, feat in self.info["features"].items():
                if feat["dtype"] == "string":
                    continue
                s = stats.get(name)
                if s is None:
                    problems.append(f"stats.json has no {name}")
                    continue
                width = int(np.prod(feat["shape"]))
                for key in ("min", "max", "mean", "std"):
                    v = np.asarray(s.get(key, []), dtype=float)
                    if v.shape != (width,) or not np.all(np.isfinite(v)):
                        problems.append(f"stats.json {name}.{key}: shape {v.shape} or not finite")
        return problems


def export_hdf5(ds: RecordedDataset, out: str | Path) -> Path:
    """Write ``ds`` in the robomimic layout: ``data/demo_N/{actions, rewards, dones,
    obs/<key>}`` with ``num_samples`` per demo and ``total`` / ``env_args`` on ``data``.
    Observation keys are the numeric features other than ``action``, with "." -> "_"."""
    import h5py

    from assets.atomic import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        total = 0
        for i in range(ds.num_episodes):
            ep = ds.episode(i)
            g = data.create_group(f"demo_{i}")
            n = len(ep["index"])
            g.attrs["num_samples"] = n
            g.attrs["task"] = ep["task"]
            g.create_dataset("actions", data=np.asarray(ep["action"], dtype=np.float32))
            g.create_dataset("rewards", data=np.zeros(n, dtype=np.float32))
            dones = np.zeros(n, dtype=np.int64)
            dones[-1] = 1
            g.create_dataset("dones", data=dones)
            obs = g.create_group("obs")
            for name, feat in ds.features.items():
                if name == "action" or feat["dtype"] == "string":
                    continue
                obs.create_dataset(name.replace(".", "_"), data=np.asarray(ep[name]))
            total += n
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(
            {
                "env_name": f"dexteleop/{ds.info.get('robot_type')}",
                "type": "dexteleop",
                "env_kwargs": {"fps": ds.fps, "source": str(ds.root)},
            }
        )
        f.flush()
    return out
