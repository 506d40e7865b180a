"""The JSON-lines training log (``RUN/log.jsonl``) cut back to what a resumed checkpoint confirms."""

from __future__ import annotations

import json
from pathlib import Path

from contactkit.io.atomic import atomic_write_bytes

__all__ = ["truncate_log"]


def truncate_log(path: Path, key: str, limit: int) -> None:
    """Keep only the records of ``path`` whose integer ``key`` (e.g. ``"epoch"``, ``"step"``) is below ``limit``;
    rewrite the file atomically. A half-written line (a run killed mid-append) and records without an integer
    ``key`` are dropped, not fatal. A missing file is left missing."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get(key), int) and record[key] < limit:
            kept.append(line)
    atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())
