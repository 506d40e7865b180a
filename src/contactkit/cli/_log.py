"""Timestamped progress lines on stderr, shared by the commands that run the pipeline."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def stderr_log() -> Callable[[str], None]:
    """A ``log`` callable printing ``[HH:MM:SS +elapsed] msg`` to stderr (flushed), elapsed since its creation."""
    start = time.monotonic()

    def log(msg: str) -> None:
        elapsed = time.monotonic() - start
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp} +{int(elapsed) // 60:d}:{int(elapsed) % 60:02d}] {msg}", file=sys.stderr, flush=True)

    return log
