"""CHOIR encoding: contactkit's k-d tree encoding against the dense definition, side by side.

Batch 64 OpenHand grasps, 2048 object points each (sampled from a YCB mesh in ``../shared`` when present, else
an icosphere), hands posed around the object. Two workloads:

- 64 distinct objects (64 different point samples), the hardest case;
- one object with 64 hand poses (perturbed copies of a grasp, as a training set makes them): the basis-point
  distances and the search tree are computed once.

The reference is the dense naive twin from ``tests/contact/test_choir_fast.py`` (a (B, V, P) cone test, a
(B, M, P) ``cdist``, a one-hot Gaussian fit). Both are timed in alternation; values are compared too.

    python benchmarks/bm_choir.py [--repeats 3] [--threads 1] [--batch 64]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import trimesh

from _sidebyside import header, interleaved, load_naive, row
from contactkit.contact.choir import cone_contact_weights, encode
from contactkit.geometry.normals import vertex_normals
from contactkit.hands import load_hand

YCB = Path(__file__).resolve().parents[1] / ".." / "shared" / "assets" / "objects" / "ycb"


def scene(batch: int, shared: bool, mesh_name: str) -> tuple[torch.Tensor, ...]:
    path = YCB / f"{mesh_name}.obj"
    mesh = trimesh.load(str(path), force="mesh") if path.is_file() else trimesh.creation.icosphere(4, 0.04)
    n_obj = 1 if shared else batch
    pts = np.stack([trimesh.sample.sample_surface(mesh, 2048, seed=i)[0] for i in range(n_obj)])
    pts_t = torch.tensor(pts - pts.mean((0, 1)), dtype=torch.float32).expand(batch, -1, -1).contiguous()
    hand = load_hand("openhand")
    g = torch.Generator().manual_seed(0)
    out = hand(0.3 * torch.randn(batch, 3, generator=g), 0.3 * torch.randn(batch, 45, generator=g), None,
               torch.zeros(batch, 3))
    # put the palm on the object: shift each hand so its centroid sits 1 cm inside the nearest object point
    verts = out.vertices - out.vertices.mean(1, keepdim=True)
    d = torch.nn.functional.normalize(torch.randn(batch, 3, generator=g), dim=-1)
    far = (pts_t * d[:, None]).sum(-1).amax(1)
    verts = verts + (d * (far + 0.01)[:, None])[:, None]
    normals = vertex_normals(verts, hand.faces)
    return pts_t, verts, normals, hand.anchors(verts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mesh", default="025_mug")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    naive = load_naive("tests/contact/test_choir_fast.py")
    header(f"CHOIR encoding, OpenHand, batch {args.batch}, 2048 object points, float32 ({args.mesh})")
    for shared in (False, True):
        pts, verts, normals, anchors = scene(args.batch, shared, args.mesh)
        fast = encode(pts, verts, normals, anchors)
        ref = naive.encode_naive(pts, verts, normals, anchors, 16)
        err = max(float((fast.object_sq_dist - ref[1]).abs().max()), float((fast.gauss_mean - ref[4]).abs().max()))
        same_counts = torch.equal(cone_contact_weights(verts, normals, pts), ref[3])
        med = interleaved({
            "ours": lambda p=pts, v=verts, n=normals, a=anchors: encode(p, v, n, a),
            "ref": lambda p=pts, v=verts, n=normals, a=anchors: naive.encode_naive(p, v, n, a, 16),
        }, args.repeats, warmup=args.warmup)
        label = "one object, 64 hand poses" if shared else "64 distinct objects"
        print(row(label, med["ours"], med["ref"], per=args.batch, ref_name="dense") +
              f"   max |diff| {err:.1e}, counts equal {same_counts}, contacts {int(ref[3].sum())}")


if __name__ == "__main__":
    main()
