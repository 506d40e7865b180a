"""Refinement throughput: ``contactopt`` settings (batch 64, 250 iterations) and the other methods.

Run by hand: ``python benchmarks/bm_refine.py [--batch 64] [--iterations 250] [--methods contactopt,...]``.
Prints one row per (method, device): wall time per batch, per grasp and per iteration, and the MPJPE before
and after refinement on perturbed synthetic grasps (OpenHand, a curled hand against a sphere, oracle targets).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from contactkit.geometry.normals import vertex_normals  # noqa: E402
from contactkit.hands import load_hand  # noqa: E402
from contactkit.hands.anatomy import joint_frames, twist_splay_bend_to_pose  # noqa: E402
from contactkit.io.grasps import GraspSet  # noqa: E402
from contactkit.objects.primitives import make_primitive  # noqa: E402
from contactkit.refine.api import refine  # noqa: E402


def ground_truth(hand, n: int) -> GraspSet:
    """Curled hand pressed 1 mm into spheres of radius 3-4.5 cm (object at the origin)."""
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


def perturb(gt: GraspSet, seed: int = 0) -> GraspSet:
    rng = np.random.default_rng(seed)
    n = len(gt)
    return gt.replace(transl=gt.transl + rng.normal(0, 0.01, (n, 3)),
                      global_orient=gt.global_orient + rng.normal(0, math.radians(5), (n, 3)),
                      hand_pose=gt.hand_pose + rng.normal(0, 0.1, (n, 45)))


def mpjpe_mm(hand, a: GraspSet, b: GraspSet, device: str) -> float:
    ka, kb = (g.hand_tensors(device=device) for g in (a, b))
    with torch.no_grad():
        pa = hand(ka["global_orient"], ka["hand_pose"], ka["betas"], ka["transl"]).keypoints
        pb = hand(kb["global_orient"], kb["hand_pose"], kb["betas"], kb["transl"]).keypoints
    return float((pa - pb).norm(dim=-1).mean()) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--restarts", type=int, default=1, help="restarts (ContactOpt's preset uses 4)")
    ap.add_argument("--methods", default="contactopt")
    ap.add_argument("--devices", default="cpu,cuda")
    args = ap.parse_args()
    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"iterations {args.iterations}, restarts {args.restarts}")
    print(f"{'method':<12}{'device':<8}{'s/batch':>10}{'ms/grasp':>10}{'ms/iter':>10}{'MPJPE in':>10}{'MPJPE out':>10}")
    for device in devices:
        hand = load_hand("openhand").to(device)
        gt = ground_truth(hand.to("cpu"), args.batch)
        hand = hand.to(device)
        noisy = perturb(gt)
        for method in args.methods.split(","):
            # warm-up (SDF grids, caches, kernels)
            refine(noisy.subset(np.arange(min(2, len(noisy)))), method, targets=gt.subset(np.arange(min(2, len(gt)))),
                   hand=hand, device=device, iterations=2, restarts=1)
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = refine(noisy, method, targets=gt, hand=hand, device=device, batch_size=args.batch,
                         iterations=args.iterations, restarts=args.restarts)
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            iters = np.isfinite(out.loss_traces).sum(1).max()
            print(f"{method:<12}{device:<8}{dt:>10.2f}{1000 * dt / len(gt):>10.1f}{1000 * dt / max(1, iters):>10.1f}"
                  f"{mpjpe_mm(hand, noisy, gt, device):>10.2f}{mpjpe_mm(hand, out, gt, device):>10.2f}")


if __name__ == "__main__":
    main()
