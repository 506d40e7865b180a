"""Refinement quality in the wild and with oracle targets, on perturbed synthesised grasps of held-out objects.

Run by hand (not a timed test)::

    python benchmarks/bm_refine_quality.py --build-gt DIR --set report [--per-object 3]   # synthesise the ground truth
    python benchmarks/bm_refine_quality.py --gt DIR/openhand_report.npz --gt DIR/mano_report.npz [--md OUT.md]

Two fixed, disjoint object sets (``OBJECT_SETS``), both held out from every shipped estimator's training (their
test split, ``docs/model_card.md``, and random URDFs outside the rendered datasets' range 0-499):

- ``tuning``: the only grasps any method weight may be tuned on (the ``cpf`` penetration and ``affinity``
  keypoint-contact sweeps of ``docs/refinement.md`` were run on them);
- ``report``: the grasps the published table is measured on; no weight is ever chosen by looking at them.

``--build-gt`` synthesises grasps (``contactkit.synth``) of one set's objects for OpenHand and for a MANO-format
hand: the real MANO model
when ``CONTACTKIT_MANO_DIR`` is set, else the 778-vertex synthetic MANO-format hand the tests build
(``tests/hands/hand_fixtures.py``). Each grasp is perturbed once with ContactOpt's protocol, then refined by every
method **in the wild** (``targets=None``: the perturbed copy carries no ground-truth link and no contact maps) and,
as a separate upper-bound block, by every method with the ground truth as targets (rows labelled
``(oracle)`` by :func:`contactkit.targets.method_label`). Every row is evaluated against the held-back ground
truth: MPJPE and root-relative MPJPE (mm), intersection volume (cm³), penetration depth (mm), hand and object
contact F1 (%), simulation displacement (cm) and wall seconds per grasp (restarts included).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from contactkit.errors import ContactkitError
from contactkit.hands import HandModel, load_hand
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
from contactkit.metrics.evaluate import evaluate
from contactkit.refine.api import refine
from contactkit.refine.methods import list_methods
from contactkit.synth.perturb import perturb
from contactkit.targets import method_label

#: Held-out object sets (disjoint). ``tuning``: 4 objects of the shipped estimators' test split
#: (docs/model_card.md), the only ones weights were tuned on. ``report``: the other 4 test-split primitives and 4
#: random URDFs from 900-999, a range no rendered dataset (v3: 0-159, v4: 0-499) and no shipped model has used.
OBJECT_SETS: dict[str, tuple[str, ...]] = {
    "tuning": ("mustard_bottle", "box", "sphere:radius=0.0425", "cylinder:radius=0.015,height=0.16"),
    "report": ("box:extents=0.03/0.06/0.15", "capsule:radius=0.022,height=0.1", "sphere:radius=0.06",
               "torus:major_radius=0.035,minor_radius=0.01", "random-urdfs:900-900", "random-urdfs:901-901",
               "random-urdfs:902-902", "random-urdfs:903-903"),
}
METRICS = (
    ("mpjpe_mm", "MPJPE mm", "{:.1f}"),
    ("r_mpjpe_mm", "R-MPJPE mm", "{:.1f}"),
    ("intersection_volume_cm3", "IV cm³", "{:.2f}"),
    ("penetration_depth_mm", "pen. mm", "{:.1f}"),
    ("contact_f1_pct", "hand F1 %", "{:.1f}"),
    ("object_contact_f1_pct", "obj F1 %", "{:.1f}"),
    ("simulation_displacement_cm", "sim cm", "{:.2f}"),
)


def bench_hand(name: str) -> HandModel:
    """OpenHand, the MANO model (``CONTACTKIT_MANO_DIR``) or the tests' synthetic MANO-format hand."""
    if name != "mano":
        return load_hand(name)
    if os.environ.get("CONTACTKIT_MANO_DIR"):
        return load_hand("mano")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hands"))
    import hand_fixtures

    return hand_fixtures.as_hand_model(hand_fixtures.synthetic_rest()).float()  # type: ignore[no-any-return]


