"""Metric tests write caches into a temporary directory."""

import pytest


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTACTKIT_CACHE", str(tmp_path / "cache"))
