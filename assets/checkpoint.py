"""Checkpoints of the learned components: one envelope, written atomically, checked on load.

DexGen's model, MoDex's models and the RL policies (and PPO's training state) are dicts
written with ``torch.save`` through :func:`assets.atomic.atomic_path` and read with
``torch.load(..., weights_only=True)``: tensors and plain Python values only. The envelope:

- ``"format"``: what the file is, ``dexteleop-<component>/<version>``. MoDex's files from
  before the tag have none (loaded with ``untagged=True``).
- the component's own fields: what rebuilds the model and its weights (DexGen, MoDex:
  ``"config"`` and ``"state"``; RL policies: ``"actor_cfg"``, ``"obs_groups"`` and
  ``"actor_state_dict"``).
- ``"meta"`` (MoDex's untagged files: ``"extra"``): what the trainer knows about the run,
  with, in every file written since, the provenance:

  - ``"commit"``: the git commit of the code that trained it (:func:`git_commit`);
  - ``"data_fingerprint"``: what it was trained on (:func:`fingerprint`);
  - ``"physics"``: the simulation it was trained in (:func:`physics`: hand, timestep,
    substeps, actuator gains).

  Older files may lack any of them; a file whose provenance is malformed is refused.

:func:`load` reads and checks a file, :func:`load_weights` loads its weights into a module;
every refusal is one :class:`CheckpointError` (a ``ValueError``) that says why: no file,
not a readable checkpoint (damaged), not this component's model (format or configuration),
weights that do not fit or are not finite, another hand, another kind, other physics.

torch is imported inside the functions, so importing :mod:`assets` stays light.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assets.atomic import atomic_path

#: Provenance keys in ``meta`` and the types they must have when present.
PROVENANCE = {"commit": str, "data_fingerprint": str, "physics": dict}


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, or for another model, hand or physics."""


@dataclass
class Checkpoint:
    """A checkpoint file's contents: ``record`` is the whole dict, ``meta`` its metadata."""

    path: Path
    format: str | None
    record: dict
    meta: dict
    #: the physics the caller runs (``load(physics=...)``), compared with the file's
    physics_running: dict | None = None

    @property
    def physics_differences(self) -> list[str]:
        """How the physics it was trained on differs from the caller's
        (:func:`assets.physics.differences`)."""
        from assets.physics import differences

        return differences(self.meta.get("physics") or {}, self.physics_running or {})

    @property
    def physics_note(self) -> str:
        """One line for a controller's availability reason or info
        (:func:`assets.physics.note`); empty when the physics agrees or is not described."""
        from assets.physics import note

        return note(self.meta.get("physics"), self.physics_running)

    def __getitem__(self, key: str) -> Any:
        return self.record[key]


def git_commit() -> str:
    """The git commit of this checkout ("" outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def fingerprint(*parts: Any) -> str:
    """A sha256 of training data: arrays by dtype, shape and bytes; dicts, lists and other
    values by their canonical JSON; paths by their file contents (a folder: its files')."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, np.ndarray):
            h.update(f"ndarray {x.dtype.str} {x.shape}".encode())
            h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            h.update(b"dict")
            for k in sorted(x, key=str):
                feed(str(k))
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"list {len(x)}".encode())
            for v in x:
                feed(v)
        elif isinstance(x, Path):
            files = sorted(p for p in x.rglob("*") if p.is_file()) if x.is_dir() else [x]
            for p in files:
                feed(str(p.relative_to(x)) if x.is_dir() else p.name)
                h.update(p.read_bytes())
        else:
            h.update(json.dumps(x, sort_keys=True, default=str).encode())

    for part in parts:
        feed(part)
    return "sha256:" + h.hexdigest()


def physics(hand: str, **values: Any) -> dict[str, Any]:
    """The description of the simulation a model was trained in (what the trainer knows):
    the hand and any of ``name`` (the physics' name, ``assets.physics``), ``timestep_s``,
    ``substeps``, ``integrator``, ``cone`` and the per-joint ``armature``, ``damping``,
    ``frictionloss``, ``torque_limit``, ``kp``, ``kv``. None values are left out."""
    out: dict[str, Any] = {"hand": hand}
    for key, value in values.items():
        if value is None:
            continue
        if key == "substeps":
            out[key] = int(value)
        elif isinstance(value, str):
            out[key] = value
        elif np.ndim(value) == 0:
            out[key] = float(value)
        else:
            out[key] = [float(g) for g in np.ravel(value)]
    return out


def save(path: str | Path, record: dict, *, format: str | None, meta: dict | None = None) -> Path:
    """Write ``record`` with its ``format`` tag and ``meta`` (the commit added if missing)
    atomically; tensors go to the CPU, ``meta`` becomes plain JSON types (so that a
    weights-only load accepts it). Returns ``path``."""
    import torch

    meta = {"commit": git_commit(), **(meta or {})}
    out: dict[str, Any] = {} if format is None else {"format": format}
    for key, value in record.items():
        out[key] = _to_cpu(value)
    out["meta"] = json.loads(json.dumps(meta, default=str))
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(out, tmp)
    return path


