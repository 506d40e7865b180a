"""The one target resolver: what each method refines toward, decided in one place for the CLI and the API.

``targets=None`` is the method's in-the-wild mode and needs only the noisy hand and the object:

- ``contactopt``: DeepContact's hand and object contact maps (paper 000);
- ``cpf`` / ``cpf_object``: PiCR's springs (paper 004);
- ``obman``: ObMan's contact zones from grasp statistics (paper 001 §3.3), shipped per bundled hand;
- ``affinity``: no targets (the physical affinity loss with penetration, anatomy and a pose prior);
- ``choir``: a learned CHOIR predictor (JointDiffusion), when one is installed.

Estimators are trained on OpenHand (right); other hands get them through a code-derived vertex correspondence
(:mod:`contactkit.learn.transfer`). When nothing fits the hand or the method, :func:`resolve_targets` raises a
:class:`~contactkit.errors.ContactkitError` saying how to fix it — it never falls back to the ground truth.

The ground truth is used only when asked for: ``targets="oracle"`` (the set's linked ``attrs["reference"]``), a
reference grasp file or :class:`~contactkit.io.grasps.GraspSet`. The returned source string
(:mod:`contactkit.targets.contract`) is recorded with the refined grasps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from contactkit.errors import ContactkitError
from contactkit.targets import ContactEstimator, ContactTargets, ObjectBatch, reference_targets

__all__ = [
    "IN_THE_WILD",
    "LEARNED_ESTIMATORS",
    "ResolvedTargets",
    "estimator_from_checkpoint",
    "learned_choir_predictor",
    "resolve_targets",
    "statistics_zones",
]

#: The learned contact estimator each method uses when it is given no targets (paper 000: DeepContact drives
#: ContactOpt; paper 004: PiCR recovers the springs CPF's GeO fits).
LEARNED_ESTIMATORS: dict[str, Literal["deepcontact", "picr"]] = {
    "contactopt": "deepcontact",
    "cpf": "picr",
    "cpf_object": "picr",
}

#: What each method refines toward without targets (its in-the-wild target source).
IN_THE_WILD: dict[str, str] = {
    "contactopt": "learned:deepcontact",
    "cpf": "learned:picr",
    "cpf_object": "learned:picr",
    "obman": "statistics:contact-zones",
    "affinity": "none",
    "choir": "learned:choir",
}


@dataclass
class ResolvedTargets:
    """Targets for every grasp of a set and where they came from.

    Attributes:
        targets: :class:`ContactTargets` for the N grasps.
        source: the target source (``"oracle"``, ``"file:PATH"``, ``"learned:deepcontact"``, ...).
        details: extra facts recorded with the output (e.g. the hand the estimator was trained on).
    """

    targets: ContactTargets
    source: str
    details: dict[str, str] = field(default_factory=dict)


def resolve_targets(
    method: str,
    grasps: Any,
    hand: Any,
    objects: ObjectBatch,
    targets: Any = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ResolvedTargets:
    """Targets of ``method`` for every grasp of ``grasps``.

    Args:
        method: a registered method name.
        grasps: the :class:`~contactkit.io.grasps.GraspSet` to refine (N grasps).
        hand: its hand model.
        objects: ``objects_from_grasps(grasps)``.
        targets: None (in the wild, see the module docstring), ``"oracle"`` (the linked ground truth), a
            reference grasp file path or ``GraspSet`` (oracle; rows paired through ``grasps.reference_index``),
            a :class:`ContactTargets` for all N grasps, or a :class:`ContactEstimator`.

    Raises:
        ContactkitError: no in-the-wild targets exist for this method and hand, ``"oracle"`` without a linked
            ground truth, or a ``targets`` of another type.
    """
    from contactkit.io.grasps import GraspSet, load_grasps

    if targets is None:
        return _in_the_wild(method, grasps, hand, objects, device, dtype)
    if isinstance(targets, str) and targets == "oracle":
        ref = grasps.attrs.get("reference")
        if not ref:
            raise ContactkitError(
                "targets='oracle' needs a grasp set linked to its ground truth (attrs['reference'], as "
                "`contactkit perturb` writes it)"
            )
        if not Path(ref).is_file():
            raise ContactkitError(f"the ground-truth file {ref} linked by the grasp set does not exist")
        return ResolvedTargets(reference_targets(hand, load_grasps(ref), grasps, objects, device, dtype), "oracle")
    if isinstance(targets, str | os.PathLike):
        ref_set = load_grasps(targets)
        return ResolvedTargets(
            reference_targets(hand, ref_set, grasps, objects, device, dtype), f"file:{os.fspath(targets)}"
        )
    if isinstance(targets, GraspSet):
        return ResolvedTargets(reference_targets(hand, targets, grasps, objects, device, dtype), "reference")
    if isinstance(targets, ContactTargets):
        return ResolvedTargets(targets, "given:reference" if targets.uses_reference else "given")
    if isinstance(targets, ContactEstimator):
        return ResolvedTargets(_predict(targets, grasps, hand, objects, device, dtype), f"learned:{targets.kind}")
    raise ContactkitError(
        "targets must be None (in the wild), 'oracle', a reference grasp file or GraspSet, ContactTargets or a "
        f"ContactEstimator, got {type(targets).__name__}"
    )


def _predict(
    estimator: ContactEstimator, grasps: Any, hand: Any, objects: ObjectBatch, device: Any, dtype: torch.dtype
) -> ContactTargets:
    """The estimator's targets on the noisy hands of ``grasps``, 64 grasps at a time."""
    t = grasps.hand_tensors(device=device, dtype=dtype)
    with torch.no_grad():
        out = hand(t["global_orient"], t["hand_pose"], t["betas"] if hand.num_betas > 0 else None, t["transl"])
    pts, nrm = objects.world_points()
    parts = [
        estimator.predict(out.vertices[s: s + 64], pts[s: s + 64], nrm[s: s + 64])
        for s in range(0, len(grasps), 64)
    ]
    if len(parts) == 1:
        return parts[0]

    def cat(name: str) -> Any:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else torch.cat(values)

    return ContactTargets(hand_contact=cat("hand_contact"), object_contact=cat("object_contact"), k_atr=cat("k_atr"))


