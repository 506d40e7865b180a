"""Scale-out on Ray: one way to start or join Ray and to run independent jobs as Ray tasks.

``--ray`` (``ray=""``) starts a local Ray inside this process with ``workers`` CPUs (one machine, nothing to set
up); ``--ray HOST:PORT`` joins a running cluster (``ray start --head`` on one machine, ``ray start --address
HOST:PORT`` on the others; see ``docs/dataset.md``). When Ray is already initialised in this process (a test
session, a notebook), it is used as it is and left running. Each task runs single-threaded torch, so a task's
result does not depend on how many tasks share a machine; jobs return their results to this process, so no
shared filesystem is needed. Ray is optional: ``pip install 'contactkit[ray]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from contactkit.errors import ContactkitError

__all__ = ["import_ray", "ray_map", "ray_session"]

T = TypeVar("T")


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ContactkitError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ContactkitError("--ray needs Ray: pip install 'contactkit[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None, cpus: int) -> Iterator[Any]:
    """Use the running Ray, or start one for the ``with`` block: a local one with ``cpus`` CPUs when
    ``address`` is empty or None, else connect to the cluster at ``address``. Yields the ``ray`` module."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, int(cpus)), include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _single_threaded(fn: Callable[..., T], *args: Any) -> T:
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def ray_map(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]], *, address: str | None, cpus: int,
            on_done: Callable[[int, T], None] | None = None) -> list[T]:
    """``[fn(*job) for job in jobs]`` computed as Ray tasks (one CPU each), in the order of ``jobs``.

    Args:
        fn: a picklable function (module level, or a closure cloudpickle can carry).
        jobs: argument tuples.
        address, cpus: as :func:`ray_session`.
        on_done: called as ``on_done(index, result)`` as each task finishes (completion order).
    """
    out: dict[int, T] = {}
    if not jobs:
        return []
    with ray_session(address, cpus) as ray:
        remote = ray.remote(num_cpus=1)(_single_threaded)
        fn_ref = ray.put(fn)
        refs = {remote.remote(fn_ref, *job): i for i, job in enumerate(jobs)}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                i = refs.pop(ref)
                out[i] = ray.get(ref)
                if on_done is not None:
                    on_done(i, out[i])
    return [out[i] for i in range(len(jobs))]
