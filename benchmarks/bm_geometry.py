"""Throughput of the geometry core (run by hand: ``python benchmarks/bm_geometry.py``).

Prints milliseconds per call (median of repeats) for the issue's reference workloads, on the CPU and, when
present, on CUDA:

- nearest-neighbour distance forward+backward, 64 hands x 778 points against 2048 object points (target here
  <= 30 ms);
- exact closest point for 778 points on a 16k-face mesh (YCB mug if ``../shared`` is there, else an icosphere;
  target <= 10 ms);
- inside test for 778 points on the same mesh (winding number) and on a closed 20k-face icosphere (fast path);
- signed distance grid: build at 64^3 and trilinear sampling of 64 x 778 points (forward+backward).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from contactkit.geometry import (
    MeshIndex,
    PointIndex,
    SDFGrid,
    closest_points_on_mesh,
    contains,
    nearest_points,
)
from contactkit.geometry.knn import _PyKDTree

MUG = Path(__file__).resolve().parents[1] / ".." / "shared" / "assets" / "objects" / "ycb" / "025_mug.obj"


def timeit(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in milliseconds after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def load_mesh() -> tuple[str, torch.Tensor, torch.Tensor]:
    if MUG.is_file():
        m = trimesh.load(str(MUG), force="mesh")
        name = "ycb mug"
    else:
        m = trimesh.creation.icosphere(subdivisions=5, radius=0.05)
        name = "icosphere-5"
    v = torch.tensor(np.asarray(m.vertices), dtype=torch.float64)
    f = torch.tensor(np.asarray(m.faces), dtype=torch.long)
    return name, v, f


def bench_device(dev: torch.device, r: int, data: dict[str, Any]) -> list[tuple[str, str, float]]:
    """All benchmarks on one device; returns (label, device, ms) rows."""
    rows: list[tuple[str, str, float]] = []
    dv = dev.type
    name: str = data["name"]
    faces: torch.Tensor = data["faces"]
    verts64: torch.Tensor = data["verts"].to(dev)
    hands: torch.Tensor = data["hands"].to(dev)
    obj_pts: torch.Tensor = data["obj_pts"].to(dev)
    q778 = hands[:1].double()

    def add(label: str, fn: Callable[[], object], repeats: int = r) -> None:
        rows.append((label, dv, timeit(fn, repeats, dev)))

    q = hands.clone().requires_grad_()
    p_shared = obj_pts.clone().requires_grad_()
    index = PointIndex(obj_pts) if dv == "cpu" else None
    p_batch = obj_pts[None].repeat(64, 1, 1)
    p_batch = (p_batch + 1e-4 * torch.randn_like(p_batch)).requires_grad_()
    add(
        "knn fwd+bwd 64x778 vs 2048, shared object, prebuilt PointIndex",
        lambda: nearest_points(q, p_shared, index=index).dist.sum().backward(),
    )
    add(
        "knn fwd+bwd 64x778 vs 2048, shared object, tree built per call",
        lambda: nearest_points(q, p_shared.expand(64, -1, -1)).dist.sum().backward(),
    )
    add(
        "knn fwd+bwd 64x778 vs 2048, 64 distinct point sets",
        lambda: nearest_points(q, p_batch).dist.sum().backward(),
        max(3, r // 4),
    )

    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        v = verts64.to(dtype)
        pg = q778.to(dtype).requires_grad_()
        add(
            f"closest point 778 pts, 16k faces, fwd ({tag})",
            lambda v=v, pg=pg: closest_points_on_mesh(pg, v, faces),
        )
        add(
            f"closest point 778 pts, 16k faces, fwd+bwd ({tag})",
            lambda v=v, pg=pg: closest_points_on_mesh(pg, v, faces).dist.sum().backward(),
        )
    if dv == "cpu":
        add(
            "mesh index build (libigl AABB tree), 16k faces, once per mesh",
            lambda: MeshIndex(verts64, faces),
            5,
        )
        add(
            "closest point 64 pts, 16k faces, torch brute force (fallback)",
            lambda: closest_points_on_mesh(q778[:, :64], verts64, faces, backend="torch"),
            3,
        )
    else:
        add(
            "closest point 778 pts, 16k faces, torch brute force",
            lambda: closest_points_on_mesh(q778, verts64, faces, backend="torch"),
        )
    add(f"inside 778 pts, {name} (open: winding number)", lambda: contains(q778, verts64, faces))
    sv: torch.Tensor = data["sphere_verts"].to(dev)
    sf: torch.Tensor = data["sphere_faces"]
    sq: torch.Tensor = data["sphere_queries"].to(dev)
    add(
        "inside 778 pts, closed icosphere 20k faces (pseudonormal fast path)",
        lambda: contains(sq, sv, sf, closed=True),
    )
    add(
        "inside 778 pts, closed icosphere 20k faces (winding number)",
        lambda: contains(sq, sv, sf, closed=False),
    )
    grid = data["grid"].to(dev, torch.float32)
    hq = hands.clone().requires_grad_()
    add("SDF grid sample fwd+bwd 64x778 pts (trilinear, 64^3)", lambda: grid.sample(hq).sum().backward())
    return rows


def side_by_side(data: dict[str, Any], repeats: int) -> None:
    """Fast paths against their naive twins, interleaved (CPU): per-item medians and ratios."""
    from _sidebyside import interleaved, row
    from contactkit.geometry.inside import grid_ray_winding, winding_number
    from contactkit.geometry.knn import nearest_points_naive

    verts64: torch.Tensor = data["verts"]
    faces: torch.Tensor = data["faces"]
    hands: torch.Tensor = data["hands"][:8]
    obj = data["obj_pts"][None].expand(8, -1, -1).contiguous()
    q = hands.clone().requires_grad_()
    p = obj.clone().requires_grad_()
    med = interleaved({
        "ours": lambda: nearest_points(q, p).dist.sum().backward(),
        "ref": lambda: nearest_points_naive(q, p).dist.sum().backward(),
    }, repeats)
    print(row("knn fwd+bwd 8x778 vs 2048 (per hand)", med["ours"], med["ref"], per=8, ref_name="dense"))
    pts = data["hands"][:1, :64].double()
    med = interleaved({
        "ours": lambda: closest_points_on_mesh(pts, verts64, faces),
        "ref": lambda: closest_points_on_mesh(pts, verts64, faces, backend="torch"),
    }, max(3, repeats // 4))
    print(row("closest point 64 pts, 16k faces (per point)", med["ours"], med["ref"], per=64, ref_name="brute"))
    sv, sf, sq = data["sphere_verts"], data["sphere_faces"], data["sphere_queries"]
    med = interleaved({
        "ours": lambda: contains(sq, sv, sf, closed=True),
        "ref": lambda: contains(sq, sv, sf, closed=False),
    }, repeats)
    print(row("inside 778 pts, closed 20k faces (per point)", med["ours"], med["ref"], per=778, ref_name="winding"))
    v, f = verts64.numpy(), faces.numpy()
    lo, hi = v.min(0), v.max(0)
    axes = [np.arange(np.ceil(lo[k] / 0.002), np.floor(hi[k] / 0.002) + 1) * 0.002 + 1e-4 for k in range(3)]
    nodes = torch.from_numpy(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3))
    wind, amb = grid_ray_winding(v, f, *axes)
    ref_occ = (winding_number(nodes, v, f).numpy() > 0.5).reshape(wind.shape)
    same = bool(np.array_equal((wind >= 1)[~amb], ref_occ[~amb]))
    med = interleaved({
        "ours": lambda: grid_ray_winding(v, f, *axes),
        "ref": lambda: winding_number(nodes, v, f),
    }, max(3, repeats // 4))
    print(row(f"grid occupancy {len(nodes)} nodes (per node)", med["ours"], med["ref"], per=len(nodes),
              ref_name="winding") + f"   same decisions: {same}")


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    name, verts64, faces = load_mesh()
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.05)
    g = torch.Generator().manual_seed(0)
    obj_pts = verts64[torch.randint(0, len(verts64), (2048,), generator=g)].float()
    hands = obj_pts[torch.randint(0, 2048, (64 * 778,), generator=g)].reshape(64, 778, 3)
    hands = hands + 0.01 * torch.randn(64, 778, 3, generator=g)
    dirs = torch.randn(1, 778, 3, generator=g, dtype=torch.float64)
    radii = 0.05 * (0.8 + 0.4 * torch.rand(1, 778, 1, generator=g, dtype=torch.float64))
    t0 = time.perf_counter()
    grid = SDFGrid.build(verts64, faces, resolution=64)
    build_ms = (time.perf_counter() - t0) * 1e3
    data = {
        "name": name,
        "verts": verts64,
        "faces": faces,
        "obj_pts": obj_pts,
        "hands": hands,
        "sphere_verts": torch.tensor(np.asarray(sphere.vertices)),
        "sphere_faces": torch.tensor(np.asarray(sphere.faces)),
        "sphere_queries": dirs / dirs.norm(dim=-1, keepdim=True) * radii,
        "grid": grid,
    }
    ksearch = "pykdtree" if _PyKDTree is not None else "scipy cKDTree"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, k-d tree: {ksearch}, load {load}")
    print(f"mesh: {name}, {len(verts64)} verts, {len(faces)} faces")
    rows: list[tuple[str, str, float]] = [(f"SDF grid build 64^3, {name}", "cpu", build_ms)]
    for dev in devices:
        rows += bench_device(dev, args.repeats, data)
    print(f"{'benchmark':<72}{'device':>7}{'ms/call':>10}")
    for label, dv, ms in rows:
        print(f"{label:<72}{dv:>7}{ms:>10.2f}")
    print("\nside by side (CPU, interleaved):")
    side_by_side(data, args.repeats)


if __name__ == "__main__":
    main()
