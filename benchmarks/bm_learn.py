"""Benchmark of the learned contact estimators: inference time per grasp and training throughput.

Run by hand: ``python benchmarks/bm_learn.py [--repeats 10] [--threads 1]``. Prints, for DeepContact (with the
contact prior that `contactkit train` adds) and PiCR, with the default (shipped, small) and the large backbone: the
time of feature extraction and of the network per grasp at batch 1 and batch 8 (CPU, and CUDA when available),
and training throughput (grasps/s, one optimiser step of a batch of 8 with backward). Inputs are an OpenHand
grasp of a 4 cm sphere with 2048 object points (3207 points in all). Timings are medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _median_time(fn, repeats: int, sync) -> float:  # type: ignore[no-untyped-def]
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from contactkit.hands import load_hand
    from contactkit.learn.estimators import build_network, inputs_for, network_config
    from contactkit.learn.train import training_loss

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hand = load_hand("openhand")
    gen = torch.Generator().manual_seed(0)
    out = hand(0.3 * torch.randn(8, 3, generator=gen), 0.2 * torch.randn(8, 45, generator=gen), None,
               torch.zeros(8, 3))
    verts = out.vertices
    normals = torch.nn.functional.normalize(torch.randn(8, 2048, 3, generator=gen), dim=-1)
    pts = verts.mean(1, keepdim=True) + 0.04 * normals
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{'device':6} {'network':12} {'size':6} {'params':>8} {'feat ms/g':>10} {'b1 net ms':>10} "
          f"{'b8 net ms/g':>12} {'total b1 ms':>12} {'train g/s':>10}")
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        feats = inputs_for(hand, verts, pts, normals)
        t_feat1 = _median_time(lambda: inputs_for(hand, verts[:1], pts[:1], normals[:1]), args.repeats, sync)
        xyz, f = feats.xyz.to(device), feats.features.to(device)
        for small in (True, False):
            for kind in ("deepcontact", "picr"):
                torch.manual_seed(0)
                # DeepContact as `contactkit train` makes it: a residual over the object-conditioned contact prior.
                prior = hand.num_verts if kind == "deepcontact" else 0
                net = build_network(kind, network_config(kind, small=small, prior_hand_vertices=prior,
                                                         prior_shape=prior > 0))
                net = net.to(device).eval()
                n_params = sum(p.numel() for p in net.parameters())
                with torch.no_grad():
                    t1 = _median_time(lambda: net(xyz[:1], f[:1]), args.repeats, sync)  # noqa: B023
                    t8 = _median_time(lambda: net(xyz, f), max(2, args.repeats // 3), sync) / 8  # noqa: B023
                net.train()
                opt = torch.optim.Adam(net.parameters())
                n = hand.num_verts
                batch = {"xyz": xyz, "features": f, "n_hand": n,
                         "contact": torch.rand(8, xyz.shape[1], device=device),
                         "object_vc": (torch.rand(8, 2048, device=device) > 0.9).float(),
                         "object_region": torch.randint(0, 17, (8, 2048), device=device),
                         "object_elasticity": torch.rand(8, 2048, device=device)}

                def step() -> None:
                    loss = training_loss(kind, net, batch)  # noqa: B023
                    opt.zero_grad()  # noqa: B023
                    loss.backward()
                    opt.step()  # noqa: B023

                t_step = _median_time(step, max(2, args.repeats // 3), sync)
                print(f"{device:6} {kind:12} {'small' if small else 'large':6} {n_params:8d} "
                      f"{1e3 * t_feat1:10.1f} {1e3 * t1:10.1f} {1e3 * t8:12.1f} {1e3 * (t_feat1 + t1):12.1f} "
                      f"{8 / t_step:10.1f}")


if __name__ == "__main__":
    main()
