"""Pack JointDiffusion's synthesised grasps into a small parameter-only file, and unpack it into grasp files.

``pack BUILD [BUILD ...] --out FILE`` collects the per-object grasp files of one or more build folders of
``scripts/make_jointdiffusion_eval.py`` (``BUILD/objects/random-urdfs_NNN.npz``; ``.none`` marks a skipped
object, with the reason) into one ``contactkit.grasp_params`` file (``docs/grasp_format.md``): objects in
ascending order, grasps in their build order (so the set equals the build's ``gt_test.npz`` when one folder is
complete), each object named by its library spec ``random-urdfs:K-K`` and content hash. The file's ``attrs``
record the skipped objects and why, each folder's ``split.json`` (settings, objects spec) or that it had none
(a build still running), and the pack command.

``unpack FILE [FILE ...] --out DIR [--copies K --seed S]`` rebuilds the grasps (objects loaded from the pybullet
wheel and checked against their hashes; the synthesiser's hand vertices and contact maps recomputed, value for
value) into ``DIR/gt_test.npz`` and, with ``--copies K``, ``K`` ContactOpt-protocol noisy copies per grasp in
``DIR/noisy_test.npz`` linked to it (as ``make_jointdiffusion_eval.py`` makes them). Several files (parts of one
set built in different sessions, on disjoint objects) are concatenated in the order given; a set that shares an
object between files is refused. Then::

    contactkit train jointdiffusion --data DIR/gt_test.npz ...
    python benchmarks/bm_jointdiffusion.py --data DIR ...

Example (the committed validation set, ``data/jointdiffusion/README.md``)::

    PYTHONPATH=src python scripts/jointdiffusion_grasps.py pack /work/data/i16/s11/val --out data/jointdiffusion/val.npz
    PYTHONPATH=src python scripts/jointdiffusion_grasps.py unpack data/jointdiffusion/val.npz --out /tmp/val --copies 2
    # a set built in two parts:
    PYTHONPATH=src python scripts/jointdiffusion_grasps.py unpack data/jointdiffusion/train.npz part2.npz --out /tmp/t
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from contactkit.hands import load_hand  # noqa: E402
from contactkit.io.grasp_params import load_grasp_params, read_grasp_params_header, save_grasp_params  # noqa: E402
from contactkit.io.grasps import GraspSet, load_grasps, save_grasps  # noqa: E402
from contactkit.synth.perturb import perturb  # noqa: E402
from contactkit.synth.synthesis import with_contact_maps  # noqa: E402

_STEM = re.compile(r"random-urdfs_(\d{3})")
#: the optional arrays the synthesiser stores and :func:`with_contact_maps` recomputes
CONTACT_FIELDS = ("hand_vertices", "hand_contact", "object_points", "object_contact")


def pack(folders: list[Path], out: Path, command: str) -> dict[str, int]:
    """Write the grasps of ``folders`` to ``out``; returns the grasp, object and skipped counts."""
    found: dict[int, tuple[Path, Path]] = {}  # random-urdfs index -> (file, its folder)
    builds = []
    for folder in folders:
        if not (folder / "objects").is_dir():
            raise SystemExit(f"{folder}: no objects/ folder (not a make_jointdiffusion_eval.py build)")
        for f in sorted((folder / "objects").iterdir()):
            m = _STEM.fullmatch(f.stem)
            if f.suffix not in (".npz", ".none") or m is None:
                continue  # temporary files of a running build
            k = int(m.group(1))
            if k in found:
                raise SystemExit(f"random-urdfs/{k:03d} appears twice: {found[k][0]} and {f}")
            found[k] = (f, folder)
        split = folder / "split.json"
        if not split.is_file():
            print(f"note: {folder} has no split.json (build still running?): packing the objects written so far",
                  file=sys.stderr)
        builds.append({"folder": str(folder), "complete": split.is_file(),
                       "split": json.loads(split.read_text()) if split.is_file() else None})
    sets: list[GraspSet] = []
    specs: list[str] = []
    skipped: dict[str, str] = {}
    for k in sorted(found):
        f = found[k][0]
        if f.suffix == ".none":
            skipped[f"random-urdfs/{k:03d}"] = f.read_text().strip()
            continue
        g = load_grasps(f)
        sets.append(g)
        specs += [f"random-urdfs:{k}-{k}"] * len(g)
    if not sets:
        raise SystemExit(f"no grasps in {', '.join(map(str, folders))}")
    gt = GraspSet.concat(sets)
    missing = [name for name in CONTACT_FIELDS if getattr(gt, name) is None]
    if missing:
        raise SystemExit(f"the grasps lack {missing}: not the synthesiser's output")
    attrs = {
        "content": "JointDiffusion ground truth synthesised by contactkit's grasp synthesiser (synthesize), "
                   "one GraspSet per random-urdfs object, concatenated in ascending object order",
        "command": command,
        "builds": builds,
        "objects_used": len(sets),
        "skipped": skipped,
        "n_object_points": int(gt.object_points.shape[1]),  # type: ignore[union-attr]
    }
    save_grasp_params(out, gt, specs, attrs=attrs)
    return {"grasps": len(gt), "objects": len(sets), "skipped": len(skipped)}


def unpack(paths: list[Path], out: Path, copies: int, seed: int) -> dict[str, int]:
    """Rebuild ``DIR/gt_test.npz`` (and ``DIR/noisy_test.npz`` when ``copies`` > 0) from parameter files."""
    parts: list[GraspSet] = []
    owner: dict[str, Path] = {}  # object content hash -> the file that holds it
    for path in paths:
        header = read_grasp_params_header(path)
        part = load_grasp_params(path)
        for obj in sorted(set(part.object_ids)):
            if obj in owner:
                raise SystemExit(f"object {part.objects[obj].name} ({obj}) is in both {owner[obj]} and {path}: "
                                 "the parts of one set must hold disjoint objects")
            owner[obj] = path
        dropped = header["dropped"]
        if set(CONTACT_FIELDS) <= set(dropped):
            part = with_contact_maps(part, load_hand(part.hand_model, part.side),
                                     n_object_points=int(dropped["object_points"][1]))
        parts.append(part)
    gt = GraspSet.concat(parts)
    hand = load_hand(gt.hand_model, gt.side)
    out.mkdir(parents=True, exist_ok=True)
    save_grasps(out / "gt_test.npz", gt)
    sizes = {"grasps": len(gt)}
    if copies > 0:
        noisy = perturb(gt, "contactopt", copies=copies, seed=seed, hand=hand,
                        reference=(out / "gt_test.npz").resolve())
        save_grasps(out / "noisy_test.npz", noisy)
        sizes["noisy"] = len(noisy)
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="build folders -> one parameter-only grasp file")
    p.add_argument("folders", type=Path, nargs="+", help="make_jointdiffusion_eval.py --out folders")
    p.add_argument("--out", type=Path, required=True, help="the grasp parameter file (.npz)")
    u = sub.add_parser("unpack", help="parameter files -> DIR/gt_test.npz [+ DIR/noisy_test.npz]")
    u.add_argument("params", type=Path, nargs="+", help="parameter files (parts on disjoint objects)")
    u.add_argument("--out", type=Path, required=True, help="output folder")
    u.add_argument("--copies", type=int, default=0, help="ContactOpt-protocol noisy copies per grasp (default 0)")
    u.add_argument("--seed", type=int, default=0, help="seed of the noisy copies (default 0, as the builds)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.cmd == "pack":
        command = shlex.join(["python", "scripts/jointdiffusion_grasps.py", *sys.argv[1:]])
        sizes = pack(args.folders, args.out, command)
    else:
        if args.copies < 0:
            raise SystemExit(f"--copies must be >= 0, got {args.copies}")
        sizes = unpack(args.params, args.out, args.copies, args.seed)
    print(json.dumps({**sizes, "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
