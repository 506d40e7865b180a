"""Synthesise the demo's bundled example set: a few ground-truth grasps on every bundled object.

``contactkit demo`` starts from this set (``contactkit/report/demo_data/demo_grasps.npz``) so that it finishes
in a few minutes; ``contactkit demo --full`` synthesises its own, larger set with the same settings. The file
keeps what a ground truth needs (poses, objects, hand contact maps) and leaves out what is recomputed from it
(hand vertices, sampled object points and their contact), to stay small. Run from the repository root
(resumable: each object's synthesis keeps its parts under ``--work``):

    python scripts/make_demo_set.py [--per-object 2] [--work /tmp/demo_synth]

The settings (seed 0, 16 candidates per batch, at most 12 batches per object) are the full demo's
(:func:`contactkit.report.pipeline.demo_config`); the file records them in ``attrs["demo_set"]``.
Took 333 s for 2 grasps on each of the 3 bundled objects on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from contactkit.io.grasps import save_grasps
from contactkit.report.pipeline import demo_config, demo_set_path, synthesise_ground_truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-object", type=int, default=2, help="grasps per object (default: 2)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/contactkit_demo_synth"),
                    help="resumable synthesis folder (default: /tmp/contactkit_demo_synth)")
    ap.add_argument("--out", type=Path, default=demo_set_path(), help="output file (default: the bundled set)")
    args = ap.parse_args()
    config = demo_config(full=True)
    config.grasps_per_object = args.per_object
    t0 = time.perf_counter()
    gt, stats = synthesise_ground_truth(config, args.work, log=print)
    attrs = {**gt.attrs, "demo_set": {"objects": config.objects, "grasps_per_object": args.per_object,
                                      "seed": config.seed, "synthesis": config.synthesis,
                                      "max_batches": config.synthesis_max_batches,
                                      "script": "scripts/make_demo_set.py"}}
    keep = gt.replace(attrs=attrs, hand_vertices=None, object_points=None, object_contact=None)
    save_grasps(args.out, keep)
    print(f"wrote {len(keep)} grasps on {sorted(set(keep.object_ids))} to {args.out} "
          f"({args.out.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.0f} s")
    print({k: v for k, v in stats.items()})


if __name__ == "__main__":
    main()
