"""contactkit: measure, refine, learn and synthesise hand grasps of objects, with contact as the central idea.

Units are metres inside the library; reports use millimetres and cm^3. Tensors are batch-first.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "clear_caches"]


def clear_caches() -> None:
    """Empty every in-memory cache of contactkit (see :mod:`contactkit.cache`); imported on first use so that
    ``import contactkit`` (and ``contactkit --help``) stays free of numpy and torch."""
    from contactkit.cache import clear_caches as clear

    clear()
