"""ObMan's contact-loss ablation (paper 001 Table 3 shape) on held-out objects of a rendered dataset.

Run by hand (not a timed test), after training a base network and two fine-tunes from it with the same number of
steps, one with the contact loss and one without (the control)::

    contactkit train obman-net --data DS --out RUN/base --epochs 20
    contactkit train obman-net --data DS --out RUN/contact --init RUN/base/last.pt --finetune-epochs 5
    contactkit train obman-net --data DS --out RUN/control --init RUN/base/last.pt --finetune-epochs 5 \\
        --contact-weight 0
    python benchmarks/bm_obman_ablation.py --data DS --run base=RUN/base/last.pt --run control=RUN/control/last.pt \\
        --run contact=RUN/contact/last.pt --md OUT.md --json OUT.json

Every network runs on the views of the dataset's ``--split`` (default ``test``: objects never seen in training or
model selection); each row is scored against the ground truth with :func:`contactkit.metrics.evaluate` (the
objects of the rows are the networks' reconstructions): hand MPJPE (camera placement included) and root-relative
MPJPE, object Chamfer distance, penetration depth and intersection volume of the predicted hand with the
predicted object, the share of reconstructions that fold through themselves
(:func:`contactkit.vision.atlasnet.overlap_fraction` > 0: their inside, hence penetration and volume, depends on
the inside test), and unless ``--no-sim`` the simulation displacement of the predicted hand holding the
**reconstructed** mesh (ObMan's protocol, ``get_protocol("obman")``): once for every view, as paper 001 simulates
every grasp (``max_penetration=None``; views MuJoCo refuses, e.g. a folded mesh whose inertia is not physical, are
counted and left out), and once restricted to the views contactkit's protocol simulates (deepest hand vertex at
most 10 mm inside), and once with gravity off (the motion the initial interpenetration causes by itself:
an object pinned by a deeply sunk hand moves as much with gravity as without, an object ejected by the contact
forces moves without gravity). ``--stride N`` keeps every N-th view (a fixed subset, for time); ``--objects
ID,...`` keeps the views of those library objects only (e.g. the objects held out by every dataset a compared
network trained on). The last column
block gives, for every run after the first ``--run``, the mean per-view change against the ``--baseline`` run with
a 95 % paired bootstrap interval. A last line gives the baseline a network must beat on hand pose: the training split's
mean root-relative hand (camera frame), predicted for every view.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from contactkit.dataset import RenderedDataset
from contactkit.errors import MeshError
from contactkit.fit.obman import grasps_from_obman, run_obman
from contactkit.hands import HandModel
from contactkit.io.grasps import GraspSet
from contactkit.metrics.evaluate import evaluate
from contactkit.metrics.simulation import get_protocol, simulate
from contactkit.vision.atlasnet import overlap_fraction
from contactkit.vision.obman_net import ObManNet, ObManOutput
from contactkit.vision.train_obman import ObjectSamples, obman_batch, obman_from_checkpoint

METRICS = (
    ("r_mpjpe_mm", "hand R-MPJPE mm", "{:.1f}"),
    ("mpjpe_mm", "hand MPJPE mm", "{:.1f}"),
    ("chamfer_mm", "object Chamfer mm", "{:.1f}"),
    ("penetration_depth_mm", "pen. depth mm", "{:.2f}"),
    ("intersection_volume_cm3", "IV cm³", "{:.2f}"),
    ("folded_pct", "folded %", "{:.0f}"),
    ("sim_all_cm", "sim. displ. cm (every view)", "{:.2f}"),
    ("sim_gated_cm", "sim. displ. cm (PD ≤ 10 mm)", "{:.2f}"),
    ("sim_nograv_cm", "displ. cm, gravity off", "{:.2f}"),
)
#: Metrics computed here rather than by :func:`contactkit.metrics.evaluate`.
OWN = ("folded_pct", "sim_all_cm", "sim_gated_cm", "sim_nograv_cm")


def simulate_views(net: ObManNet, out: ObManOutput, cam_from_world: torch.Tensor) -> dict[str, np.ndarray]:
    """ObMan-protocol displacement (cm) of each view's predicted hand holding its reconstructed object (world
    frame, gravity -z), every view simulated; NaN where MuJoCo refuses the object. ``sim_gated_cm``: the same
    values, NaN where the deepest hand vertex lies more than 10 mm inside (contactkit's simulable views).
    ``sim_nograv_cm``: the same simulation with gravity off, i.e. the motion caused by the initial interpenetration
    alone (a hand that does not overlap the object leaves it at rest): it tells an object that falls from one that
    is ejected by the contact forces, and a held object from one pinned by a deeply sunk hand (equal values with
    and without gravity)."""
    protocols = (get_protocol("obman", max_penetration=None), get_protocol("obman", max_penetration=None, gravity=0.0))
    faces = net.object_faces.numpy()
    hand_faces = net.hand.closed_faces
    ext = cam_from_world.double()
    rot = ext[:, :3, :3].transpose(1, 2)  # world from camera
    trans = -(rot @ ext[:, :3, 3:]).squeeze(-1)
    disp, nograv, pen = np.full(len(ext), np.nan), np.full(len(ext), np.nan), np.full(len(ext), np.nan)
    for i in range(len(ext)):
        hand_cam = (out.hand_verts[i] + out.root[i]).double()
        hand_world = hand_cam @ rot[i].T + trans[i]
        obj_cam = (out.object_verts[i] + out.root[i]).double().numpy()
        try:
            res, still = (simulate(hand_world[None].numpy(), hand_faces, obj_cam, faces, rot[i].numpy(),
                                   trans[i].numpy(), protocol=p) for p in protocols)
        except MeshError:
            continue
        disp[i], nograv[i], pen[i] = res.displacement[0] * 100.0, still.displacement[0] * 100.0, res.penetration[0]
    gated = np.where(pen <= get_protocol("obman").max_penetration, disp, np.nan)
    return {"sim_all_cm": disp, "sim_gated_cm": gated, "sim_nograv_cm": nograv}


def paired_interval(delta: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-view changes and its 95 % percentile-bootstrap interval over views (NaNs dropped)."""
    delta = delta[np.isfinite(delta)]
    if len(delta) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boot = delta[rng.integers(0, len(delta), (n_boot, len(delta)))].mean(1)
    return float(delta.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def mean_hand_rmpjpe(hand: HandModel, train: RenderedDataset, samples: list[dict], grasps: GraspSet) -> np.ndarray:
    """Per-view root-relative keypoint error (mm) of the train split's mean root-relative hand (camera frame) on
    ``samples`` (whose ``grasp_index`` refers to ``grasps``)."""
    objects = ObjectSamples(train.grasps)
    kps = [obman_batch([train[i] for i in range(s, min(s + 64, len(train)))], train.grasps, hand, objects, 32)[2]
           .hand_keypoints for s in range(0, len(train), 64)]
    mean = torch.cat(kps).mean(0)
    test = obman_batch(samples, grasps, hand, ObjectSamples(grasps), 32)[2].hand_keypoints
    return ((test - mean).norm(dim=-1).mean(-1) * 1e3).numpy().astype(np.float64)


def content_hashes(data: Path, object_ids: list[str], split: str) -> set[str]:
    """The content hashes (the grasp sets' object ids) of library ``object_ids`` in ``data``'s ``split``; raises
    ``SystemExit`` if one is absent from that split."""
    entries = {o["object_id"]: o for o in json.loads((data / "dataset.json").read_text(encoding="utf-8"))["objects"]}
    missing = [i for i in object_ids if i not in entries or entries[i]["split"] != split]
    if missing:
        raise SystemExit(f"objects not in split {split!r} of {data}: {', '.join(missing)}")
    return {entries[i]["content_hash"] for i in object_ids}


def _count(values: np.ndarray) -> str:
    """`` (n = k)`` when only k of the views have a value (the simulation skips deep penetrations)."""
    k = int(np.isfinite(values).sum())
    return "" if k == len(values) else f" (n = {k})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--run", action="append", required=True, metavar="NAME=CHECKPOINT")
    ap.add_argument("--baseline", default=None, help="run the changes are measured against (default: the second)")
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--stride", type=int, default=1, help="every N-th view of the split only (default all)")
    ap.add_argument("--objects", default=None,
                    help="comma-separated library object ids (e.g. random-urdfs/005): their views only")
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = RenderedDataset(args.data, args.split)
    keep = None if args.objects is None else content_hashes(args.data, args.objects.split(","), args.split)
    samples = [s for s in (ds[i] for i in range(0, len(ds), args.stride))
               if keep is None or ds.grasps.object_ids[int(s["grasp_index"])] in keep]
    rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
    k = torch.as_tensor(np.stack([s["K"] for s in samples]))
    ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in samples]))
    rows = np.array([int(s["grasp_index"]) for s in samples], dtype=np.int64)
    reference = ds.grasps.subset(rows)
    metrics = [m for m, _, _ in METRICS if not (args.no_sim and m.startswith("sim_"))]
    runs = [r.split("=", 1) for r in args.run]
    per: dict[str, dict[str, np.ndarray]] = {}
    info: dict[str, dict[str, object]] = {}
    for name, path in runs:
        net, training = obman_from_checkpoint(path)
        out = run_obman(net, rgb, k)
        grasps = grasps_from_obman(net, out, ext)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the reference's objects differ from the reconstructions by design
            ev = evaluate(grasps, reference=reference, metrics=[m for m in metrics if m not in OWN], hand=net.hand)
        per[name] = {m: np.asarray(ev[m].values, dtype=np.float64) for m in metrics if m not in OWN}
        faces = net.object_faces.numpy()
        per[name]["folded_pct"] = np.array([100.0 * (overlap_fraction(v.double().numpy(), faces) > 0.0)
                                            for v in out.object_verts])
        if not args.no_sim:
            per[name] |= simulate_views(net, out, ext)
        info[name] = {"checkpoint": path, "epoch": training.get("epoch"), "config": training.get("config")}
        print(name, {m: round(float(np.nanmean(v)), 3) for m, v in per[name].items()}, flush=True)
        if args.json is not None:  # partial results after every run (the simulation is slow)
            write_json(args.json, args, len(samples), info, per)
    baseline = args.baseline or (runs[1][0] if len(runs) > 1 else runs[0][0])
    head = "| run | " + " | ".join(label for m, label, _ in METRICS if m in metrics) + " |"
    objects = len({ds.grasps.object_ids[int(s["grasp_index"])] for s in samples})
    lines = [f"Held-out split `{args.split}` of `{args.data}`: {len(samples)} views"
             + (f" (every {args.stride}th)" if args.stride > 1 else "")
             + f", {objects} objects never used in training.", "", head,
             "|" + "---|" * (len(metrics) + 1)]
    for name, _ in runs:
        cells = [fmt.format(float(np.nanmean(per[name][m]))) + _count(per[name][m]) for m, _, fmt in METRICS
                 if m in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Mean per-view change against `{baseline}` [95 % paired bootstrap interval]:", "", head,
              "|" + "---|" * (len(metrics) + 1)]
    for name, _ in runs:
        if name == baseline:
            continue
        cells = []
        for m, _, fmt in METRICS:
            if m in metrics:
                delta = per[name][m] - per[baseline][m]
                mean, lo, hi = paired_interval(delta)
                cells.append(f"{fmt.format(mean)} [{fmt.format(lo)}, {fmt.format(hi)}]" + _count(delta))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    base_hand = mean_hand_rmpjpe(net.hand, RenderedDataset(args.data, "train"), samples, ds.grasps)
    changes = []
    for name, _ in runs:
        mean, lo, hi = paired_interval(per[name]["r_mpjpe_mm"] - base_hand)
        changes.append(f"{name} {mean:.1f} [{lo:.1f}, {hi:.1f}]")
    lines += ["", f"Baseline: the train split's mean root-relative hand for every view: hand R-MPJPE "
              f"{base_hand.mean():.1f} mm; change of each run against it [95 % paired bootstrap interval]: "
              + "; ".join(changes)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md is not None:
        args.md.write_text(text, encoding="utf-8")
    if args.json is not None:
        write_json(args.json, args, len(samples), info, per)


def write_json(path: Path, args: argparse.Namespace, views: int, info: dict[str, dict[str, object]],
               per: dict[str, dict[str, np.ndarray]]) -> None:
    """The per-view values of every run done so far (NaN as null)."""
    per_view = {n: {m: [None if not np.isfinite(x) else float(x) for x in v] for m, v in d.items()}
                for n, d in per.items()}
    path.write_text(json.dumps({"split": args.split, "views": views, "stride": args.stride, "runs": info,
                                "per_view": per_view}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