def load(
    path: str | Path,
    *,
    format: str,
    what: str,
    untagged: bool = False,
    physics: dict | None = None,
    strict_physics: bool = True,
) -> Checkpoint:
    """Read the ``what`` checkpoint (e.g. "DexGen") at ``path``, tagged ``format``.

    ``untagged``: a file without a format tag is taken as this format (files from before
    the tag). ``physics``: what the caller runs (see :func:`physics`); the file's physics is
    compared with it key by key (:func:`check_physics`). A model of another hand is always
    refused; other differences are refused when ``strict_physics`` (resuming a training
    run), else left in ``physics_differences`` / ``physics_note`` for the caller to report
    (a controller loaded on other physics runs and says so). Raises CheckpointError.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no {what} checkpoint at {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise CheckpointError(
            f"{path}: damaged, not a readable checkpoint ({type(e).__name__}: {e})"
        ) from None
    tag = raw.get("format") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or not (tag == format or (tag is None and untagged)):
        raise CheckpointError(f"{path}: not a {what} model (format {tag!r}, not {format!r})")
    meta = raw.get("meta", raw.get("extra", {}))
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a {what} model (its metadata is not a dict)")
    for key, kind in PROVENANCE.items():
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}: damaged metadata: {key} is not a {kind.__name__}")
    ck = Checkpoint(path, tag, raw, meta, physics)
    if physics is not None:
        check_physics(ck, physics, what, strict=strict_physics)
    return ck


def check_hand(ck: Checkpoint, trained: str, hand: str | None, what: str) -> None:
    """Refuse a model of another hand (``hand`` None: any)."""
    if hand is not None and trained != hand:
        raise CheckpointError(f"{ck.path}: a {what} model of {trained}, not {hand}")


def check_kind(ck: Checkpoint, kind: str, wanted: str | None, what: str) -> None:
    """Refuse a model of another kind (``wanted`` None: any)."""
    if wanted is not None and kind != wanted:
        raise CheckpointError(f"{ck.path}: a {what} {kind} model, not {wanted}")


def check_physics(ck: Checkpoint, expected: dict, what: str, *, strict: bool = True) -> list[str]:
    """Compare the physics ``ck`` was trained on with ``expected`` (every key both describe;
    numbers to a relative 1e-6) and return the differences. Another hand is always refused;
    other differences are refused when ``strict``. A file without a physics description
    passes."""
    from assets.physics import differences

    trained = ck.meta.get("physics")
    if not trained:
        return []
    diffs = differences(trained, expected)
    hand = [d for d in diffs if d.startswith("hand ")]
    if hand or (strict and diffs):
        raise CheckpointError(
            f"{ck.path}: a {what} model trained on other physics ({'; '.join(hand or diffs)})"
        )
    return diffs


def load_weights(module: Any, state: Any, ck: Checkpoint) -> None:
    """Load ``state`` into the torch ``module``: CheckpointError if the weights do not fit
    its configuration or any floating-point value is not finite."""
    try:
        module.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f"{ck.path}: weights do not fit the configuration: {e}") from None
    for name, t in module.state_dict().items():
        if t.is_floating_point() and not bool(t.isfinite().all()):
            raise CheckpointError(f"{ck.path}: non-finite values in {name}")


def restore(ck: Checkpoint, build: Any, what: str) -> Any:
    """``build()`` the torch module the checkpoint's configuration describes, load its
    weights (:func:`load_weights`) and put it in eval mode; a configuration that does not
    build is a :func:`config_error`."""
    try:
        module = build()
    except (TypeError, ValueError, RuntimeError) as e:
        raise config_error(ck, what, e) from None
    load_weights(module, ck.record.get("state"), ck)
    module.eval()
    return module


def save_module(path: str | Path, module: Any, config: Any, *, format: str, meta: dict) -> Path:
    """A torch module with the dataclass ``config`` it is built from (``{config, state}``),
    as :func:`load_module` reads it back."""
    import dataclasses

    record = {"config": dataclasses.asdict(config), "state": module.state_dict()}
    return save(path, record, format=format, meta=meta)


def load_module(
    path: str | Path,
    *,
    format: str,
    what: str,
    config_cls: Any,
    build: Any,
    hand: str | None = None,
) -> tuple[Checkpoint, Any, Any]:
    """Read a :func:`save_module` file: (checkpoint, config, module in eval mode). Refuses
    another hand; a config that does not build is a :func:`config_error`."""
    ck = load(path, format=format, what=what)
    check_hand(ck, ck.meta.get("hand", hand), hand, what)
    try:
        cfg = config_cls(**ck["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise config_error(ck, what, e) from None
    return ck, cfg, restore(ck, lambda: build(cfg), what)


def config_error(ck: Checkpoint, what: str, e: BaseException) -> CheckpointError:
    """The error for a configuration that does not build the model."""
    return CheckpointError(f"{ck.path}: not a {what} model ({type(e).__name__}: {e})")


def _to_cpu(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value
