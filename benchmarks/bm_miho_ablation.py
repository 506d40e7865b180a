"""CPF's MIHO ablation (paper 004 Table shape) on held-out objects of a rendered dataset.

Run by hand (not a timed test), after ``contactkit train honet`` and ``contactkit train picr-image``::

    python benchmarks/bm_miho_ablation.py --data DS --honet RUN/honet/last.pt --picr RUN/picr/best.pt \\
        [--geo-iterations 400] [--limit 60] --md OUT.md --json OUT.json

Rows: HoNet alone (no GeO), HoNet -> geometric PiCR (the shipped estimator) -> GeO, HoNet -> image PiCR -> GeO;
all on the views of ``--split`` (default ``test``: objects never used in training or model selection), scored
against the ground truth with :func:`contactkit.metrics.evaluate` (paper 004's metrics: MPJPE, MPVPE, penetration
depth, solid intersection volume, disjointedness, simulation displacement), with 95 % paired bootstrap intervals of
the per-view changes against HoNet alone. The simulation runs on the **known** object mesh placed at the
estimated pose (MIHO estimates a pose, not a shape), with contactkit's default protocol: grasps whose deepest hand
vertex lies more than 10 mm inside are not simulated (n given), so read displacement with the penetration depth;
``--sim-every-view`` adds the same protocol with every grasp simulated (``max_penetration=None``), so that the
changes pair over all views.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bm_obman_ablation import _count, paired_interval
from contactkit.dataset import RenderedDataset
from contactkit.fit.miho import miho
from contactkit.io.grasps import GraspSet
from contactkit.metrics.evaluate import evaluate
from contactkit.metrics.simulation import get_protocol, simulate
from contactkit.report.scene import posed_hand_vertices
from contactkit.vision.train_obman import honet_from_checkpoint
from contactkit.vision.train_picr_image import image_picr_from_checkpoint

METRICS = (
    ("mpjpe_mm", "MPJPE mm", "{:.1f}"),
    ("mpvpe_mm", "MPVPE mm", "{:.1f}"),
    ("penetration_depth_mm", "pen. depth mm", "{:.2f}"),
    ("solid_intersection_volume_cpf", "solid IV cm³", "{:.2f}"),
    ("disjointedness_mm", "disjointedness mm", "{:.1f}"),
    ("simulation_displacement_cm", "sim. displ. cm", "{:.2f}"),
    ("sim_all_cm", "sim. displ. cm (every view)", "{:.2f}"),
)


def displacement_every_view(grasps: GraspSet, hand: object) -> np.ndarray:
    """Displacement (cm) of each grasp's object under contactkit's default protocol with every grasp simulated."""
    verts = posed_hand_vertices(grasps, hand)  # type: ignore[arg-type]
    out = np.full(len(grasps), np.nan)
    protocol = get_protocol("default", max_penetration=None)
    for key, idx in grasps.object_groups().items():
        obj = grasps.objects[key]
        res = simulate(verts[idx], hand.closed_faces, obj.vertices, obj.faces,  # type: ignore[attr-defined]
                       grasps.object_rotation[idx], grasps.object_translation[idx], protocol=protocol)
        out[idx] = res.displacement * 100.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--honet", type=Path, required=True)
    ap.add_argument("--picr", type=Path, required=True)
    ap.add_argument("--geo-iterations", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N views only")
    ap.add_argument("--stride", type=int, default=1, help="every N-th view only (before --limit; default all)")
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--sim-every-view", action="store_true", help="add the displacement with every grasp simulated")
    ap.add_argument("--rows", default="none,image,geometry", help="contact sources to run (default all three)")
    ap.add_argument("--image-vc-threshold", type=float, default=None,
                    help="t_vc of the image PiCR (default: its checkpoint's validation-tuned one, else 0.8)")
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = RenderedDataset(args.data, args.split)
    views = list(range(0, len(ds), args.stride))
    n = len(views) if args.limit is None else min(args.limit, len(views))
    samples = [ds[i] for i in views[:n]]
    rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
    k = torch.as_tensor(np.stack([s["K"] for s in samples]))
    ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in samples]))
    rows = np.array([int(s["grasp_index"]) for s in samples], dtype=np.int64)
    reference = ds.grasps.subset(rows)
    meshes = [reference.objects[o] for o in reference.object_ids]
    honet, _ = honet_from_checkpoint(args.honet)
    picr, _ = image_picr_from_checkpoint(args.picr)
    if args.image_vc_threshold is not None:
        picr.vc_threshold = args.image_vc_threshold
    print(f"image PiCR t_vc = {picr.vc_threshold}", flush=True)
    geo = {} if args.geo_iterations is None else {"iterations": args.geo_iterations}
    metrics = [m for m, _, _ in METRICS if not (args.no_sim and m.startswith(("simulation", "sim_")))
               and (args.sim_every_view or m != "sim_all_cm")]
    rows = {"HoNet (no GeO)": {"contact": "none"},
            "HoNet + image PiCR + GeO": {"contact": "image", "picr": picr, **geo},
            "HoNet + geometric PiCR + GeO": {"contact": "geometry", **geo}}
    wanted = set(args.rows.split(","))
    rows = {name: settings for name, settings in rows.items() if settings["contact"] in wanted}
    per: dict[str, dict[str, np.ndarray]] = {}
    for name, settings in rows.items():  # each row is scored and saved as soon as it is fitted
        t0 = time.perf_counter()
        grasps = miho(honet, rgb, k, meshes, cam_from_world=ext, **settings)
        t1 = time.perf_counter()
        ev = evaluate(grasps, reference=reference, metrics=[m for m in metrics if m != "sim_all_cm"], hand=honet.hand)
        per[name] = {m: np.asarray(ev[m].values, dtype=np.float64) for m in metrics if m != "sim_all_cm"}
        if "sim_all_cm" in metrics:
            per[name]["sim_all_cm"] = displacement_every_view(grasps, honet.hand)
        print(name, {m: round(float(np.nanmean(v)), 3) for m, v in per[name].items()},
              f"(fit {t1 - t0:.0f} s, scoring {time.perf_counter() - t1:.0f} s)", flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps({n: {m: v.tolist() for m, v in d.items()} for n, d in per.items()}),
                                 encoding="utf-8")
    base = "HoNet (no GeO)"
    head = "| | " + " | ".join(label for m, label, _ in METRICS if m in metrics) + " |"
    lines = [f"Held-out split `{args.split}`: {n} views of {len(set(reference.object_ids))} objects.", "", head,
             "|" + "---|" * (len(metrics) + 1)]
    for name in rows:
        lines.append(f"| {name} | " + " | ".join(fmt.format(float(np.nanmean(per[name][m]))) + _count(per[name][m])
                                                for m, _, fmt in METRICS if m in metrics) + " |")
    if base in per and len(per) > 1:
        lines += ["", f"Mean per-view change against {base} [95 % paired bootstrap interval]:", "", head,
                  "|" + "---|" * (len(metrics) + 1)]
    for name in rows:
        if name != base and base in per:
            cells = []
            for m, _, fmt in METRICS:
                if m in metrics:
                    mean, lo, hi = paired_interval(per[name][m] - per[base][m])
                    cells.append(f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md is not None:
        args.md.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
