"""The results of a demo or benchmark run: one row per method (or per baseline), one summary per metric.

:class:`Results` is the single source of every number the run reports: ``results.json`` is its
:meth:`Results.to_json`, and the printed, markdown and CSV tables (:mod:`contactkit.report.tables`) and the
report's tables are formatted from the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.errors import ContactkitError
from contactkit.io.atomic import json_number

RESULTS_FORMAT = "contactkit.results"
RESULTS_VERSION = 1

#: Appended to the label of every row whose refinement used the ground truth (``targets="oracle"``): such a row
#: is an upper bound, not a method a user without ground truth can run.
ORACLE_SUFFIX = " (oracle)"


def oracle_label(method: str) -> str:
    """The row label of ``method`` refined toward the ground truth: ``"contactopt (oracle)"``."""
    return method + ORACLE_SUFFIX


class ResultsFileError(ContactkitError):
    """A results file is missing, malformed, or of an unknown format or version."""


@dataclass
class MetricSummary:
    """Summary of one metric over the grasps of one row.

    Attributes:
        mean: mean over the finite per-sample values (``nan`` when there are none).
        std: population standard deviation over the same values.
        unit: unit string ("mm", "cm3", "%", ...).
        values: per-sample values (``nan`` where a sample could not be measured).
    """

    mean: float
    std: float
    unit: str
    values: list[float] = field(default_factory=list)

    @classmethod
    def from_values(cls, values: Any, unit: str) -> MetricSummary:
        """Summarise per-sample values (array-like of floats; non-finite values are left out of mean/std)."""
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        finite = arr[np.isfinite(arr)]
        mean = float(finite.mean()) if finite.size else float("nan")
        std = float(finite.std()) if finite.size else float("nan")
        return cls(mean=mean, std=std, unit=unit, values=[float(v) for v in arr])

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": json_number(self.mean),
            "std": json_number(self.std),
            "unit": self.unit,
            "values": [json_number(v) for v in self.values],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MetricSummary:
        def f(x: Any) -> float:
            return float("nan") if x is None else float(x)

        return cls(mean=f(d.get("mean")), std=f(d.get("std")), unit=str(d.get("unit", "")),
                   values=[f(v) for v in d.get("values", [])])


@dataclass
class MethodResult:
    """One row of the results table.

    Attributes:
        method: row label: a refinement method name (``" (oracle)"`` appended when it used the ground truth,
            :func:`oracle_label`), or a baseline (``perturbed``: before refinement; ``ground truth``).
        metrics: metric name -> summary.
        time_per_grasp_s: mean wall time of the method per grasp in seconds (``None`` for baselines).
        num_grasps: number of grasps measured.
        error: why the method is not available (then ``metrics`` is empty), else ``None``.
        targets: where the refinement's targets came from, as the refined grasp set records it (e.g.
            ``learned (DeepContactEstimator)``, ``oracle (reference grasps)``); ``None`` for baselines.
        oracle: whether the row used the ground truth (an upper bound).
    """

    method: str
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    time_per_grasp_s: float | None = None
    num_grasps: int = 0
    error: str | None = None
    targets: str | None = None
    oracle: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "num_grasps": self.num_grasps,
            "time_per_grasp_s": json_number(self.time_per_grasp_s),
            "error": self.error,
            "targets": self.targets,
            "oracle": self.oracle,
            "metrics": {k: v.to_json() for k, v in self.metrics.items()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MethodResult:
        t = d.get("time_per_grasp_s")
        return cls(
            method=str(d["method"]),
            metrics={k: MetricSummary.from_json(v) for k, v in d.get("metrics", {}).items()},
            time_per_grasp_s=None if t is None else float(t),
            num_grasps=int(d.get("num_grasps", 0)),
            error=d.get("error"),
            targets=d.get("targets"),
            oracle=bool(d.get("oracle", False)),
        )


@dataclass
class Results:
    """All numbers of a run.

    Attributes:
        kind: ``demo``, ``bench`` or ``view``.
        metric_names: the metric columns, in table order.
        units: metric name -> unit.
        rows: one :class:`MethodResult` per row.
        config: how the run was configured (objects, sizes, protocol, seeds, methods).
        environment: versions and device.
        timings_s: wall time of each pipeline stage in seconds.
    """

    kind: str
    metric_names: list[str]
    units: dict[str, str]
    rows: list[MethodResult]
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def row(self, method: str) -> MethodResult:
        """The row of ``method``; raises :class:`ResultsFileError` when absent."""
        for r in self.rows:
            if r.method == method:
                return r
        raise ResultsFileError(f"method: no row named {method!r}; rows are {[r.method for r in self.rows]}")

    def blocks(self) -> list[tuple[str, list[MethodResult]]]:
        """The rows as the tables show them: ``("in the wild", ...)`` first (baselines and methods that used no
        ground truth), then ``("oracle", ...)`` (the ``perturbed`` baseline again and every oracle row) when
        there is any oracle row."""
        wild = [r for r in self.rows if not r.oracle]
        oracle = [r for r in self.rows if r.oracle]
        out = [("in the wild", wild)]
        if oracle:
            base = [r for r in self.rows if r.method == "perturbed"]
            out.append(("oracle", base + oracle))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RESULTS_FORMAT,
            "version": RESULTS_VERSION,
            "kind": self.kind,
            "metric_names": list(self.metric_names),
            "units": dict(self.units),
            "config": self.config,
            "environment": self.environment,
            "timings_s": {k: float(v) for k, v in self.timings_s.items()},
            "rows": [r.to_json() for r in self.rows],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Results:
        if d.get("format") != RESULTS_FORMAT:
            raise ResultsFileError(f"format: expected {RESULTS_FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != RESULTS_VERSION:
            raise ResultsFileError(f"version: expected {RESULTS_VERSION}, got {d.get('version')!r}")
        return cls(
            kind=str(d.get("kind", "")),
            metric_names=[str(m) for m in d.get("metric_names", [])],
            units={str(k): str(v) for k, v in d.get("units", {}).items()},
            rows=[MethodResult.from_json(r) for r in d.get("rows", [])],
            config=dict(d.get("config", {})),
            environment=dict(d.get("environment", {})),
            timings_s={str(k): float(v) for k, v in d.get("timings_s", {}).items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a ``results.json`` file."""
        import json

        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ResultsFileError(f"path: cannot read results file {p}: {err}") from err
        return cls.from_json(d)
