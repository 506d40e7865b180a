"""Shared output summary of the commands that write several files."""

from __future__ import annotations

from pathlib import Path


def print_outputs(files: dict[str, Path], seconds: float) -> None:
    """Print where every output went, the report first, and the total wall time."""
    order = sorted(files.items(), key=lambda kv: (kv[0] != "report", kv[0] != "results_json", kv[0]))
    print(f"\nDone in {seconds:.1f} s. Outputs:")
    width = max(len(k) for k in files) if files else 0
    for key, path in order:
        print(f"  {key.ljust(width)}  {path}")
    if "report" in files:
        print(f"\nOpen {files['report'].resolve().as_uri()} in a browser (works offline).")
