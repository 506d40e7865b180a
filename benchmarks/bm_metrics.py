"""Per-grasp cost of every metric (CPU): ``python benchmarks/bm_metrics.py [--grasps N] [--hand openhand]``.

A hand (OpenHand by default; ``--hand mano`` needs the MANO files) in its flat pose pressed into a 20k-face
ellipsoid (4 x 3 x 6 cm) at several depths, and into the bundled ``mustard_bottle`` (3k faces, not a closed
manifold: the 1 mm grid fallback). Each metric is timed alone through ``evaluate_posed`` (so shared work, e.g.
the hand-vertex signed distances, is counted in every metric that needs it), then all non-simulation default
metrics together; the simulation is timed after the object's convex decomposition is cached.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
import trimesh

from contactkit.hands import load_hand
from contactkit.metrics import simulation as sim
from contactkit.metrics.evaluate import PosedGrasps, evaluate_posed
from contactkit.metrics.registry import DEFAULT_METRICS, METRICS
from contactkit.objects import load_object


def _posed(hand, obj_verts, obj_faces, n, key):
    with torch.no_grad():
        out = hand(torch.zeros(1, 3, dtype=torch.float32), torch.zeros(1, 45))
    hv = out.vertices[0].double().numpy()
    kp = out.keypoints[0].double().numpy()
    palm = np.asarray(hand.annotations.palm_normal)
    # object centres along the palm normal: penetration from ~8 mm down to contact
    extent = float(np.max(np.abs((obj_verts - obj_verts.mean(0)) @ palm)))
    depths = np.linspace(0.008, 0.0, n)
    centres = hv.mean(0) + palm * (extent - depths)[:, None] + 0.004 - obj_verts.mean(0)
    return PosedGrasps(
        hand_verts=np.repeat(hv[None], n, 0),
        keypoints=np.repeat(kp[None], n, 0),
        hand_faces=hand.closed_faces.numpy(),
        object_ids=[key] * n,
        objects={key: (obj_verts, obj_faces)},
        object_rotation=np.repeat(np.eye(3)[None], n, 0),
        object_translation=centres,
        fingertip_regions=[
            np.nonzero(hand.annotations.region_of_vertex == r)[0] for r in hand.annotations.fingertip_regions
        ],
        hand_labels=np.asarray(hand.annotations.region_of_vertex),
    )


def _time(fn, repeats=1):
    """Best CPU time (process_time, so other processes' load on shared cores does not count), seconds."""
    best = np.inf
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _bench_case(hand, name, ov, of, n):
    g = _posed(hand, ov, of, n, name)
    print(f"\n== {name}: {len(of)} faces")
    print(f"{'metric':40s} {'ms/grasp':>10s}  mean value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_posed(g, g, ["penetration_depth_mm"])  # warm caches (AABB trees, imports)
        for m in METRICS:
            if m.startswith("simulation"):
                continue
            holder = {}
            dt = _time(lambda m=m, holder=holder: holder.setdefault("ev", evaluate_posed(g, g, [m])), 2)
            r = holder["ev"][m]
            fb = f" ({int(r.fallback.sum())} fallback)" if r.fallback.any() else ""
            print(f"{m:40s} {dt / n * 1e3:10.2f}  {r.mean:.3f} {r.unit}{fb}")
        together = [m for m in DEFAULT_METRICS if not m.startswith("simulation")]
        dt = _time(lambda together=together: evaluate_posed(g, g, together), 2)
        print(f"{'ALL non-simulation defaults together':40s} {dt / n * 1e3:10.2f}")
        t = time.process_time()
        sim.object_convex_pieces(ov, of)
        print(
            f"{'convex decomposition (once per object)':40s} {(time.process_time() - t) * 1e3:10.2f}  "
            f"(cached afterwards)"
        )
        for m in (
            "simulation_displacement_cm",
            "simulation_displacement_cm_obman",
            "simulation_displacement_cm_six",
        ):
            holder = {}
            dt = _time(lambda m=m, holder=holder: holder.setdefault("ev", evaluate_posed(g, None, [m])))
            print(f"{m:40s} {dt / n * 1e3:10.2f}  {holder['ev'][m].mean:.3f} cm")
        p = sim.get_protocol("default", hand_shape="regions")
        dt = _time(
            lambda: sim.simulation_displacement(
                g.hand_verts,
                g.hand_faces,
                ov,
                of,
                g.object_rotation,
                g.object_translation,
                hand_labels=g.hand_labels,
                protocol=p,
            )
        )
        print(f"{'simulation (default, hand_shape=regions)':40s} {dt / n * 1e3:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grasps", type=int, default=8)
    parser.add_argument("--hand", default="openhand")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hand = load_hand(args.hand)
    n = args.grasps
    ell = trimesh.creation.icosphere(subdivisions=5)
    ell.apply_scale([0.04, 0.03, 0.06])
    bottle = load_object("mustard_bottle")
    cases = [
        ("ellipsoid", np.asarray(ell.vertices), np.asarray(ell.faces, dtype=np.int64)),
        ("mustard_bottle", np.array(bottle.vertices), np.array(bottle.faces)),
    ]
    print(
        f"hand {args.hand}: {hand.num_verts} vertices, {hand.closed_faces.shape[0]} closed faces; "
        f"{n} grasps per object; CPU ms per grasp (best of 2 for non-simulation metrics)"
    )
    for name, ov, of in cases:
        _bench_case(hand, name, ov, of, n)
    if torch.cuda.is_available():
        print("(CUDA present: the metrics run on the CPU; pose metrics accept CUDA tensors directly)")


if __name__ == "__main__":
    main()
