"""contactkit.report: the demo and benchmark pipeline, and the self-contained visual report.

- :mod:`~contactkit.report.pipeline`: :func:`run_demo`, :func:`run_bench`, :func:`run_pipeline`,
  :func:`render_grasp_file` (``contactkit demo / bench / view``);
- :mod:`~contactkit.report.html`: :func:`render_report` — one offline HTML file with a WebGL 3D view per sample;
- :mod:`~contactkit.report.scene`: report samples from grasp sets (contact maps, penetrating vertices);
- :mod:`~contactkit.report.results` / :mod:`~contactkit.report.tables`: ``results.json`` and its tables;
- :mod:`~contactkit.report.plots` and :mod:`~contactkit.report.snapshot`: SVG plots and PNG stills;
- :mod:`~contactkit.report.colors`: one colour per row, shared by the 3D view, tables and plots;
- :mod:`~contactkit.report.progress`: timestamped progress lines with smoothed rates and a heartbeat.

See ``docs/report.md``.
"""

from contactkit.report.data import MeshLayer, ReportSample
from contactkit.report.html import render_report
from contactkit.report.results import MethodResult, MetricSummary, Results

__all__ = ["MeshLayer", "MethodResult", "MetricSummary", "ReportSample", "Results", "render_report"]