def _in_the_wild(
    method: str, grasps: Any, hand: Any, objects: ObjectBatch, device: Any, dtype: torch.dtype
) -> ResolvedTargets:
    kind = LEARNED_ESTIMATORS.get(method)
    if kind is not None:
        from contactkit.learn.estimators import estimator_for_hand

        estimator = estimator_for_hand(kind, hand, device=device)
        details = {"estimator_hand": str(getattr(estimator, "trained_on", getattr(hand, "name", "")))}
        return ResolvedTargets(_predict(estimator, grasps, hand, objects, device, dtype), f"learned:{kind}", details)
    if method == "obman":
        zones, origin = statistics_zones(hand)
        return ResolvedTargets(
            ContactTargets(contact_zones=zones.to(device)), "statistics:contact-zones", {"zones": origin}
        )
    if method == "affinity":
        return ResolvedTargets(ContactTargets(), "none")
    if method == "choir":
        return ResolvedTargets(_choir_targets(grasps, hand), "learned:choir")
    raise ContactkitError(f"method {method!r} has no in-the-wild mode; pass targets")


def statistics_zones(hand: Any) -> tuple[torch.Tensor, str]:
    """ObMan's contact zones from grasp statistics for ``hand``: ``(mask (6, V) bool, origin)``.

    The zones shipped for the hand and side when the package has them (``contactkit.synth.zones``), else the
    training hand's (OpenHand right) moved onto ``hand`` through the estimators' vertex correspondence.

    Raises:
        ContactkitError: no zones are shipped for either hand.
    """
    from contactkit.contact.obman import zone_mask
    from contactkit.learn.estimators import TRAINING_HAND
    from contactkit.synth.zones import load_shipped_zones, shipped_zones_path

    name, side = str(getattr(hand, "name", "")), str(getattr(hand, "side", "right"))
    own = load_shipped_zones(name, side)
    if own is not None:
        return zone_mask(list(own.values()), int(hand.num_verts)), f"shipped:{name}_{side}"
    train_name, train_side = TRAINING_HAND
    base = load_shipped_zones(train_name, train_side)
    if base is None:
        path = shipped_zones_path(train_name, train_side)
        raise ContactkitError(
            f"no contact zones from grasp statistics are shipped (looked for {path}); derive them with "
            "scripts/derive_contact_zones.py or use --targets oracle"
        )
    from contactkit.hands import load_hand
    from contactkit.learn.transfer import hand_correspondence

    source = load_hand(train_name, train_side)
    corr = hand_correspondence(source, hand)
    mask = corr.mask_to_target(zone_mask(list(base.values()), int(source.num_verts)))
    return mask, f"shipped:{train_name}_{train_side} via correspondence"


def _choir_targets(grasps: Any, hand: Any) -> ContactTargets:
    """Learned CHOIR fields (contract B: ``contactkit.diffusion.predictor.load_choir_predictor``)."""
    predicted = learned_choir_predictor(hand).predict(grasps, hand)
    return ContactTargets(choir=getattr(predicted, "field", predicted))


def learned_choir_predictor(hand: Any) -> Any:
    """The installed JointDiffusion refinement predictor for ``hand`` (raises a :class:`ContactkitError` that says
    what to do when none is installed; never falls back to the ground truth)."""
    name = getattr(hand, "name", "?")
    fix = (
        f"no learned CHOIR predictor is installed for hand {name!r}; train one with "
        "`contactkit train jointdiffusion` or use --targets oracle"
    )
    try:
        from contactkit.diffusion.predictor import load_choir_predictor
    except ImportError as exc:
        raise ContactkitError(fix) from exc
    try:
        return load_choir_predictor(hand)
    except (ContactkitError, FileNotFoundError) as exc:
        raise ContactkitError(f"{fix} ({exc})") from exc


def estimator_from_checkpoint(path: str | Path, hand: Any, *, device: torch.device | str = "cpu") -> Any:
    """A :class:`ContactEstimator` from a ``contactkit train`` checkpoint (its kind read from the file)."""
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.learn.estimators import load_estimator

    kind = load_checkpoint(path).kind
    if kind not in ("deepcontact", "picr"):
        raise ContactkitError(f"checkpoint {path} holds a {kind} network, not a contact estimator")
    return load_estimator(kind, hand, path, device=device)
