"""Session-wide fixtures: one local Ray of 2 CPUs shared by every Ray test (starting Ray costs seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 CPUs, started once; contactkit's Ray code finds it running and leaves it so."""
    ray = pytest.importorskip("ray", reason="Ray (contactkit[ray]) is not installed")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
