"""Refinement throughput: this tree against the previous release, side by side, at ContactOpt's settings.

Run by hand: ``python benchmarks/bm_refine.py [--batch 64] [--iterations 250] [--repeats 3] [--prev DIR]
[--profile N]``.
``--prev`` is the ``src`` folder of the previous release, e.g. extracted with
``git archive 9eb75ae src | tar -x -C /tmp/ck_prev`` (then ``--prev /tmp/ck_prev/src``).

Each repeat runs one worker process per code version, alternately (this tree, previous, this tree, ...), each
refining the same perturbed synthetic grasps (OpenHand, a curled hand against spheres, oracle targets) with
method ``contactopt`` (batch 64, 250 iterations, one restart unless ``--restarts``). The clock covers one
``refine()`` call, as ``contactkit refine`` makes it: objects, oracle targets (``targets=`` the ground truth,
about 0.15 s) and the optimisation (printed apart as "refiner"). A warm-up call on one grasp of every object
first builds (or reads from the disk cache) every object's SDF grid, as on any call after an object's first use;
before session 10 it covered two of the four spheres, so the first timed process built the other two (1.5 s).
It prints the medians of the process CPU time and wall time per batch, both ratios (and the median of each
repeat's own ratio, steadier on a shared machine), and the largest difference between the refined parameters of
the two versions (same seed; equal when the change is exact).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def ground_truth(hand, n: int):  # type: ignore[no-untyped-def]
    """Curled hand pressed 1 mm into spheres of radius 3-4.5 cm (object at the origin)."""
    import torch

    from contactkit.geometry.normals import vertex_normals
    from contactkit.hands.anatomy import joint_frames, twist_splay_bend_to_pose
    from contactkit.io.grasps import GraspSet
    from contactkit.objects.primitives import make_primitive

    frames = joint_frames(hand.rest_joints.double(), hand.side)
    rng = np.random.default_rng(0)
    go, hp, tr, objs = [], [], [], []
    radii = [0.03, 0.035, 0.04, 0.045]
    spheres = {r: make_primitive("sphere", radius=r) for r in radii}
    for i in range(n):
        r = radii[i % len(radii)]
        comp = torch.zeros(1, 15, 3, dtype=torch.float64)
        comp[..., 2] = 0.3 + 0.4 * rng.random()
        pose = twist_splay_bend_to_pose(comp, frames).float()
        z = hand.zero_params(1)
        with torch.no_grad():
            out = hand(z.global_orient, pose, z.betas, z.transl)
        palm = torch.as_tensor(hand.annotations.contact_zones["palm"])
        nrm = torch.nn.functional.normalize(vertex_normals(out.vertices[0], hand.faces)[palm].mean(0), dim=0)
        centre = out.vertices[0, palm].mean(0) + nrm * (r - 0.001)
        go.append(np.zeros(3))
        hp.append(pose[0].double().numpy())
        tr.append((-centre).double().numpy())
        objs.append(spheres[r])
    return GraspSet.from_arrays(hand_model=hand.name, side=hand.side, global_orient=np.stack(go),
                                hand_pose=np.stack(hp), betas=np.zeros((n, hand.num_betas)), transl=np.stack(tr),
                                objects=objs, num_betas=hand.num_betas)


def perturb(gt, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n = len(gt)
    return gt.replace(transl=gt.transl + rng.normal(0, 0.01, (n, 3)),
                      global_orient=gt.global_orient + rng.normal(0, math.radians(5), (n, 3)),
                      hand_pose=gt.hand_pose + rng.normal(0, 0.1, (n, 45)))


def mpjpe_mm(hand, a, b) -> float:  # type: ignore[no-untyped-def]
    import torch

    ka, kb = (g.hand_tensors() for g in (a, b))
    with torch.no_grad():
        pa = hand(ka["global_orient"], ka["hand_pose"], ka["betas"], ka["transl"]).keypoints
        pb = hand(kb["global_orient"], kb["hand_pose"], kb["betas"], kb["transl"]).keypoints
    return float((pa - pb).norm(dim=-1).mean()) * 1000.0


def worker(args: argparse.Namespace) -> None:
    """Run one timed refinement with the contactkit found first on ``sys.path``; write a JSON + npz."""
    import torch

    torch.set_num_threads(args.threads)
    from contactkit.hands import load_hand
    from contactkit.refine.api import refine

    hand = load_hand("openhand")
    gt = ground_truth(hand, args.batch)
    noisy = perturb(gt)
    # warm-up: one grasp of every object, so that every object's SDF grid is built (or read from the disk cache)
    # before the clock starts, as on any call after an object's first use
    sub = np.unique(np.asarray(noisy.object_ids), return_index=True)[1]
    refine(noisy.subset(sub), args.method, targets=gt.subset(sub), hand=hand, iterations=2, restarts=1)
    prof = cProfile.Profile() if args.profile else None
    c0, w0 = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
    out = refine(noisy, args.method, targets=gt, hand=hand, batch_size=args.batch, iterations=args.iterations,
                 restarts=args.restarts)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    if prof is not None:
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(args.profile)
    np.savez(args.out + ".npz", global_orient=out.global_orient, hand_pose=out.hand_pose, transl=out.transl)
    Path(args.out + ".json").write_text(json.dumps({
        "cpu_s": cpu, "wall_s": wall, "refiner_s": float(out.attrs["refine"]["time_s"]),
        "mpjpe_in": mpjpe_mm(hand, noisy, gt), "mpjpe_out": mpjpe_mm(hand, out, gt),
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--restarts", type=int, default=1, help="restarts (ContactOpt's preset uses 4)")
    ap.add_argument("--method", default="contactopt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prev", default="/tmp/ck_prev/src", help="src folder of the previous release")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print cProfile's N costliest calls (cumulative) of each timed refinement (slows it)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        sys.path.insert(0, args.worker)
        worker(args)
        return
    sys.path.insert(0, str(HERE))
    from _sidebyside import header

    header(f"refinement, method {args.method}, batch {args.batch}, {args.iterations} iterations, "
           f"restarts {args.restarts}: this tree vs previous release ({args.prev})")
    versions = {"contactkit": str(HERE.parent / "src"), "previous": args.prev}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in versions}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, src in versions.items():
                out = str(Path(tmp) / f"{name}_{r}")
                cmd = [sys.executable, __file__, "--worker", src, "--out", out, "--batch", str(args.batch),
                       "--iterations", str(args.iterations), "--restarts", str(args.restarts),
                       "--method", args.method, "--threads", str(args.threads), "--profile", str(args.profile)]
                env = dict(os.environ, PYTHONPATH=src)
                subprocess.run(cmd, check=True, env=env)
                runs[name].append(json.loads(Path(out + ".json").read_text()))
        a, b = (np.load(str(Path(tmp) / f"{k}_0.npz")) for k in versions)
        diff = {k: float(np.abs(a[k] - b[k]).max()) for k in a.files}
    med = {k: {m: statistics.median(x.get(m, math.nan) for x in v) for m in ("cpu_s", "wall_s", "refiner_s")}
           for k, v in runs.items()}
    for k in versions:
        r0 = runs[k][0]
        print(f"{k:<11} CPU {med[k]['cpu_s']:7.2f} s/batch ({1000 * med[k]['cpu_s'] / args.iterations:6.1f} ms/iter)"
              f"   wall {med[k]['wall_s']:7.2f} s (refiner {med[k]['refiner_s']:.2f} s)"
              f"   MPJPE {r0['mpjpe_in']:.2f} -> {r0['mpjpe_out']:.2f} mm")
    for k in versions:
        print(f"{k:<11} per repeat: CPU " + ", ".join(f"{x['cpu_s']:.2f}" for x in runs[k]) + " s; wall "
              + ", ".join(f"{x['wall_s']:.2f}" for x in runs[k]) + " s")
    for clock in ("cpu_s", "wall_s"):
        ratio = med["previous"][clock] / med["contactkit"][clock]
        pairs = [p[clock] / c[clock] for c, p in zip(runs["contactkit"], runs["previous"], strict=True)]
        print(f"ratio previous / contactkit ({clock[:-2]}): {ratio:.2f}x (median of the {len(pairs)} repeats' own "
              f"ratios {statistics.median(pairs):.2f}x)")
    print("largest parameter difference " + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))


if __name__ == "__main__":
    main()
