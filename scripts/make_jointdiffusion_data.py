"""Split synthesised ground truth by object for JointDiffusion (the shipped DeepContact's split, fixed beforehand).

Reads ``SYNTH/{object}.npz`` (as ``scripts/train_shipped_models.py --synth-only`` writes them) and writes
``OUT/gt_{train,val,test}.npz``, ``OUT/noisy_test.npz`` (4 ContactOpt-protocol copies per test grasp, seed 1, linked
to ``gt_test.npz``) and ``OUT/split.json``. The test and validation objects are the enlarged split of
``docs/model_card.md`` (so the held-out objects are unseen by both JointDiffusion and the shipped DeepContact).

Usage: ``PYTHONPATH=src python scripts/make_jointdiffusion_data.py --synth /work/data/i16/dc_data/synth --out DIR``

``--rendered DATASET`` instead reads the ground-truth grasps of a rendered dataset (``contactkit dataset``,
``DATASET/shards/*/grasps.npz``) with the dataset's own object split (``dataset.json``); shards not yet written are
skipped (listed in ``split.json``). Test objects are the dataset's test split minus the bundled objects (those may
have trained the shipped DeepContact that drives the ``contactopt`` baseline). ``--extra DATASET`` (with
``--rendered``) adds to training the written grasps of another rendered dataset's objects that are in the training
split of **both** datasets (objects held out by either are never added; the two datasets split independently).
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


def from_rendered(root: Path) -> tuple[dict[str, list[GraspSet]], dict[str, list[str]]]:
    """Grasps of a rendered dataset's written shards, by split (``test`` without bundled objects)."""
    meta = json.loads((root / "dataset.json").read_text())
    parts: dict[str, list[GraspSet]] = {"train": [], "val": [], "test": []}
    names: dict[str, list[str]] = {"train": [], "val": [], "test": [], "not_written": [], "bundled_test_dropped": []}
    for obj in meta["objects"]:
        path = root / "shards" / f"{obj['shard']:05d}" / "grasps.npz"
        if not path.is_file():
            names["not_written"].append(obj["object_id"])
            continue
        if obj["split"] == "test" and obj["object_id"].startswith("bundled/"):
            names["bundled_test_dropped"].append(obj["object_id"])
            continue
        parts[obj["split"]].append(load_grasps(path))
        names[obj["split"]].append(obj["object_id"])
    return parts, names


def extra_train(root: Path, extra: Path) -> tuple[list[GraspSet], list[str]]:
    """Written grasps of ``extra``'s objects that both ``root`` and ``extra`` put in their training split."""
    meta = json.loads((root / "dataset.json").read_text())
    train = {o["object_id"] for o in meta["objects"] if o["split"] == "train"}
    sets, names = [], []
    for obj in json.loads((extra / "dataset.json").read_text())["objects"]:
        path = extra / "shards" / f"{obj['shard']:05d}" / "grasps.npz"
        if obj["split"] == "train" and obj["object_id"] in train and path.is_file():
            sets.append(load_grasps(path))
            names.append(obj["object_id"])
    return sets, names


def main() -> int:
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--synth", type=Path)
    src.add_argument("--rendered", type=Path)
    ap.add_argument("--extra", type=Path, help="with --rendered: a second rendered dataset adding training grasps")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.extra is not None and args.rendered is None:
        raise SystemExit("--extra needs --rendered")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rendered is not None:
        parts, split = from_rendered(args.rendered)
        if args.extra is not None:
            sets, split[f"extra_train ({args.extra})"] = extra_train(args.rendered, args.extra)
            parts["train"] += sets
        for part, sets in parts.items():
            save_grasps(args.out / f"gt_{part}.npz", GraspSet.concat(sets))
        return _finish(args.out, split)
    names = sorted(p.stem for p in args.synth.glob("*.npz"))
    missing = [n for n in TEST + VAL if n not in names]
    if missing:
        raise SystemExit(f"missing synthesised objects: {missing}")
    split = {"test": TEST, "val": VAL, "train": [n for n in names if n not in TEST + VAL]}
    for part, objs in split.items():
        save_grasps(args.out / f"gt_{part}.npz", GraspSet.concat([load_grasps(args.synth / f"{n}.npz") for n in objs]))
    return _finish(args.out, split)


def _finish(out: Path, split: dict[str, list[str]]) -> int:
    """Noisy test copies (4 per grasp, ContactOpt protocol, seed 1) and ``split.json``."""
    gt_test = load_grasps(out / "gt_test.npz")
    noisy = perturb(gt_test, "contactopt", copies=4, seed=1, hand=load_hand(gt_test.hand_model, gt_test.side),
                    reference=(out / "gt_test.npz").resolve())
    save_grasps(out / "noisy_test.npz", noisy)
    sizes = {p: len(load_grasps(out / f"gt_{p}.npz")) for p in ("train", "val", "test")}
    (out / "split.json").write_text(json.dumps({"objects": split, "grasps": sizes}, indent=2))
    print(json.dumps(sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
