"""Per-grasp cost of every metric (CPU): ``python benchmarks/bm_metrics.py [--grasps N] [--hand openhand]``.

A hand (OpenHand by default, 1159 vertices; ``--hand mano`` needs the MANO files) in its flat pose with a 20k-face
ellipsoid (4 x 3 x 6 cm) pressed into its palm, the deepest vertex 8 mm down to 0 mm inside; and the bundled
``mustard_bottle`` (3k faces, not a closed manifold: the 1 mm grid fallback). The evaluated grasps are the
reference grasps with the hand moved 1 mm along its palm normal, so the reference side is computed separately, as
in real use. Each metric is timed alone through ``evaluate_posed`` (shared work, e.g. the hand-vertex signed
distances, is counted in every metric that needs it), then all non-simulation default metrics together; the
simulation is timed after the object's convex decomposition is cached.

Side by side: for objects that are not closed manifolds, the intersection volume's 1 mm grid fallback is timed
against its naive twin (a generalised winding number for every grid centre, the previous implementation),
interleaved over the same samples, and the volumes are compared (they must be equal). The issue's sizes are
covered by a 778-vertex hand against a 16k-face ellipsoid, closed and with a hole cut into it.

``--prev DIR`` (the ``src`` folder of an earlier tree, e.g. ``git archive 58975f8 src | tar -x -C /tmp/ck_prev``)
runs only the regression comparison at the issue's size: all non-simulation defaults together on the 16k-face
ellipsoid (778-vertex hand), closed and with its 2 cm hole (``--cases``), cold reference, in alternating worker
processes (this tree, the earlier tree, ...; ``--repeats`` each), printing both medians of the CPU ms per grasp,
their ratio, and whether every per-sample value of every metric is identical (NaN-aware, bitwise), except the exact
intersection volume (``intersection_volume_cm3``), which may differ in summation order only: it must be within
1e-9 relative (1e-12 cm^3 absolute) of the earlier tree's, and its largest relative difference is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import igl
import numpy as np
import torch
import trimesh

from contactkit.hands import load_hand
from contactkit.metrics import intersection as inter
from contactkit.metrics import simulation as sim
from contactkit.metrics._geom import signed_distance
from contactkit.metrics.evaluate import PosedGrasps, clear_reference_cache, evaluate_posed
from contactkit.metrics.registry import DEFAULT_METRICS, METRICS
from contactkit.objects import load_object


@dataclass
class HandMesh:
    """A posed closed hand mesh and what the metrics read from the hand's annotations."""

    verts: np.ndarray  # (V, 3) metres
    faces: np.ndarray  # (F, 3) closed
    keypoints: np.ndarray  # (21, 3)
    labels: np.ndarray  # (V,) subregion of each vertex
    fingertip_regions: list[np.ndarray]
    palm_normal: np.ndarray  # (3,)
    palm_zone: np.ndarray  # vertex indices of the palm contact zone


def hand_mesh(hand, num_verts: int | None = None) -> HandMesh:
    """The hand's flat pose, optionally decimated (libigl) to ``num_verts`` vertices (778 = MANO's count)."""
    with torch.no_grad():
        out = hand(torch.zeros(1, 3, dtype=torch.float32), torch.zeros(1, 45))
    hv = out.vertices[0].double().numpy()
    hf = hand.closed_faces.numpy()
    keep = np.arange(hv.shape[0])
    if num_verts is not None:
        hv_d, hf_d, _, keep = igl.decimate(hv, hf, 2 * num_verts - 4)  # closed genus 0: F = 2V - 4
        if hv_d.shape[0] != num_verts:
            raise RuntimeError(f"decimation to {num_verts} vertices failed ({hv_d.shape[0]} vertices)")
        hv, hf = np.asarray(hv_d), np.asarray(hf_d, dtype=np.int64)
    labels = np.asarray(hand.annotations.region_of_vertex)[keep]
    palm = set(np.asarray(hand.annotations.contact_zones["palm"]).tolist())
    return HandMesh(
        verts=hv, faces=hf, keypoints=out.keypoints[0].double().numpy(), labels=labels,
        fingertip_regions=[np.nonzero(labels == r)[0] for r in hand.annotations.fingertip_regions],
        palm_normal=np.asarray(hand.annotations.palm_normal),
        palm_zone=np.asarray([i for i, k in enumerate(keep) if int(k) in palm]),
    )  # fmt: skip


