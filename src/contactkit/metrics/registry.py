"""Names, units and variants of every metric :func:`contactkit.metrics.evaluate` can compute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contactkit.errors import ContactkitError


@dataclass(frozen=True)
class MetricSpec:
    """Description of one named metric.

    Attributes:
        name: canonical name (carries the unit).
        unit: unit of the reported values (``mm``, ``cm``, ``cm3``, ``%``, ``1``).
        scale: factor from the SI value computed by the functional core to the reported unit.
        group: ``pose``, ``object``, ``physics``, ``contact``, ``stability`` or ``quality``.
        needs_reference: True when a reference grasp set is required.
        variant: ``"default"`` or the name of the paper convention reproduced.
        default: computed when no metric list is given.
        description: one line.
        kernel: name of the function of :mod:`contactkit.metrics._compute` that computes it (see :meth:`compute`).
    """

    name: str
    unit: str
    scale: float
    group: str
    needs_reference: bool
    variant: str
    default: bool
    description: str
    kernel: str

    def compute(self, run: Any) -> Any:
        """Compute this metric for a :class:`~contactkit.metrics._compute.MetricRun`: a
        :class:`~contactkit.metrics._compute.Computed` in SI units (the kernel is imported lazily, so that this
        registry stays cheap to import for the command line's help)."""
        from contactkit.metrics import _compute

        kernel = getattr(_compute, self.kernel)
        return kernel(run)


_SPECS = [
    MetricSpec("mpjpe_mm", "mm", 1e3, "pose", True, "default", True, "mean 21-keypoint error, world frame", "mpjpe"),
    MetricSpec(
        "r_mpjpe_mm", "mm", 1e3, "pose", True, "default", True, "keypoint error after aligning the wrists", "r_mpjpe"
    ),
    MetricSpec(
        "pa_mpjpe_mm",
        "mm",
        1e3,
        "pose",
        True,
        "default",
        True,
        "keypoint error after Procrustes alignment (rotation, translation, scale)",
        "pa_mpjpe",
    ),
    MetricSpec("mpvpe_mm", "mm", 1e3, "pose", True, "default", True, "mean hand vertex error, world frame", "mpvpe"),
    MetricSpec(
        "pck_3d_auc",
        "1",
        1.0,
        "pose",
        True,
        "default",
        True,
        "area under the 3D PCK curve (per keypoint, 0-50 mm), in [0, 1]",
        "pck_auc",
    ),
    MetricSpec(
        "pck_3d_auc_pose_003",
        "1",
        1.0,
        "pose",
        True,
        "paper 003 (per pose)",
        False,
        "area under the 3D PCK curve where a pose is correct when its mean keypoint error is below",
        "pck_auc_pose",
    ),
    MetricSpec(
        "object_mpvpe_mm",
        "mm",
        1e3,
        "object",
        True,
        "default",
        True,
        "mean object vertex error (same object mesh), world frame",
        "object_mpvpe",
    ),
    MetricSpec(
        "chamfer_mm",
        "mm",
        1e3,
        "object",
        True,
        "default",
        True,
        "symmetric Chamfer distance between surface samples of the predicted and reference objects",
        "chamfer",
    ),
    MetricSpec(
        "penetration_depth_mm",
        "mm",
        1e3,
        "physics",
        False,
        "default",
        True,
        "max depth of hand vertices inside the object (0 if none)",
        "penetration_depth",
    ),
    MetricSpec(
        "intersection_volume_cm3",
        "cm3",
        1e6,
        "physics",
        False,
        "default",
        True,
        "exact boolean intersection volume of the closed hand and the object",
        "intersection_volume",
    ),
    MetricSpec(
        "intersection_volume_voxel5mm_obman",
        "cm3",
        1e6,
        "physics",
        False,
        "ObMan / GraspTTA",
        False,
        "5 mm surface voxels of the object whose centre is inside the hand",
        "intersection_voxel5mm_obman",
    ),
    MetricSpec(
        "intersection_volume_voxel2mm_choir",
        "cm3",
        1e6,
        "physics",
        False,
        "CHOIR",
        False,
        "2 mm solid voxels inside both hand and object",
        "intersection_voxel2mm_choir",
    ),
    MetricSpec(
        "solid_intersection_volume_cpf",
        "cm3",
        1e6,
        "physics",
        False,
        "CPF",
        False,
        "object box cut in 80^3 cells, cells inside object and hand",
        "solid_intersection_cpf",
    ),
    MetricSpec(
        "disjointedness_mm",
        "mm",
        1e3,
        "physics",
        False,
        "default",
        True,
        "mean over the 5 fingertip regions of their smallest distance to the object",
        "disjointedness",
    ),
    MetricSpec(
        "contact_coverage_pct",
        "%",
        100.0,
        "contact",
        False,
        "default",
        True,
        "hand vertices within +-2 mm of the object surface",
        "contact_coverage",
    ),
    MetricSpec(
        "contact_precision_pct",
        "%",
        100.0,
        "contact",
        True,
        "default",
        True,
        "hand-side contact precision vs the reference",
        "contact_precision",
    ),
    MetricSpec(
        "contact_recall_pct",
        "%",
        100.0,
        "contact",
        True,
        "default",
        True,
        "hand-side contact recall vs the reference",
        "contact_recall",
    ),
    MetricSpec(
        "contact_f1_pct",
        "%",
        100.0,
        "contact",
        True,
        "default",
        True,
        "hand-side contact F1 vs the reference",
        "contact_f1",
    ),
    MetricSpec(
        "object_contact_precision_pct",
        "%",
        100.0,
        "contact",
        True,
        "default",
        True,
        "object-side contact precision vs the reference",
        "object_contact_precision",
    ),
    MetricSpec(
        "object_contact_recall_pct",
        "%",
        100.0,
        "contact",
        True,
        "default",
        True,
        "object-side contact recall vs the reference",
        "object_contact_recall",
    ),
    MetricSpec(
        "object_contact_f1_pct",
        "%",
        100.0,
        "contact",
        True,
        "default",
        True,
        "object-side contact F1 vs the reference",
        "object_contact_f1",
    ),
    MetricSpec(
        "simulation_displacement_cm",
        "cm",
        100.0,
        "stability",
        False,
        "default",
        True,
        "object COM displacement, fixed hand, gravity -z (MuJoCo, default protocol)",
        "simulation_default",
    ),
    MetricSpec(
        "simulation_displacement_cm_obman",
        "cm",
        100.0,
        "stability",
        False,
        "ObMan / GraspTTA",
        False,
        "35 steps of 1/240 s, friction 3, 1 kg, restitution 0.5, concave static hand",
        "simulation_obman",
    ),
    MetricSpec(
        "simulation_displacement_cm_six",
        "cm",
        100.0,
        "stability",
        False,
        "six gravity directions",
        False,
        "default protocol averaged over gravity along +-x, +-y, +-z",
        "simulation_six",
    ),
    MetricSpec(
        "affinity_diversity",
        "1",
        1.0,
        "quality",
        False,
        "paper 003",
        True,
        "1 - mean pairwise cosine of contact directions around the object's central axis, in [0, 2]",
        "affinity_diversity",
    ),
]

METRICS: dict[str, MetricSpec] = {s.name: s for s in _SPECS}
DEFAULT_METRICS: tuple[str, ...] = tuple(s.name for s in _SPECS if s.default)
ALL_METRICS: tuple[str, ...] = tuple(METRICS)


def resolve_metrics(names: list[str] | tuple[str, ...] | None, *, has_reference: bool) -> list[str]:
    """Expand a metric selection: None = the defaults, ``"all"``, group names, or metric names.

    Metrics that need a reference are dropped from ``None``/``"all"``/group selections when there is none, and
    raise :class:`ContactkitError` when named explicitly.
    """
    if names is None:
        names = ["default"]
    groups = {s.group for s in _SPECS}
    out: list[str] = []
    for n in names:
        if n == "default":
            picked = [m for m in DEFAULT_METRICS if has_reference or not METRICS[m].needs_reference]
        elif n == "all":
            picked = [m for m in ALL_METRICS if has_reference or not METRICS[m].needs_reference]
        elif n in groups:
            picked = [m for m, s in METRICS.items() if s.group == n and (has_reference or not s.needs_reference)]
        elif n in METRICS:
            if METRICS[n].needs_reference and not has_reference:
                raise ContactkitError(f"metric {n!r} needs a reference grasp set (pass reference=... / --reference)")
            picked = [n]
        else:
            raise ContactkitError(
                f"unknown metric {n!r}; valid: 'default', 'all', groups {sorted(groups)}, or {sorted(METRICS)}"
            )
        out.extend(m for m in picked if m not in out)
    return out
