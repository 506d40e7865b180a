"""contactkit.refine: test-time grasp refinement with named contact methods.

``refine(grasps, "contactopt", targets=reference)`` (:mod:`~contactkit.refine.api`); the generic
:class:`~contactkit.refine.refiner.Refiner`; presets in :mod:`~contactkit.refine.methods`; the
one target resolver in :mod:`~contactkit.refine.targets` (the target contract itself lives in
:mod:`contactkit.targets`). See ``docs/refinement.md``.
"""

from contactkit.refine.api import refine, run_method
from contactkit.refine.methods import get_method, list_methods
from contactkit.refine.refiner import Refiner, RefineResult, RefinerSettings
from contactkit.refine.targets import resolve_targets
from contactkit.targets import ContactEstimator, ContactTargets, method_label

__all__ = [
    "ContactEstimator",
    "ContactTargets",
    "RefineResult",
    "Refiner",
    "RefinerSettings",
    "get_method",
    "list_methods",
    "method_label",
    "refine",
    "resolve_targets",
    "run_method",
]