def _posed(h: HandMesh, obj_verts, obj_faces, n, key):
    hv, palm, zone = h.verts, h.palm_normal, h.palm_zone
    # the object approaches the palm along its normal until the deepest hand vertex is ``depth`` inside
    extent = float(np.max((obj_verts - obj_verts.mean(0)) @ -palm))  # object's reach towards the palm

    def centre_at(depth: float) -> np.ndarray:
        lo, hi = -0.02, 0.02  # offset along the palm normal, bisected on the penetration depth
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            c = hv[zone].mean(0) + palm * (extent + mid) - obj_verts.mean(0)
            pen = -min(0.0, float(signed_distance(hv - c, obj_verts, obj_faces).min()))
            lo, hi = (mid, hi) if pen > depth else (lo, mid)
        return hv[zone].mean(0) + palm * (extent + hi) - obj_verts.mean(0)

    centres = np.stack([centre_at(d) for d in np.linspace(0.008, 0.0, n)])
    return PosedGrasps(
        hand_verts=np.repeat(hv[None], n, 0),
        keypoints=np.repeat(h.keypoints[None], n, 0),
        hand_faces=h.faces,
        object_ids=[key] * n,
        objects={key: (obj_verts, obj_faces)},
        object_rotation=np.repeat(np.eye(3)[None], n, 0),
        object_translation=centres,
        fingertip_regions=h.fingertip_regions,
        hand_labels=h.labels,
    )


def _time(fn, repeats=1):
    """Best CPU time (process_time, so other processes' load on shared cores does not count), seconds."""
    best = np.inf
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _cold(fn):
    """``fn`` with the reference cache emptied first: the reference side is computed, as in a single call."""

    def run():
        clear_reference_cache()
        return fn()

    return run


def _open_fallback_side_by_side(g: PosedGrasps, ov: np.ndarray, of: np.ndarray, repeats: int) -> None:
    """The open-mesh grid fallback against the naive winding number per centre, interleaved; equal volumes."""
    from _sidebyside import interleaved, row

    pitch = inter.FALLBACK_PITCH_M
    # object frame, as in evaluate (the object's arrays are shared by the samples)
    samples = [(g.hand_verts[i] - g.object_translation[i], ov) for i in range(len(g.hand_verts))]

    def fast() -> list[float]:
        eye, zero = np.eye(3), np.zeros(3)
        obj, chain = inter._GridMesh(ov, of), inter.boundary_chain(g.hand_faces)
        return [inter._solid_grid_volume(hv, g.hand_faces, o, of, pitch, eye, zero, try_exact=False,
                                         hand_chain=chain, obj=obj) for hv, o in samples]

    def naive() -> list[float]:
        out = []
        for hv, o in samples:
            lo, hi = np.maximum(hv.min(0), o.min(0)), np.minimum(hv.max(0), o.max(0))
            centres = inter._grid_centres(lo, hi, pitch)
            out.append(inter._count_inside_both(centres, hv, g.hand_faces, o, of) * pitch**3 if len(centres) else 0.0)
        return out

    a, b = fast(), naive()
    med = interleaved({"ours": fast, "ref": naive}, repeats)
    print(row("intersection volume, 1 mm grid fallback", med["ours"], med["ref"], per=len(samples),
              ref_name="naive") + f"   equal on all {len(a)} samples: {a == b}")


