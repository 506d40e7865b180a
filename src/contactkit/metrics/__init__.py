"""contactkit.metrics: one documented definition per hand-object metric, and the papers' variants by name.

Pure functions live in :mod:`~contactkit.metrics.pose`, :mod:`~contactkit.metrics.penetration`,
:mod:`~contactkit.metrics.intersection`, :mod:`~contactkit.metrics.contact`,
:mod:`~contactkit.metrics.simulation` and :mod:`~contactkit.metrics.quality`; the names, units and variants are
in :mod:`~contactkit.metrics.registry`; :func:`evaluate` runs them over a grasp set. See ``docs/metrics.md``.
"""

from __future__ import annotations

# Imported eagerly so that ``contactkit.metrics.evaluate`` is the function (it shadows the submodule name).
from contactkit.metrics.evaluate import Evaluation, MetricResult, PosedGrasps, evaluate, evaluate_posed
from contactkit.metrics.registry import ALL_METRICS, DEFAULT_METRICS, METRICS, MetricSpec

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "METRICS",
    "Evaluation",
    "MetricResult",
    "MetricSpec",
    "PosedGrasps",
    "evaluate",
    "evaluate_posed",
]
