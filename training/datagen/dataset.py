"""The Anygrasp dataset on disk: chunked ``.npy`` files that training memory-maps.

Layout::

    DATASET/
      manifest.json               config, commit, counts, seconds, chunk list
      chunk_00000/                one folder per chunk of whole episode segments
        q.npy          (R, n)     joint positions, rad (true state at the step)
        target.npy     (R, n)     joint targets sent at the step (the action), rad
        keypoints.npy  (R, 8, 3)  the 8 keypoints in the palm frame, m
        object.npy     (R, 7)     object position (m) and orientation (wxyz), palm frame
        gravity.npy    (R, 3)     unit gravity direction in the palm frame (the wrist)
        style.npy      (R,)       style index, ``training.envs.base.STYLES`` order
        mode.npy       (R,)       task mode (0 anygrasp, 1 free finger, 2 rotate; -1 none:
                                  not a task, e.g. chaos-box dynamics data)
        axis.npy       (R, 3)     optional: the commanded rotation axis, palm frame
        effort.npy     (R, n)     optional: the joint torques the actuators applied, N m
                                  (read with q; DexNDM's dynamics models may predict it)
        segments.npy   (S, 2)     start row and length of each episode segment

Rows are control steps (20 Hz). A *transition* at row t of a segment has a full
proprioception history (rows t-H+1..t) and T future keypoint rows (t+1..t+T):
:class:`DatasetReader` serves them without loading the data set: every chunk array is
opened with ``mmap_mode="r"`` and gathered by index.

Chunks are written to a temporary folder and renamed when complete, and the manifest is
rewritten (atomically) after each chunk, so an interrupted run keeps every finished chunk
and a later run appends to it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assets.atomic import atomic_path, write_atomic
from controllers.dexgen import MODES as DEXGEN_MODES

FIELDS = ("q", "target", "keypoints", "object", "gravity", "style", "mode")
#: Fields a dataset may have: in every segment of it or in none.
OPTIONAL_FIELDS = ("axis", "effort")
DTYPES = {"style": np.int8, "mode": np.int8}
#: ``mode`` of rows that belong to no task (chaos-box dynamics data).
NO_MODE = -1
#: A row's task mode, as the index DexGen's one-hot uses (``controllers.dexgen.MODES``).
MODES = {name: i for i, name in enumerate(DEXGEN_MODES)}
FORMAT = "dexteleop-anygrasp/1"


class DatasetWriter:
    """Appends episode segments and flushes them as chunks of about ``chunk_rows`` rows."""

    def __init__(
        self, root: str | Path, *, chunk_rows: int = 65536, meta: dict | None = None
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.chunk_rows = chunk_rows
        self.manifest = _read_manifest(self.root) or {
            "format": FORMAT,
            "chunks": [],
            "rows": 0,
            "segments": 0,
            "meta": meta or {},
        }
        if meta:
            self.manifest["meta"].update(meta)
        # a chunk folder left by a crash before its rename, or renamed but not yet in the
        # manifest, is not part of the data set: drop it (its counts were never recorded)
        listed = {c["name"] for c in self.manifest["chunks"]}
        for p in [*self.root.glob("chunk_*"), *self.root.glob(".chunk_*.tmp")]:
            if p.name not in listed:
                shutil.rmtree(p, ignore_errors=True)
        self._buf: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS}
        self._lens: list[int] = []

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"]) + sum(self._lens)

    def add(self, segment: dict[str, np.ndarray]) -> None:
        """One episode segment: every field with the same first dimension (the optional
        fields in all of a dataset's segments or in none)."""
        n = len(segment["q"])
        extra = tuple(f for f in OPTIONAL_FIELDS if f in segment)
        had = self.manifest.setdefault("optional_fields", list(extra))
        if self.rows or self._lens:
            if sorted(had) != sorted(extra):
                raise ValueError(f"segment fields {extra} differ from the dataset's {tuple(had)}")
        else:
            self.manifest["optional_fields"] = list(extra)
        for f in FIELDS + extra:
            a = np.asarray(segment[f])
            if len(a) != n:
                raise ValueError(f"field {f} has {len(a)} rows, q has {n}")
            self._buf.setdefault(f, []).append(a.astype(DTYPES.get(f, np.float32)))
        self._lens.append(n)
        if sum(self._lens) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._lens:
            return
        idx = len(self.manifest["chunks"])
        name = f"chunk_{idx:05d}"
        lens = np.array(self._lens, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        with atomic_path(self.root / name, folder=True) as tmp:
            tmp.mkdir()
            for f in FIELDS + tuple(self.manifest.get("optional_fields", ())):
                np.save(tmp / f"{f}.npy", np.concatenate(self._buf[f]))
            np.save(tmp / "segments.npy", np.stack([starts, lens], axis=1))
        self.manifest["chunks"].append(
            {"name": name, "rows": int(lens.sum()), "segments": len(lens)}
        )
        self.manifest["rows"] += int(lens.sum())
        self.manifest["segments"] += len(lens)
        self._buf = {f: [] for f in FIELDS}
        self._lens = []
        self.write_manifest()

    def write_manifest(self, **extra: object) -> None:
        self.manifest.update(extra)
        write_atomic(self.root / "manifest.json", json.dumps(self.manifest, indent=2))

    def close(self, **extra: object) -> None:
        self.flush()
        self.write_manifest(**extra)


def read_manifest(root: str | Path) -> dict | None:
    """A dataset's manifest (None when there is none); ValueError when unreadable."""
    return _read_manifest(Path(root))


def require_optional_field(root: str | Path, field: str, hint: str) -> None:
    """ValueError naming the dataset and ``hint`` unless its segments carry the optional
    ``field`` (:data:`OPTIONAL_FIELDS`)."""
    if field not in (read_manifest(root) or {}).get("optional_fields", []):
        raise ValueError(f"{root}: no {field} in this dataset; {hint}")


def _read_manifest(root: Path) -> dict | None:
    p = root / "manifest.json"
    if not p.exists():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"dataset manifest {p} is unreadable: {e}") from e
    if m.get("format") != FORMAT:
        raise ValueError(f"{p} is not a {FORMAT} dataset")
    return m


@dataclass
class Batch:
    """Transitions gathered by :meth:`DatasetReader.get` (B = batch, H = history,
    T = future steps, n = joints, K = 8 keypoints).

    Attributes:
        keypoints: (B, H, K, 3) keypoints of the history steps (last = now).
        q: (B, H, n) joint positions. prev_target: (B, H, n) the target in force at each
            history step (sent the step before). control_error: (B, H, n) prev_target - q.
        future_keypoints: (B, T, K, 3) keypoints of the next T steps.
        action: (B, n) the joint target sent now. gravity: (B, 3). mode: (B,). style: (B,).
    """

    keypoints: np.ndarray
    q: np.ndarray
    prev_target: np.ndarray
    control_error: np.ndarray
    future_keypoints: np.ndarray
    action: np.ndarray
    gravity: np.ndarray
    mode: np.ndarray
    style: np.ndarray


def _open_chunk(d: Path, fields: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A chunk's ``fields`` memory-mapped and its segment table; ValueError if unreadable."""
    try:
        arrs = {f: np.load(d / f"{f}.npy", mmap_mode="r") for f in fields}
        return arrs, np.load(d / "segments.npy")
    except (OSError, ValueError) as e:
        raise ValueError(f"dataset chunk {d} is unreadable: {e}") from e


def iter_segments(
    root: str | Path, fields: Sequence[str] = ("q", "target")
) -> Iterator[dict[str, np.ndarray]]:
    """Every episode segment of a dataset, in order, as arrays of ``fields`` (loaded)."""
    root = Path(root)
    m = _read_manifest(root)
    if m is None:
        raise FileNotFoundError(f"no dataset at {root} (manifest.json missing)")
    for c in m["chunks"]:
        arrs, seg = _open_chunk(root / c["name"], fields)
        for s0, n in seg:
            yield {f: np.array(a[s0 : s0 + n]) for f, a in arrs.items()}


class DatasetReader:
    """Memory-mapped access to transitions of one or more datasets written by
    :class:`DatasetWriter` (several folders read as one: e.g. Anygrasp and free-finger
    data for one model; ``parts`` gives each folder's range of transition indices).

    ``held_only``: read only the episodes that kept the object to the end. A segment that
    ran the whole episode (``episode_s * rate_hz`` rows of the manifest) ended at the
    timeout; shorter ones ended in a drop and lost only their last 2 s, so with exploration,
    where most episodes end in a drop, the steps before those 2 s still drift toward it.
    """

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        *,
        history: int = 4,
        future: int = 2,
        held_only: bool = False,
    ) -> None:
        roots = [Path(root)] if isinstance(root, (str, Path)) else [Path(r) for r in root]
        if not roots:
            raise ValueError("no dataset folder given")
        if history < 1 or future < 1:
            raise ValueError("history and future must be >= 1")
        self.roots, self.history, self.future = roots, history, future
        self.manifests: list[dict] = []
        self.chunks: list[dict[str, np.ndarray]] = []
        self.parts: list[tuple[int, int]] = []
        starts: list[np.ndarray] = []
        n_index = 0
        for r in roots:
            m = _read_manifest(r)
            if m is None:
                raise FileNotFoundError(f"no dataset at {r} (manifest.json missing)")
            self.manifests.append(m)
            lo_part = n_index
            full = None
            if held_only:
                meta = m.get("meta", {})
                try:
                    full = round(meta["env"]["episode_s"] * meta["rate_hz"])
                except (KeyError, TypeError):
                    raise ValueError(
                        f"{r}: held_only needs the episode length in the manifest "
                        "(meta.env.episode_s and meta.rate_hz)"
                    ) from None
            for c in m["chunks"]:
                arrs, seg = _open_chunk(r / c["name"], FIELDS)
                ci = len(self.chunks)
                self.chunks.append(arrs)
                # valid rows: history before (the first target is the one before row 0, so
                # a row needs `history` rows up to it) and `future` rows after it
                for s0, n in seg:
                    if full is not None and n < full:
                        continue
                    lo, hi = s0 + history, s0 + n - future  # rows [lo, hi)
                    if hi > lo:
                        rows = np.arange(lo, hi)
                        starts.append(np.stack([np.full(rows.size, ci), rows], axis=1))
                        n_index += rows.size
            self.parts.append((lo_part, n_index))
        hands = {m.get("meta", {}).get("hand") for m in self.manifests} - {None}
        if len(hands) > 1:
            raise ValueError(f"datasets of different hands read together: {sorted(hands)}")
        self.manifest = self.manifests[0]
        self.rows = sum(int(m["rows"]) for m in self.manifests)
        self.index = np.concatenate(starts) if starts else np.zeros((0, 2), dtype=np.int64)

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, validation) transition indices: the last ``val_fraction`` of every
        folder validates (whole episodes at the end, not rows mixed into training's)."""
        train, val = [], []
        for lo, hi in self.parts:
            n_val = max(1, int((hi - lo) * val_fraction)) if hi > lo else 0
            train.append(np.arange(lo, hi - n_val))
            val.append(np.arange(hi - n_val, hi))
        return np.concatenate(train), np.concatenate(val)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def get(self, idx: np.ndarray) -> Batch:
        """Gather transitions ``idx`` (any order); reads only the rows it needs."""
        idx = np.asarray(idx)
        H, T = self.history, self.future
        out: dict[str, list] = {k: [] for k in Batch.__dataclass_fields__}
        order = []
        for ci in np.unique(self.index[idx, 0]):
            sel = np.flatnonzero(self.index[idx, 0] == ci)
            rows = self.index[idx[sel], 1]
            c = self.chunks[ci]
            hist = rows[:, None] + np.arange(-H + 1, 1)  # (b, H)
            fut = rows[:, None] + np.arange(1, T + 1)
            q = np.asarray(c["q"][hist.ravel()]).reshape(len(rows), H, -1)
            prev_t = np.asarray(c["target"][(hist - 1).ravel()]).reshape(len(rows), H, -1)
            out["keypoints"].append(
                np.asarray(c["keypoints"][hist.ravel()]).reshape(len(rows), H, 8, 3)
            )
            out["q"].append(q)
            out["prev_target"].append(prev_t)
            out["control_error"].append(prev_t - q)
            out["future_keypoints"].append(
                np.asarray(c["keypoints"][fut.ravel()]).reshape(len(rows), T, 8, 3)
            )
            out["action"].append(np.asarray(c["target"][rows]))
            out["gravity"].append(np.asarray(c["gravity"][rows]))
            out["mode"].append(np.asarray(c["mode"][rows]))
            out["style"].append(np.asarray(c["style"][rows]))
            order.append(sel)
        inv = np.argsort(np.concatenate(order)) if order else np.zeros(0, int)
        return Batch(**{k: np.concatenate(v)[inv] for k, v in out.items()})
