"""Fixtures of the report tests: constructed samples and results, and a headless-Chromium harness."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import Browser, find_chromium, make_results, make_samples

from contactkit.report.data import ReportSample
from contactkit.report.results import Results


@pytest.fixture
def samples() -> list[ReportSample]:
    return make_samples()


@pytest.fixture
def results() -> Results:
    return make_results()


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
    return Browser(exe, tmp_path)
