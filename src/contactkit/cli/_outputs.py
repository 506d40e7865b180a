"""Shared output summary of the commands that write several files."""

from __future__ import annotations

from pathlib import Path


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
