"""Split synthesised ground truth by object for JointDiffusion (the shipped DeepContact's split, fixed beforehand).

Reads ``SYNTH/{object}.npz`` (as ``scripts/train_shipped_models.py --synth-only`` writes them) and writes
``OUT/gt_{train,val,test}.npz``, ``OUT/noisy_test.npz`` (4 ContactOpt-protocol copies per test grasp, seed 1, linked
to ``gt_test.npz``) and ``OUT/split.json``. The test and validation objects are the enlarged split of
``docs/model_card.md`` (so the held-out objects are unseen by both JointDiffusion and the shipped DeepContact).

Usage: ``PYTHONPATH=src python scripts/make_jointdiffusion_data.py --synth /work/data/i16/dc_data/synth --out DIR``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from contactkit.hands import load_hand  # noqa: E402
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps  # noqa: E402
from contactkit.synth.perturb import perturb  # noqa: E402

TEST = ["box", "box_extents0.03x0.06x0.15", "capsule_radius0.022_height0.1", "cylinder_radius0.015_height0.16",
        "mustard_bottle", "sphere_radius0.0425", "sphere_radius0.06", "torus_major_radius0.035_minor_radius0.01"]
VAL = ["banana", "box_extents0.05x0.05x0.05", "box_extents0.08x0.08x0.04", "capsule_radius0.018_height0.12",
       "cylinder_radius0.025_height0.14", "sphere_radius0.04"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--synth", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    names = sorted(p.stem for p in args.synth.glob("*.npz"))
    missing = [n for n in TEST + VAL if n not in names]
    if missing:
        raise SystemExit(f"missing synthesised objects: {missing}")
    split = {"test": TEST, "val": VAL, "train": [n for n in names if n not in TEST + VAL]}
    args.out.mkdir(parents=True, exist_ok=True)
    for part, objs in split.items():
        save_grasps(args.out / f"gt_{part}.npz", GraspSet.concat([load_grasps(args.synth / f"{n}.npz") for n in objs]))
    gt_test = load_grasps(args.out / "gt_test.npz")
    noisy = perturb(gt_test, "contactopt", copies=4, seed=1, hand=load_hand("openhand"),
                    reference=(args.out / "gt_test.npz").resolve())
    save_grasps(args.out / "noisy_test.npz", noisy)
    sizes = {p: len(load_grasps(args.out / f"gt_{p}.npz")) for p in split}
    (args.out / "split.json").write_text(json.dumps({"objects": split, "grasps": sizes}, indent=2))
    print(json.dumps(sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