def _bench_case(h: HandMesh, name, ov, of, n, simulate=True):
    ref = _posed(h, ov, of, n, name)
    shift = 0.001 * h.palm_normal
    g = replace(ref, hand_verts=ref.hand_verts + shift, keypoints=ref.keypoints + shift)
    print(f"\n== {name} ({len(of)} faces), hand {h.verts.shape[0]} vertices / {h.faces.shape[0]} faces")
    print(f"{'metric':40s} {'ms/grasp':>10s}  mean value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate_posed(g, ref, ["penetration_depth_mm"])  # warm caches (AABB trees, imports)
        for m in METRICS:
            if m.startswith("simulation"):
                continue
            holder = {}
            dt = _time(_cold(lambda m=m, holder=holder: holder.setdefault("ev", evaluate_posed(g, ref, [m]))), 2)
            r = holder["ev"][m]
            fb = f" ({int(r.fallback.sum())} fallback)" if r.fallback.any() else ""
            print(f"{m:40s} {dt / n * 1e3:10.2f}  {r.mean:.3f} {r.unit}{fb}")
        together = [m for m in DEFAULT_METRICS if not m.startswith("simulation")]
        dt = _time(_cold(lambda together=together: evaluate_posed(g, ref, together)), 2)
        print(f"{'ALL non-simulation defaults together':40s} {dt / n * 1e3:10.2f}")
        dt = _time(lambda together=together: evaluate_posed(g, ref, together), 2)
        print(f"{'  the same, reference already evaluated':40s} {dt / n * 1e3:10.2f}  (cached reference side)")
        if inter.object_solid(ov, of) is None:
            _open_fallback_side_by_side(g, ov, of, 2)
        if not simulate:
            return
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


def _ellipsoid_16k() -> tuple[np.ndarray, np.ndarray]:
    """The issue's object: the 4 x 3 x 6 cm ellipsoid decimated to 16k faces (closed)."""
    ell = trimesh.creation.icosphere(subdivisions=5)
    ell.apply_scale([0.04, 0.03, 0.06])
    v16, f16, _, _ = igl.decimate(np.asarray(ell.vertices), np.asarray(ell.faces, dtype=np.int64), 16384)
    return np.asarray(v16), np.asarray(f16, dtype=np.int64)


def _with_hole(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """The faces of ``f`` less those at the ellipsoid's far end (z < -5 cm): a hole of about 2 cm (an open scan)."""
    return f[~(v[f].mean(1)[:, 2] < -0.05)]


def _issue_case(hand, n: int, case: str):  # type: ignore[no-untyped-def]
    """The issue's size: (evaluated grasps, reference) of a 778-vertex hand against the 16k-face ellipsoid,
    ``case`` ``"closed"`` or ``"open"`` (with the hole of :func:`_with_hole`)."""
    v16, f16 = _ellipsoid_16k()
    if case == "open":
        f16 = _with_hole(v16, f16)
    h = hand_mesh(hand, 778)
    ref = _posed(h, v16, f16, n, f"ellipsoid-16k-{case}")
    shift = 0.001 * h.palm_normal
    return replace(ref, hand_verts=ref.hand_verts + shift, keypoints=ref.keypoints + shift), ref


def _worker(args: argparse.Namespace) -> None:
    """Time all non-simulation defaults (cold reference) with the contactkit first on ``sys.path``; write JSON."""
    g, ref = _issue_case(load_hand(args.hand), args.grasps, args.case)
    together = [m for m in DEFAULT_METRICS if not m.startswith("simulation")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = _cold(lambda: evaluate_posed(g, ref, together))()
        times = [_time(_cold(lambda: evaluate_posed(g, ref, together))) for _ in range(args.inner)]
    values = {m: [None if np.isnan(x) else float(x).hex() for x in ev[m].values] for m in together}
    Path(args.out).write_text(json.dumps({"ms": statistics.median(times) / args.grasps * 1e3, "values": values}))


def _regression(args: argparse.Namespace) -> None:
    """This tree against ``args.prev`` in alternating worker processes, per case: medians, ratio, identical values."""
    from _sidebyside import header

    versions = {"contactkit": str(Path(__file__).resolve().parents[1] / "src"), "previous": args.prev}
    for case in args.cases.split(","):
        header(f"metrics regression: all non-simulation defaults, {case} 16k-face ellipsoid, 778-vertex hand, "
               f"{args.grasps} grasps; this tree vs {args.prev}")
        runs: dict[str, list[dict]] = {k: [] for k in versions}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.repeats):
                for name, src in versions.items():
                    out = str(Path(tmp) / f"{name}_{r}.json")
                    cmd = [sys.executable, __file__, "--worker", src, "--out", out, "--grasps", str(args.grasps),
                           "--hand", args.hand, "--inner", str(args.inner), "--case", case]
                    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=src))
                    runs[name].append(json.loads(Path(out).read_text()))
        med = {k: statistics.median(x["ms"] for x in v) for k, v in runs.items()}
        a, b = runs["contactkit"][0]["values"], runs["previous"][0]["values"]
        differ = [m for m in a if m not in _SUMMATION_ORDER and a[m] != b.get(m)]
        for m in _SUMMATION_ORDER:
            x, y = _from_hex(a[m]), _from_hex(b[m])
            rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-300)
            close = bool(np.all(np.abs(x - y) <= 1e-9 * np.abs(y) + 1e-12))
            differ += [] if close else [m]
            print(f"{case:6s} {m}: largest relative difference {np.nanmax(rel):.2e} "
                  f"({int(np.sum(x != y))} of {len(x)} not bitwise equal; tolerance 1e-9 relative, 1e-12 cm^3): "
                  f"{'within' if close else 'OUTSIDE'}")
        print(f"{case:6s} contactkit {med['contactkit']:8.2f} ms/grasp   previous {med['previous']:8.2f} ms/grasp   "
              f"ratio {med['previous'] / med['contactkit']:5.2f}x   (CPU, median over {args.repeats} processes of "
              f"the median of {args.inner} cold runs each)")
        print(f"{case:6s} values identical for all {len(a)} metrics x {args.grasps} samples (the exact volume within "
              f"its tolerance): {not differ}"
              + (f" (differ: {', '.join(differ)})" if differ else ""))


