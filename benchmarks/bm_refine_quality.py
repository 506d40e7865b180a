"""Refinement quality: every method with oracle targets on perturbed synthesised ground truth.

Run by hand::

    python benchmarks/bm_refine_quality.py --gt GT.npz [--protocols small,contactopt] [--methods ...]

``GT.npz`` is a grasp file of synthesised ground truth (``contactkit synth --object OBJ --n N --out GT.npz``, or
several such files joined with ``GraspSet.concat``). Each grasp is perturbed once per protocol
(``contactkit.synth.perturb``), refined by each method with the ground truth as oracle target, and evaluated against
it with ``contactkit.metrics.evaluate``. Prints, per protocol, one row per method: MPJPE (mm), intersection volume
(cm³), hand contact F1 (%) and wall seconds per grasp (the method's own settings, restarts included).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from contactkit.hands import HandModel, load_hand
from contactkit.io.grasps import GraspSet, load_grasps
from contactkit.metrics.evaluate import evaluate
from contactkit.refine.api import refine
from contactkit.refine.methods import list_methods
from contactkit.synth.perturb import perturb

METRICS = ("mpjpe_mm", "intersection_volume_cm3", "contact_f1_pct")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", required=True, help="grasp file of synthesised ground truth")
    ap.add_argument("--protocols", default="small,contactopt")
    ap.add_argument("--methods", default=",".join(list_methods()))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # open-mesh fallbacks are reported by the metrics' flags
    gt = load_grasps(args.gt)
    hand = load_hand(gt.hand_model, gt.side)
    objects = sorted({gt.objects[o].name for o in gt.object_ids})
    print(f"{len(gt)} ground-truth grasps on {len(objects)} objects, torch threads {torch.get_num_threads()}")
    for protocol in args.protocols.split(","):
        noisy = perturb(gt, protocol, 1, args.seed, hand=hand)
        ref = gt.subset(np.asarray(noisy.reference_index))
        print(f"\n== protocol {protocol}")
        print(f"{'method':<16}{'MPJPE mm':>10}{'IV cm3':>10}{'F1 %':>8}{'s/grasp':>9}")

        _row("(ground truth)", ref, ref, hand, None)
        _row("(input)", noisy, ref, hand, None)
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            out = refine(noisy, method, targets=ref, hand=hand, seed=args.seed)
            _row(method, out, ref, hand, (time.perf_counter() - t0) / len(noisy))


def _row(name: str, grasps: GraspSet, reference: GraspSet, hand: HandModel, seconds: float | None) -> None:
    ev = evaluate(grasps, reference=reference, metrics=list(METRICS), hand=hand)
    t = f"{seconds:>9.2f}" if seconds is not None else f"{'':>9}"
    print(f"{name:<16}{ev['mpjpe_mm'].mean:>10.1f}{ev['intersection_volume_cm3'].mean:>10.2f}"
          f"{ev['contact_f1_pct'].mean:>8.1f}{t}", flush=True)


if __name__ == "__main__":
    main()
