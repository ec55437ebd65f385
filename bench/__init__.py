"""Benchmarks: `python -m bench` prints the tables recorded in BENCHMARKS.md."""

import json
from pathlib import Path
from typing import Any


def write_json(path: str | Path, obj: Any) -> None:
    """Write a benchmark's records to ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))
