"""Benchmark of grasp synthesis: yield, time per accepted grasp and quality of the accepted set, per object.

Run by hand: ``python benchmarks/bm_synth.py [--n 5] [--objects mug,cracker_box] [--workers 1] [--zones]``.
Prints one row per object (and, with ``--zones``, the contact zones re-derived from all accepted grasps).
Re-measures every accepted grasp with the metrics code (penetration, intersection volume, simulation
displacement, contact coverage) rather than trusting the synthesis bookkeeping.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    from contactkit.hands import load_hand
    from contactkit.io.grasps import GraspSet
    from contactkit.metrics.contact import contact_coverage, hand_contact_mask
    from contactkit.metrics.intersection import intersection_volume
    from contactkit.metrics.penetration import penetration_depth
    from contactkit.metrics.simulation import simulation_displacement
    from contactkit.objects import list_bundled_objects
    from contactkit.synth.synthesis import SynthesisConfig, synthesize
    from contactkit.synth.zones import derive_contact_zones

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5, help="accepted grasps per object")
    ap.add_argument("--objects", default=",".join(list_bundled_objects()))
    ap.add_argument("--hand", default="openhand")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--zones", action="store_true", help="re-derive contact zones from all accepted grasps")
    ap.add_argument("--squeeze-mm", type=float, default=None, help="override SynthesisConfig.squeeze_m (mm)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cfg = SynthesisConfig()
    if args.batch_size is not None:
        cfg = cfg.with_updates(batch_size=args.batch_size)
    if args.squeeze_mm is not None:
        cfg = cfg.with_updates(squeeze_m=args.squeeze_mm / 1000.0)
    hand = load_hand(args.hand)
    closed = hand.closed_faces.numpy()
    rows = []
    sets = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in [s for s in args.objects.split(",") if s]:
            t0 = time.perf_counter()
            res = synthesize(name, args.n, hand=args.hand, config=cfg, out=Path(tmp) / f"{name}.npz",
                             workers=args.workers, seed=0)
            wall = time.perf_counter() - t0
            g = res.grasps
            sets.append(g)
            obj = g.objects[g.object_ids[0]]
            v = g.hand_vertices
            pen = penetration_depth(v, obj.vertices, obj.faces) * 1e3
            vol = intersection_volume(v, closed, obj.vertices, obj.faces).volume_m3 * 1e6
            disp = simulation_displacement(v, closed, obj.vertices, obj.faces) * 100
            cov = contact_coverage(hand_contact_mask(v, obj.vertices, obj.faces)) * 100
            st = res.stats
            rows.append((name, st["accepted"], st["candidates"], st["yield"] * 100, wall / max(1, st["accepted"]),
                         pen.mean(), vol.mean(), disp.mean(), cov.mean(), st["mean_epsilon"],
                         st["diversity"]["rotation_deg"], st["diversity"]["pose_rad"]))
    head = ("object", "acc_all", "cand", "yield%", "s/acc", "pen_mm", "iv_cm3", "sd_cm", "cov%", "eps",
            "div_rot_deg", "div_pose")
    print(" ".join(f"{h:>12}" for h in head))
    for r in rows:
        print(f"{r[0]:>12} {r[1]:>12d} {r[2]:>12d} " + " ".join(f"{x:>12.3f}" for x in r[3:]))
    allv = np.array([r[4] for r in rows])
    print(f"mean time per accepted grasp: {allv.mean():.1f} s (CPU, {args.workers} worker(s))")
    if args.zones and sets:
        allg = GraspSet.concat(sets)
        z = derive_contact_zones(allg, hand)
        print(f"zones from {len(allg)} grasps: {z.n_components} connected regions, labels {z.component_labels}")
        print({k: int(v.size) for k, v in z.zones.items()})


if __name__ == "__main__":
    main()