#: Metrics allowed to differ from an earlier tree in floating-point summation order only (1e-9 relative, 1e-12
#: absolute in their unit): the exact intersection volume, whose boolean may meet a trimmed object solid.
_SUMMATION_ORDER = ("intersection_volume_cm3",)


def _from_hex(values: list) -> np.ndarray:
    """Per-sample values as written by :func:`_worker` (``float.hex``, None for NaN)."""
    return np.array([np.nan if x is None else float.fromhex(x) for x in values])


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grasps", type=int, default=8)
    parser.add_argument("--hand", default="openhand")
    parser.add_argument("--no-simulation", action="store_true", help="skip the simulation metrics")
    parser.add_argument("--prev", default=None, help="src folder of an earlier tree: regression comparison only")
    parser.add_argument("--repeats", type=int, default=3, help="worker processes per tree (with --prev)")
    parser.add_argument("--cases", default="closed,open", help="with --prev: closed and/or open (comma-separated)")
    parser.add_argument("--case", default="closed", help=argparse.SUPPRESS)
    parser.add_argument("--inner", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.worker is not None:
        _worker(args)
        return
    if args.prev is not None:
        _regression(args)
        return
    hand = load_hand(args.hand)
    n = args.grasps
    ell = trimesh.creation.icosphere(subdivisions=5)
    ell.apply_scale([0.04, 0.03, 0.06])
    ell_v, ell_f = np.asarray(ell.vertices), np.asarray(ell.faces, dtype=np.int64)
    v16, f16 = _ellipsoid_16k()
    bottle = load_object("mustard_bottle")
    full = hand_mesh(hand)
    print(f"hand {args.hand}; {n} grasps per object; CPU ms per grasp (process time, one thread; best of 2 for "
          f"non-simulation metrics)")
    if hand.num_verts > 778:  # the issue's size: a 778-vertex hand (MANO's count) and a 16k-face object
        h778 = hand_mesh(hand, 778)
        _bench_case(h778, "ellipsoid-16k", v16, f16, n, simulate=False)
        _bench_case(h778, "ellipsoid-16k-open", v16, _with_hole(v16, f16), n, simulate=False)
    sim_on = not args.no_simulation
    _bench_case(full, "ellipsoid-20k", ell_v, ell_f, n, simulate=sim_on)
    _bench_case(full, "mustard_bottle", np.array(bottle.vertices), np.array(bottle.faces), n, simulate=sim_on)
    if torch.cuda.is_available():
        print("(CUDA present: the metrics run on the CPU; pose metrics accept CUDA tensors directly)")


if __name__ == "__main__":
    main()
