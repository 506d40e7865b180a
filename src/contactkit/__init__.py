"""contactkit: measure, refine, learn and synthesise hand grasps of objects, with contact as the central idea.

Units are metres inside the library; reports use millimetres and cm^3. Tensors are batch-first.
"""

__version__ = "0.1.0"

from contactkit.cache import clear_caches  # noqa: E402  (light: numpy only)

__all__ = ["__version__", "clear_caches"]
