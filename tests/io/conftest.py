"""Fixtures for the io tests: an isolated on-disk cache per test session."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "contactkit-cache"
    monkeypatch.setenv("CONTACTKIT_CACHE", str(root))
    yield root
