"""Progress of a long run as timestamped lines: stage messages, step counts with smoothed rates, a heartbeat.

The pipeline never prints: it gives :class:`ProgressLog` a ``log`` callable (the CLI prints each line to stderr
with the time of day). Three guarantees a user watching the terminal relies on:

- every stage starts with a line (:meth:`ProgressLog.stage`) and ends with one giving its duration;
- a stage with counted steps (optimiser steps, grasps) reports ``done/total``, the rate as an exponential moving
  average (so one slow step does not make the rate jump) and the time left, at most every ``interval_s``;
- a heartbeat thread writes ``... still <stage> (N s)`` whenever nothing was logged for ``heartbeat_s``, so no
  stretch of the output is silent for longer than that, even inside one long call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

Log = Callable[[str], None]


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min`` (whole seconds)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class SmoothedRate:
    """Exponential moving average of a rate (units per second) from ``(done, time)`` updates.

    Args:
        alpha: weight of the newest interval's rate in (0, 1]; 1 is the last interval's rate alone.
    """

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha: expected a value in (0, 1], got {alpha}")
        self.alpha = alpha
        self.rate: float | None = None
        self._last: tuple[float, float] | None = None

    def update(self, done: float, now: float) -> float | None:
        """Record that ``done`` units were finished by time ``now`` (seconds); returns the smoothed rate."""
        if self._last is not None:
            d_done, d_t = done - self._last[0], now - self._last[1]
            if d_t > 0 and d_done >= 0:
                r = d_done / d_t
                self.rate = r if self.rate is None else self.alpha * r + (1 - self.alpha) * self.rate
        self._last = (done, now)
        return self.rate


class StageEnd:
    """How a stage ended: ``outcome`` ``None`` (done) or a short word for the end line."""

    def __init__(self) -> None:
        self.outcome: str | None = None


class ProgressLog:
    """Timestamped progress lines for a pipeline run (see the module docstring).

    Args:
        log: receives each line (without a timestamp; the caller adds one when printing).
        interval_s: at most one step report per this many seconds within a stage.
        heartbeat_s: after this many seconds without a line, the heartbeat writes one.
        clock: time source in seconds (tests pass a fake one).

    Use as a context manager to run the heartbeat thread.
    """

    def __init__(self, log: Log, *, interval_s: float = 4.0, heartbeat_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_line = clock()
        self._stage = "starting"
        self._stage_start = self._last_line
        self._last_step_report = -float("inf")
        self._rate = SmoothedRate()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ProgressLog:
        self._thread = threading.Thread(target=self._beat, name="contactkit-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def line(self, msg: str) -> None:
        """Write one line."""
        with self._lock:
            self._last_line = self._clock()
            self._log(msg)

    @contextmanager
    def stage(self, name: str) -> Iterator[StageEnd]:
        """A named stage: a line when it starts and one when it ends, ``done in <duration>`` unless the body
        sets the yielded :class:`StageEnd`'s ``outcome`` (e.g. ``not available``)."""
        with self._lock:
            self._stage = name
            self._stage_start = self._clock()
            self._last_step_report = -float("inf")
            self._rate = SmoothedRate()
        self.line(name)
        end = StageEnd()
        yield end
        took = format_duration(self._clock() - self._stage_start)
        self.line(f"{name}: {end.outcome} after {took}" if end.outcome else f"{name}: done in {took}")

    def step(self, done: int, total: int, unit: str = "steps") -> None:
        """Report ``done`` of ``total`` units of the current stage (rate-limited to one line per
        ``interval_s``; the last step is always reported)."""
        now = self._clock()
        rate = self._rate.update(done, now)
        if done < total and now - self._last_step_report < self.interval_s:
            return
        self._last_step_report = now
        msg = f"  {self._stage}: {done}/{total} {unit}"
        if rate is not None and rate > 0:
            msg += f", {_rate_text(rate, unit)}"
            if done < total:
                msg += f", about {format_duration((total - done) / rate)} left"
        self.line(msg)

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat_s / 4)):
            now = self._clock()
            with self._lock:
                quiet = now - self._last_line
                stage, started = self._stage, self._stage_start
            if quiet >= self.heartbeat_s:
                self.line(f"  ... still {stage} ({format_duration(now - started)} so far)")


def _rate_text(rate: float, unit: str) -> str:
    """``12.3 steps/s`` or, below one per second, ``4.2 s/step`` (the singular of ``unit``)."""
    if rate >= 1.0:
        return f"{rate:.3g} {unit}/s"
    single = unit[:-1] if unit.endswith("s") else unit
    return f"{1.0 / rate:.3g} s/{single}"
