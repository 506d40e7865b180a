"""Benchmark of grasp synthesis: yield, time per accepted grasp and quality of the accepted set, per object.

Run by hand: ``python benchmarks/bm_synth.py [--n 5] [--objects mug,cracker_box | --set random-urdfs:20]
[--workers 1 | --ray] [--zones]``. Prints one row per object, then per object class (bundled, each primitive
kind, random-urdfs, files) the means of the accepted grasps' measures, the coverage quantiles and the
fingers-in-contact histogram (and, with ``--zones``, the contact zones re-derived from all accepted grasps).
Re-measures every accepted grasp with the metrics code (penetration, intersection volume, simulation
displacement, contact coverage) rather than trusting the synthesis bookkeeping.
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--objects", default=",".join(list_bundled_objects()), help="comma-separated object specs")
    ap.add_argument("--set", default=None, help="an object-library set spec instead (e.g. random-urdfs:20)")
    ap.add_argument("--ray", action="store_true", help="batches as tasks of a local Ray with --workers CPUs")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--max-batches", type=int, default=None)
    ap.add_argument("--min-coverage", type=float, default=None, help="override SynthesisConfig.min_coverage")
    ap.add_argument("--no-opposition", action="store_true", help="acceptance without the opposition check")
    ap.add_argument("--config", default="", help="more SynthesisConfig overrides: key=value,key=value (floats)")
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
    if args.iterations is not None:
        cfg = cfg.with_updates(iterations=args.iterations)
    if args.min_coverage is not None:
        cfg = cfg.with_updates(min_coverage=args.min_coverage)
    if args.no_opposition:
        cfg = cfg.with_updates(require_opposition=False)
    if args.config:
        cfg = cfg.with_updates(**{k: float(v) for k, v in (kv.split("=") for kv in args.config.split(","))})
    if args.set is not None:
        from contactkit.objects.library import check_object, resolve_objects

        objects = []
        for e in resolve_objects(args.set):
            mesh, res = check_object(e)
            if res.ok:
                objects.append((e.object_id, mesh))
    else:
        objects = [(name, name) for name in args.objects.split(",") if name]
    if args.squeeze_mm is not None:
        cfg = cfg.with_updates(squeeze_m=args.squeeze_mm / 1000.0)
    hand = load_hand(args.hand)
    closed = hand.closed_faces.numpy()
    rows = []
    sets = []
    per_class: dict[str, dict[str, list]] = {}
    cpu_total: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in objects:
            t0 = time.perf_counter()
            try:
                res = synthesize(spec, args.n, hand=args.hand, config=cfg,
                                 out=Path(tmp) / f"{name.replace('/', '_')}.npz", workers=args.workers,
                                 ray="" if args.ray else None, max_batches=args.max_batches, seed=0)
            except Exception as err:  # noqa: BLE001 - an object without any accepted grasp is a row too
                print(f"{name}: {err}")
                continue
            wall = time.perf_counter() - t0
            g = res.grasps
            sets.append(g)
            obj = g.objects[g.object_ids[0]]
            v = g.hand_vertices
            pen = penetration_depth(v, obj.vertices, obj.faces) * 1e3
            vol = intersection_volume(v, closed, obj.vertices, obj.faces).volume_m3 * 1e6
            disp = simulation_displacement(v, closed, obj.vertices, obj.faces) * 100
            cov = contact_coverage(hand_contact_mask(v, obj.vertices, obj.faces)) * 100
            fingers = [len(m["synthesis"]["fingers_in_contact"]) for m in g.metadata]
            st = res.stats
            cpu_stages = st["cpu_seconds_by_stage"]
            cpu_total.append((sum(cpu_stages.values()), st["accepted"]))
            print(f"{name}: {st['accepted']}/{st['candidates']} accepted, wall {wall:.1f} s, CPU "
                  f"{st['cpu_seconds_per_accepted']:.2f} s per accepted grasp; CPU s by stage "
                  + ", ".join(f"{k} {v:.1f}" for k, v in cpu_stages.items()), flush=True)
            cls = name.split("/")[0] if "/" in name else name.split(":")[0]
            rows.append((name, st["accepted"], st["candidates"], st["yield"] * 100, wall / max(1, st["accepted"]),
                         pen.mean(), vol.mean(), disp.mean(), cov.mean(), float(np.mean(fingers)),
                         st["mean_epsilon"], st["diversity"]["rotation_deg"], st["diversity"]["pose_rad"]))
            per_class.setdefault(cls, {"cov": [], "fingers": [], "rows": []})
            per_class[cls]["cov"].extend(cov.tolist())
            per_class[cls]["fingers"].extend(fingers)
            per_class[cls]["rows"].append(rows[-1])
    head = ("object", "acc_all", "cand", "yield%", "s/acc", "pen_mm", "iv_cm3", "sd_cm", "cov%", "fingers",
            "eps", "div_rot_deg", "div_pose")
    print(" ".join(f"{h:>12}" for h in head))
    for r in rows:
        print(f"{r[0]:>12} {r[1]:>12d} {r[2]:>12d} " + " ".join(f"{x:>12.3f}" for x in r[3:]))
    allv = np.array([r[4] for r in rows])
    mode = f"{args.workers} worker(s){', Ray' if args.ray else ''}"
    print(f"mean time per accepted grasp: {allv.mean():.1f} s (CPU, {mode})")
    cpu_s, n_acc = (sum(c for c, _ in cpu_total), sum(a for _, a in cpu_total))
    print(f"CPU seconds of the synthesising processes per accepted grasp, all objects: {cpu_s / max(1, n_acc):.2f} "
          f"({n_acc} grasps; the load of other jobs does not inflate it); load average {os.getloadavg()}")
    print("per class: objects, accepted/candidates, s/acc, pen_mm, iv_cm3, sd_cm, cov% mean [p10 p50 p90], "
          "fingers in contact histogram 0..5, div_rot_deg")
    for cls, d in per_class.items():
        r = np.array([x[1:] for x in d["rows"]], dtype=np.float64)
        q = np.quantile(d["cov"], [0.1, 0.5, 0.9])
        hist = np.bincount(np.asarray(d["fingers"]), minlength=6)[:6].tolist()
        print(f"{cls:>14} {len(r):3d} {int(r[:, 0].sum()):4d}/{int(r[:, 1].sum()):<5d} "
              f"{r[:, 1].sum() and (r[:, 3] * r[:, 0]).sum() / r[:, 0].sum():6.1f} {r[:, 4].mean():5.2f} "
              f"{r[:, 5].mean():5.2f} {r[:, 6].mean():5.2f} {np.mean(d['cov']):5.1f} "
              f"[{q[0]:.1f} {q[1]:.1f} {q[2]:.1f}] {hist} {r[:, 10].mean():5.0f}")
    if args.zones and sets:
        allg = GraspSet.concat(sets)
        z = derive_contact_zones(allg, hand)
        print(f"zones from {len(allg)} grasps: {z.n_components} connected regions, labels {z.component_labels}")
        print({k: int(v.size) for k, v in z.zones.items()})


if __name__ == "__main__":
    main()
