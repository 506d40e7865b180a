"""Shared fixtures: one local Ray of 2 CPUs for every Ray test (starting Ray costs seconds), and one torch thread
for the serial runs those tests compare with."""

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


@pytest.fixture
def one_torch_thread():
    """torch at one thread for the test (restored after): contactkit's Ray tasks run single-threaded, and with more
    threads some CPUs' matrix-product kernels round differently (seen with MKL on a 2-core Xeon, session 10), so a
    serial run equals the Ray run only at the tasks' thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
