"""contactkit.targets: the target contract shared by refinement and learning.

What a refinement method should reach (:class:`ContactTargets`), the :class:`ContactEstimator` protocol learned
estimators implement, the per-grasp object batch (:func:`objects_from_grasps`), targets measured on a reference
grasp (:func:`reference_targets`, oracle) and the labels that mark every output that used a reference
(:func:`method_label`). It sits below both :mod:`contactkit.refine` and :mod:`contactkit.learn` and imports
neither.
"""

from contactkit.targets.contract import (
    ContactEstimator,
    ContactTargets,
    HandParamsInit,
    ObjectBatch,
    is_oracle_source,
    method_label,
    target_source_of,
)
from contactkit.targets.objects import GroupedSDF, objects_from_grasps, subset_objects
from contactkit.targets.oracle import oracle_targets, reference_geometry, reference_targets

__all__ = [
    "ContactEstimator",
    "ContactTargets",
    "GroupedSDF",
    "HandParamsInit",
    "ObjectBatch",
    "is_oracle_source",
    "method_label",
    "objects_from_grasps",
    "oracle_targets",
    "reference_geometry",
    "reference_targets",
    "subset_objects",
    "target_source_of",
]