def build_gt(folder: Path, object_set: str, per_object: int, seed: int) -> None:
    """Synthesise ``per_object`` grasps of each object of ``OBJECT_SETS[object_set]`` for both hands into
    ``folder/{hand}_{object_set}.npz``."""
    from contactkit.objects.library import resolve_objects
    from contactkit.synth.benchmark import benchmark_objects, object_seed
    from contactkit.synth.synthesis import SynthesisConfig, synthesize_batch

    folder.mkdir(parents=True, exist_ok=True)
    specs = dict(benchmark_objects())
    cfg = SynthesisConfig(batch_size=12, iterations=120, simulate=False)
    for hand_name in ("openhand", "mano"):
        hand = bench_hand(hand_name)
        sets = []
        for obj_name in OBJECT_SETS[object_set]:
            (entry,) = resolve_objects(specs.get(obj_name, obj_name))
            obj = entry.load()
            got: list[GraspSet] = []
            for b in range(4):
                t0 = time.perf_counter()
                res, _ = synthesize_batch(hand, obj, cfg, object_seed(seed, obj_name), b)
                print(f"{hand_name} {obj_name} batch {b}: {0 if res is None else len(res)} grasps "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
                if res is not None:
                    got.append(res)
                if sum(len(g) for g in got) >= per_object:
                    break
            if got:
                gs = GraspSet.concat(got)
                sets.append(gs.subset(np.arange(min(per_object, len(gs)))))
        save_grasps(folder / f"{hand_name}_{object_set}.npz", GraspSet.concat(sets))


Row = tuple[str, str, dict[str, float], float, dict[str, np.ndarray]]


def _scores(
    grasps: GraspSet, gt: GraspSet, hand: HandModel, metrics: list[str]
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Mean of each metric and the per-grasp values."""
    ev = evaluate(grasps, reference=gt, metrics=metrics, hand=hand)
    return {m: float(ev[m].mean) for m in metrics}, {m: np.asarray(ev[m].values, dtype=np.float64) for m in metrics}


def paired_interval(delta: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-grasp changes and its 95 % percentile-bootstrap interval over grasps."""
    rng = np.random.default_rng(seed)
    boot = delta[rng.integers(0, len(delta), (n_boot, len(delta)))].mean(1)
    return float(delta.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def run(gt_path: Path, methods: list[str], seed: int, sim: bool) -> list[Row]:
    gt = load_grasps(gt_path)
    hand = bench_hand(gt.hand_model)
    metrics = [m for m, _, _ in METRICS if sim or m != "simulation_displacement_cm"]
    noisy = perturb(gt, "contactopt", 1, seed, hand=hand)
    wild = noisy.replace(reference_index=None, attrs={k: v for k, v in noisy.attrs.items() if k != "reference"})
    ref = gt.subset(np.asarray(noisy.reference_index))
    objects = sorted({gt.objects[o].name for o in gt.object_ids})
    print(f"\n== {gt_path.name}: {len(gt)} grasps of {hand.name} ({hand.num_verts} vertices) on {objects}", flush=True)
    means0, values0 = _scores(noisy, ref, hand, metrics)
    rows: list[Row] = [("input", "(perturbed)", means0, float("nan"), values0)]
    for block, targets in (("in the wild", None), ("oracle (upper bound)", gt)):
        for method in methods:
            t0 = time.perf_counter()
            try:
                out = refine(noisy if targets is not None else wild, method, targets=targets, hand=hand, seed=seed)
            except ContactkitError as err:
                print(f"  {method}: unavailable ({err})", flush=True)
                continue
            sec = (time.perf_counter() - t0) / len(gt)
            label = method_label(method, out.attrs["targets"])
            means, values = _scores(out, ref, hand, metrics)
            rows.append((block, label, means, sec, values))
            print(f"  {block:<22}{label:<22}" + "  ".join(f"{v:.2f}" for v in means.values())
                  + f"  {sec:.2f} s", flush=True)
    return rows


def transfer_f1(gt_path: Path, seed: int, copies: int = 4) -> str:
    """DeepContact / PiCR contact F1 on the training hand (OpenHand) and, through the correspondence, on the
    MANO-format hand, for the *same* held-out grasps: the same (ContactOpt-perturbed) parameters pose both hands,
    and each hand's targets are measured on its own ground-truth pose. The other hand's global rotation is
    composed with the rotation aligning its rest pose onto the training hand's, its joint rotations are
    conjugated by it, and it is translated so its keypoints match the training hand's on average."""
    from contactkit.learn.estimators import estimator_for_hand
    from contactkit.targets import objects_from_grasps, reference_targets

    gt = load_grasps(gt_path)
    train = bench_hand(gt.hand_model)
    tg = gt.hand_tensors()
    with torch.no_grad():
        kp_train = train(tg["global_orient"], tg["hand_pose"], tg["betas"], tg["transl"]).keypoints
    lines = [f"**Transfer cost** ({len(gt)} held-out grasps x {copies} ContactOpt-noise copies, seed {seed})", "",
             "| hand | DeepContact hand F1 % | DeepContact object F1 % | PiCR object F1 % | GT hand contact % |",
             "|---|---:|---:|---:|---:|"]
    for hand_name in ("openhand", "mano"):
        hand = bench_hand(hand_name)
        g = gt.replace(hand_model=hand.name, betas=np.zeros((len(gt), hand.num_betas)))
        if hand.name != train.name:  # the same grasp: global rotation composed with the rest-pose alignment
            from contactkit.geometry.rotations import axis_angle_to_rotmat, rotmat_to_axis_angle
            from contactkit.learn.transfer import rest_alignment

            align = torch.as_tensor(rest_alignment(train, hand), dtype=torch.float64)
            rot = axis_angle_to_rotmat(torch.as_tensor(g.global_orient)) @ align
            pose = (torch.as_tensor(g.hand_pose).view(-1, 15, 3) @ align).reshape(-1, 45)  # align^T aa per joint
            g = g.replace(global_orient=rotmat_to_axis_angle(rot).numpy(), hand_pose=pose.numpy())
            t0 = g.hand_tensors()
            with torch.no_grad():
                kp = hand(t0["global_orient"], t0["hand_pose"], None, t0["transl"]).keypoints
            g = g.replace(transl=g.transl + (kp_train - kp).mean(1).double().numpy())
        noisy = perturb(g, "contactopt", copies, seed, hand=hand)
        objects = objects_from_grasps(noisy)
        truth = reference_targets(hand, g, noisy, objects, "cpu", torch.float32)
        t = noisy.hand_tensors()
        with torch.no_grad():
            verts = hand(t["global_orient"], t["hand_pose"], t["betas"] if hand.num_betas else None,
                         t["transl"]).vertices.float()
        pts, nrm = objects.world_points()
        dc = estimator_for_hand("deepcontact", hand).predict(verts, pts, nrm)
        pc = estimator_for_hand("picr", hand).predict(verts, pts, nrm)

        def f1(pred: torch.Tensor, true: torch.Tensor) -> float:
            tp = float((pred & true).sum())
            return 200.0 * tp / max(1.0, float(pred.sum()) + float(true.sum()))

        h_true, o_true = truth.hand_contact > 0.5, truth.object_contact > 0.5
        lines.append(f"| {hand.name} ({hand.num_verts} v) | {f1(dc.hand_contact > 0.5, h_true):.1f} | "
                     f"{f1(dc.object_contact > 0.3, o_true):.1f} | {f1(pc.object_contact > 0, o_true):.1f} | "
                     f"{100.0 * float(h_true.float().mean()):.1f} |")
    return "\n".join(lines) + "\n"


def markdown(title: str, rows: list[Row]) -> str:
    """The rows as a markdown table, with the paired change of MPJPE and IV against the input (mean [95 % CI])."""
    keys = [m for m, _, _ in METRICS if m in rows[0][2]]
    heads = [h for m, h, _ in METRICS if m in keys]
    lines = [f"**{title}**", "", "| block | method | " + " | ".join(heads)
             + " | s/grasp | ΔMPJPE mm [95 % CI] | ΔIV cm³ [95 % CI] |",
             "|---|---|" + "---:|" * (len(heads) + 3)]
    base = rows[0][4]
    for block, label, vals, sec, per in rows:
        cells = [fmt.format(vals[m]) for m, _, fmt in METRICS if m in keys]
        deltas = []
        for m, fmt in (("mpjpe_mm", "{:+.1f}"), ("intersection_volume_cm3", "{:+.2f}")):
            if np.isnan(sec):
                deltas.append("")
                continue
            mean, lo, hi = paired_interval(per[m] - base[m])
            deltas.append(f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]")
        lines.append(f"| {block} | {label} | " + " | ".join(cells) + f" | {'' if np.isnan(sec) else f'{sec:.2f}'} | "
                     + " | ".join(deltas) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-gt", type=Path, default=None, help="synthesise ground truth into this folder")
    ap.add_argument("--set", choices=sorted(OBJECT_SETS), default="report", help="object set for --build-gt")
    ap.add_argument("--per-object", type=int, default=3)
    ap.add_argument("--gt", type=Path, action="append", default=[], help="ground-truth grasp file (repeatable)")
    ap.add_argument("--methods", default=",".join(list_methods()))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-sim", action="store_true", help="skip the simulation displacement")
    ap.add_argument("--md", type=Path, default=None, help="write the tables as markdown here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--transfer-f1", type=Path, default=None,
                    help="print the estimators' F1 on OpenHand vs the MANO-format hand for these grasps and stop")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # open-mesh fallbacks are reported by the metrics' flags
    if args.transfer_f1 is not None:
        print(transfer_f1(args.transfer_f1, args.seed))
        return
    if args.build_gt is not None:
        build_gt(args.build_gt, args.set, args.per_object, args.seed)
        return
    parts: list[str] = []
    for path in args.gt:
        rows = run(path, args.methods.split(","), args.seed, not args.no_sim)
        parts.append(markdown(f"{path.name} (ContactOpt noise, seed {args.seed})", rows))
        if args.md is not None:
            args.md.write_text("\n".join(parts))
    print("\n".join(parts))



if __name__ == "__main__":
    main()
