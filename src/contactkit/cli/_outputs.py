"""Shared output summaries: of the commands that write several files, and of the training commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def print_outputs(files: dict[str, Path], seconds: float, cpu_seconds: float | None = None) -> None:
    """Print where every output went, the report first, the wall (and CPU) time, and how to open the report."""
    order = sorted(files.items(), key=lambda kv: (kv[0] != "report", kv[0] != "results_json", kv[0]))
    cpu = f" ({cpu_seconds:.0f} s of CPU)" if cpu_seconds is not None else ""
    print(f"\nDone in {seconds:.1f} s{cpu}. Outputs:")
    width = max(len(k) for k in files) if files else 0
    for key, path in order:
        print(f"  {key.ljust(width)}  {path}")
    if "report" in files:
        report = files["report"].resolve()
        print(f"\nThe report: {report}\nOpen it in any browser (it works offline), e.g. `xdg-open {report}` on "
              f"Linux, `open {report}` on macOS, or paste {report.as_uri()} into the address bar.")


def print_epoch(record: dict[str, Any]) -> None:
    """One line per finished epoch of the image and keypoint trainers: stage, mean training loss, validation."""
    val = ", ".join(f"{k} {v:.1f}" for k, v in record["val"].items())
    print(f"epoch {record['epoch'] + 1} ({record['stage']}): loss {record['train'].get('total', 0.0):.1f}, "
          f"val {val}, {record['seconds']:.1f} s", flush=True)


def print_run(out: Path, record: dict[str, Any], counter: str = "epoch", **extra: Any) -> None:
    """A training command's closing JSON line: the run folder, its best checkpoint, the last finished ``counter``
    (epoch or step) and ``extra`` facts."""
    print(json.dumps({"run": str(out), "best": str(out / "best.pt"), f"last_{counter}": record.get(counter),
                      **extra}))
