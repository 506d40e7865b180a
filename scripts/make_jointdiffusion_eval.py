"""Evaluation sets for JointDiffusion refinement on objects no model has seen, without rendering.

For each object of a ``random-urdfs`` range, synthesise up to ``--grasps`` accepted grasps (``synthesize``: the
optimisation-based synthesiser, its acceptance checks; seed ``--seed``, at most ``--max-batches`` batches per
object; an object with no accepted grasp is skipped and listed), then make ``--copies`` ContactOpt-protocol noisy
copies of every grasp (seed ``--seed``). Writes ``OUT/gt_test.npz`` and ``OUT/noisy_test.npz`` (the names
``benchmarks/bm_jointdiffusion.py --data OUT`` reads: the set it evaluates, whether validation or test) and
``OUT/split.json`` (objects used and skipped, grasp counts, the command's settings). Per-object grasps are kept in
``OUT/objects/`` so a rerun resumes.

random-urdfs 500-999 are in no training set of the shipped models (JointDiffusion: v3 used 0-159, v4 0-499;
DeepContact: primitives and bundled objects). Session 10 (docs/jointdiffusion.md)::

    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/make_jointdiffusion_eval.py \
        --objects random-urdfs:500-539 --copies 2 --out /work/data/i16/s10/val    # validation (tuning, diagnosis)
    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/make_jointdiffusion_eval.py \
        --objects random-urdfs:600-659 --copies 2 --out /work/data/i16/s10/test   # held-out test (evaluated once)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from contactkit.errors import ContactkitError  # noqa: E402
from contactkit.hands import load_hand  # noqa: E402
from contactkit.io.atomic import atomic_write_text  # noqa: E402
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps  # noqa: E402
from contactkit.objects.library import check_object, resolve_objects  # noqa: E402
from contactkit.synth.perturb import perturb  # noqa: E402
from contactkit.synth.synthesis import SynthesisConfig, synthesize  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", required=True, help="random-urdfs:A-B")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--grasps", type=int, default=1, help="accepted grasps per object (default 1)")
    ap.add_argument("--copies", type=int, default=1, help="noisy copies per grasp (default 1)")
    ap.add_argument("--max-batches", type=int, default=2, help="synthesis batches per object (default 2)")
    ap.add_argument("--batch-size", type=int, default=16, help="candidates per batch (default 16)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.objects.startswith("random-urdfs:"):
        raise SystemExit(f"--objects must be random-urdfs:A-B, got {args.objects!r}")
    cfg = SynthesisConfig().with_updates(batch_size=args.batch_size)
    (args.out / "objects").mkdir(parents=True, exist_ok=True)
    used: list[str] = []
    skipped: dict[str, str] = {}
    sets = []
    for entry in resolve_objects(args.objects):
        stem = entry.object_id.replace("/", "_")
        path, none = args.out / "objects" / f"{stem}.npz", args.out / "objects" / f"{stem}.none"
        if none.is_file():
            skipped[entry.object_id] = none.read_text().strip()
            continue
        if not path.is_file():
            t0 = time.perf_counter()
            mesh, check = check_object(entry)  # the dataset builder's object checks (loads, watertight, size)
            try:
                if mesh is None or not check.ok:
                    raise ContactkitError(f"object check: {check.reason}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = synthesize(mesh, args.grasps, seed=args.seed, config=cfg, max_batches=args.max_batches)
            except ContactkitError as e:  # failed check, or no grasp accepted
                atomic_write_text(none, f"{e}\n")
                skipped[entry.object_id] = str(e)
                print(f"{entry.object_id}: skipped ({time.perf_counter() - t0:.0f} s): {e}", flush=True)
                continue
            save_grasps(path, res.grasps)
            print(f"{entry.object_id}: {len(res.grasps)} grasps ({time.perf_counter() - t0:.0f} s)", flush=True)
        sets.append(load_grasps(path))
        used.append(entry.object_id)
    gt = GraspSet.concat(sets)
    save_grasps(args.out / "gt_test.npz", gt)
    noisy = perturb(gt, "contactopt", copies=args.copies, seed=args.seed,
                    hand=load_hand(gt.hand_model, gt.side), reference=(args.out / "gt_test.npz").resolve())
    save_grasps(args.out / "noisy_test.npz", noisy)
    info = {"objects": args.objects, "used": used, "skipped": skipped, "grasps": len(gt), "noisy": len(noisy),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    (args.out / "split.json").write_text(json.dumps(info, indent=2))
    print(json.dumps({"grasps": len(gt), "noisy": len(noisy), "skipped": len(skipped)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
