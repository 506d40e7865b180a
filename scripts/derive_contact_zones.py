"""Derive and ship ObMan's contact zones from grasp statistics for a bundled hand (paper 001 §3.3).

Synthesises grasps of the estimators' *training* objects (never the held-out ones), counts per hand vertex how
often it lies within 3 mm of the object, keeps vertices above 8 % and groups them into the six zones
(:func:`contactkit.synth.zones.derive_contact_zones`, ``per_finger`` mode), and writes
``src/contactkit/synth/contact_zones/<hand>_<side>.npz`` (one int64 array per zone; a few kB).

Usage: ``PYTHONPATH=src python scripts/derive_contact_zones.py --work /work/data/i12/zones [--per-object 10]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from contactkit.hands import load_hand
from contactkit.io.atomic import atomic_savez
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps
from contactkit.synth.benchmark import benchmark_objects, object_seed
from contactkit.synth.synthesis import SynthesisConfig, synthesize
from contactkit.synth.zones import ZONE_NAMES, derive_contact_zones, shipped_zones_path

#: Training objects of the shipped estimators' split (docs/model_card.md); none is held out.
TRAINING_OBJECTS = (
    "cracker_box", "mug", "master_chef_can", "bleach_cleanser", "scissors", "foam_brick", "sphere:radius=0.035",
    "cylinder:radius=0.03,height=0.18", "box:extents=0.04x0.08x0.12", "torus", "capsule:radius=0.03,height=0.06",
    "sphere:radius=0.05",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the synthesised grasps (outside git)")
    ap.add_argument("--hand", default="openhand")
    ap.add_argument("--side", default="right")
    ap.add_argument("--per-object", type=int, default=10)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--max-objects", type=int, default=len(TRAINING_OBJECTS), help="use the first K objects")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    specs = dict(benchmark_objects())
    cfg = SynthesisConfig(batch_size=16, iterations=120, simulate=False)
    sets: list[GraspSet] = []
    for name in TRAINING_OBJECTS[: args.max_objects]:
        path = args.work / f"{args.hand}_{args.side}_{name.replace(':', '_').replace('=', '').replace(',', '_')}.npz"
        if not path.is_file():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = synthesize(specs.get(name, name), args.per_object, hand=args.hand, side=args.side,
                                 seed=object_seed(args.seed, name), config=cfg, max_batches=4)
            print(f"{name}: {len(res.grasps)} grasps in {time.perf_counter() - t0:.0f} s", flush=True)
            if len(res.grasps) == 0:
                continue
            save_grasps(path, res.grasps)
        sets.append(load_grasps(path))
    grasps = GraspSet.concat(sets)
    hand = load_hand(args.hand, args.side)
    zones = derive_contact_zones(grasps, hand)
    out = shipped_zones_path(args.hand, args.side)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_savez(out, **{z: zones.zones[z] for z in ZONE_NAMES})
    sizes = {z: int(zones.zones[z].size) for z in ZONE_NAMES}
    print(f"{len(grasps)} grasps on {len(sets)} objects -> {out} {sizes}; "
          f"vertices >= 8 %: {int((zones.frequency >= 0.08).sum())}, max frequency {np.max(zones.frequency):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
