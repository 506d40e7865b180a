"""Why the refinement's neighbour search stays a k-d tree: the session-10 measurements, reproducible.

Run by hand: ``python benchmarks/study_refine_search.py [--capture FILE.npz] [--every 5]``.

It captures the object-to-hand searches of one ``bm_refine.py`` refinement (``contactopt``, batch 64, 250
iterations: 64 x 2048 object samples against 64 x 1159 OpenHand vertices per search) and times pykdtree on them
(process CPU time, one thread): the cost per query by distance to the hand, other leaf sizes, a distance bound from
the previous search's pair (in groups of queries, one bound per call), and the best case of any exact vertex
pruning (trees on only the vertices that are some query's nearest), counting the queries whose index changes
(exact float32 ties, resolved by pykdtree's traversal order). Not a test and not a benchmark of contactkit's own
code; ``docs/refinement.md`` ("Performance") and ``benchmarks/README.md`` (session 10, i19c) hold the figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def capture(path: str) -> None:
    """Run one refinement and save every batch-sized search: queries ``q``, hand vertices ``p``, indices ``idx``."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import bm_refine
    import contactkit.geometry.knn as knn
    from contactkit.hands import load_hand
    from contactkit.refine.api import refine

    hand = load_hand("openhand")
    gt = bm_refine.ground_truth(hand, 64)
    noisy = bm_refine.perturb(gt)
    found: list[tuple[np.ndarray, ...]] = []
    search = knn.nearest_indices

    def recording(query: torch.Tensor, points: torch.Tensor, **kw: object) -> torch.Tensor:
        idx = search(query, points, **kw)  # type: ignore[arg-type]
        if query.shape[0] == 64:
            found.append((query.detach().numpy().copy(), points.detach().numpy().copy(), idx.numpy().copy()))
        return idx

    knn.nearest_indices = recording  # type: ignore[assignment]
    try:
        refine(noisy, "contactopt", targets=gt, hand=hand, batch_size=64, iterations=250, restarts=1)
    finally:
        knn.nearest_indices = search
    np.savez(path, q=np.stack([f[0] for f in found]), p=np.stack([f[1] for f in found]),
             idx=np.stack([f[2] for f in found]))


def study(path: str, every: int) -> None:
    from pykdtree.kdtree import KDTree

    data = np.load(path)
    q_all, p_all, i_all = data["q"], data["p"], data["idx"]
    picked = range(1, q_all.shape[0], every)

    def per_refresh(leaf: int, groups: Callable[[int, int], Iterator[tuple[np.ndarray, float]]] | None = None
                    ) -> float:
        t = time.process_time()
        for r in picked:
            for b in range(q_all.shape[1]):
                tree = KDTree(p_all[r, b], leafsize=leaf)
                if groups is None:
                    tree.query(q_all[r, b], k=1, sqr_dists=True)
                    continue
                for sel, bound in groups(r, b):
                    tree.query(np.ascontiguousarray(q_all[r, b][sel]), k=1, sqr_dists=True,
                               distance_upper_bound=bound)
        return (time.process_time() - t) / len(picked) * 1e3

    base = per_refresh(16)
    print(f"leaf 16: {base:.1f} ms per search")
    for leaf in (4, 8, 32, 64):
        print(f"leaf {leaf}: {per_refresh(leaf) / base:.2f}x the time of leaf 16")

    def bounded(n_groups: int) -> Callable[[int, int], Iterator[tuple[np.ndarray, float]]]:
        def groups(r: int, b: int) -> Iterator[tuple[np.ndarray, float]]:
            pair = p_all[r, b][i_all[r - 1, b]]  # the previous search's vertex, at the current positions
            bound = np.linalg.norm(q_all[r, b] - pair, axis=-1) * (1 + 1e-5) + 1e-9
            for sel in np.array_split(np.argsort(bound), n_groups):
                yield sel, float(bound[sel].max())
        return groups

    for n_groups in (1, 4, 8, 16):
        print(f"bound from the previous pair, {n_groups} group(s): {per_refresh(16, bounded(n_groups)) / base:.2f}x")

    r = q_all.shape[0] // 2
    dist = np.linalg.norm(q_all[r] - np.take_along_axis(p_all[r], i_all[r][..., None], 1), axis=-1)
    trees = [KDTree(p_all[r, b], leafsize=16) for b in range(q_all.shape[1])]
    for lo, hi in ((0.0, 0.005), (0.005, 0.01), (0.01, 0.02), (0.02, 0.04), (0.04, np.inf)):
        t, n = time.process_time(), 0
        for b, tree in enumerate(trees):
            sel = np.ascontiguousarray(q_all[r, b][(dist[b] >= lo) & (dist[b] < hi)])
            tree.query(sel, k=1, sqr_dists=True)
            n += len(sel)
        print(f"queries {lo * 1e3:.0f}-{hi * 1e3:.0f} mm from the hand: {n / dist.size:.0%}, "
              f"{(time.process_time() - t) / max(n, 1) * 1e9:.0f} ns each")

    full = pruned = 0.0
    changed = used = 0
    for r in picked:
        for b in range(q_all.shape[1]):
            keep = np.unique(i_all[r, b])
            used += keep.size
            t = time.process_time()
            KDTree(p_all[r, b], leafsize=16).query(q_all[r, b], k=1, sqr_dists=True)
            full += time.process_time() - t
            t = time.process_time()
            idx = KDTree(np.ascontiguousarray(p_all[r, b][keep]), leafsize=16).query(q_all[r, b], k=1,
                                                                                       sqr_dists=True)[1]
            pruned += time.process_time() - t
            changed += int((keep[idx] != i_all[r, b]).sum())
    n_el = len(picked) * q_all.shape[1]
    print(f"trees on only the used vertices ({used / n_el / p_all.shape[2]:.0%}): {full / pruned:.2f}x faster, "
          f"{changed} of {n_el * q_all.shape[2]} indices differ (float32 ties)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", default="/tmp/refine_searches.npz", help="captured searches (made when missing)")
    ap.add_argument("--every", type=int, default=5, help="time every this many captured searches")
    args = ap.parse_args()
    if not Path(args.capture).exists():
        capture(args.capture)
    study(args.capture, args.every)


if __name__ == "__main__":
    main()
