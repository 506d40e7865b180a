"""Diffusion synthesis on validation objects: which acceptance check fails, and how well the placement matches the
sampled field (session 10 round 2, docs/jointdiffusion.md "Synthesis (round 2)"). Run from the repository root::

    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=src python scripts/diag_jointdiffusion_synthesis.py \
        /work/data/i16/s10/val 8 4 flat,flat_wild,rigid,multi,multi_wild val.json    # DATA N_OBJECTS K VARIANTS OUT

Variants (placement + fit), all on the same sampled fields (one per candidate, DDIM 50 as `contactkit synth`):
  flat          initial_params_from_field + fit_fields' preset (300 + 100) -- the default until round 2
  rigid         rigid_init_from_field from the flat placement + the same fit
  multi         contactkit.diffusion.synthesis.place_on_field (the best, lowest L_rec, of rigid_init_from_field from 18
                starts: {flat, PCA-mean} finger pose x {flat placement's orientation, 8 random rotations}); same fit
  multi_wild    multi + the refinement-in-the-wild fit extras (stage-1 penetration 1e5, no penetration tolerance,
                contact-anchor term 0.1), same iteration counts -- chosen: the default since round 2 (SYNTH_FIT)
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from contactkit.contact.choir import anchor_distance_loss, anchors_from_distances
from contactkit.diffusion.fitting import anchors_of, fit_fields, initial_params_from_field, rigid_init_from_field
from contactkit.diffusion.predictor import load_choir_predictor
from contactkit.diffusion.synthesis import SYNTH_SAMPLING, _cast, place_on_field
from contactkit.hands import load_hand
from contactkit.io.grasps import load_grasps
from contactkit.metrics.intersection import intersection_volume
from contactkit.metrics.penetration import hand_signed_distances, penetration_depth_from_sd
from contactkit.refine.refiner import HandParamsInit, ObjectBatch
from contactkit.synth.synthesis import SynthesisConfig, _finger_vertex_groups, synthesize_batch
from contactkit.targets import GroupedSDF

N_ROT = 8
PICKS: list = []
OFFSETS = (-0.06, -0.03, 0.0, 0.03, 0.06)
WEIGHTS = "src/contactkit/diffusion/weights/jointdiffusion_object.pt"


def field_measures(hand, p: HandParamsInit, field) -> tuple[np.ndarray, np.ndarray]:
    """L_rec (mm^4) and mean anchor residual (mm: distance of each anchor to its decode on the nearer side)."""
    a = anchors_of(hand, p).float()
    loss = anchor_distance_loss(a, field.grid, field.anchor_sq_dist, field.assignment) * 1e12
    dec = anchors_from_distances(field.grid, field.anchor_sq_dist, field.assignment, hint=a)
    return loss.double().numpy(), ((a - dec).norm(dim=-1).mean(-1) * 1e3).double().numpy()


def main() -> None:
    data, n_obj, k, variants, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(","), \
        Path(sys.argv[5])
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    gt = load_grasps(data / "gt_test.npz")
    objs = list(dict.fromkeys(gt.object_ids))[:n_obj]
    hand = load_hand(gt.hand_model, gt.side)
    pred = load_choir_predictor(hand, weights=WEIGHTS, context="object", seed=0, **SYNTH_SAMPLING)
    cfg = SynthesisConfig(batch_size=k)
    groups = _finger_vertex_groups(hand)
    closed = hand.closed_faces.detach().cpu().numpy()
    rows = []
    for oi, oid in enumerate(objs):
        obj = gt.objects[oid]
        pts, nrm = obj.sample_surface(pred.spec.num_points, seed=0)
        p = torch.as_tensor(np.array(pts), dtype=torch.float32).unsqueeze(0).expand(k, -1, -1).contiguous()
        t0 = time.process_time()
        field = _cast(pred.sample_fields(p, None, seed=1000 + oi), torch.float32)
        sample_cpu = (time.process_time() - t0) / k
        objects = ObjectBatch(p, torch.as_tensor(np.array(nrm), dtype=torch.float32).unsqueeze(0).expand(k, -1, -1),
                              torch.eye(3).expand(k, 3, 3).contiguous(), torch.zeros(k, 3),
                              GroupedSDF([obj.sdf_grid(cfg.sdf_resolution).to("cpu", torch.float32)],
                                         torch.zeros(k, dtype=torch.long)))
        for var in variants:
            t0 = time.process_time()
            init = initial_params_from_field(hand, field)
            if var == "rigid":
                init = rigid_init_from_field(hand, init, objects, field)
            elif var.startswith("multi"):
                init = place_on_field(hand, field, objects, seed=oi)
                PICKS.append((init.hand_pose.abs().sum(-1) > 0).long().tolist())  # 1: the PCA-mean pose won
            place_cpu = (time.process_time() - t0) / k
            extra = ({"stage1_penetration": 1e5, "penetration_depth": 0.0, "contact_anchor_weight": 0.1}
                     if var.endswith("_wild") else {})
            t0 = time.process_time()
            res = fit_fields(hand, init, objects, field, seed=oi, optimize=("global_orient", "hand_pose", "transl"),
                             **extra)
            fit_cpu = (time.process_time() - t0) / k
            fitted = HandParamsInit(res.global_orient.detach(), res.hand_pose.detach(), res.betas.detach(),
                                    res.transl.detach())
            l0, r0 = field_measures(hand, init, field)
            l1, r1 = field_measures(hand, fitted, field)
            with torch.no_grad():
                verts = hand(fitted.global_orient, fitted.hand_pose, fitted.betas, fitted.transl).vertices.detach()
            cand = {"global_orient": fitted.global_orient, "hand_pose": fitted.hand_pose, "transl": fitted.transl,
                    "vertices": verts, "loss": res.best_loss.detach()}
            t0 = time.process_time()
            _, stats = synthesize_batch(hand, obj, cfg, 0, oi, candidates=lambda *a, c=cand: c)
            check_cpu = (time.process_time() - t0) / k
            v = verts.double().numpy()
            sd = hand_signed_distances(v, obj.vertices, obj.faces)
            pen = penetration_depth_from_sd(sd)
            near = np.abs(sd) <= cfg.contact_threshold_m
            fingers = np.stack([near[:, g].any(1) for g in groups.values()], 1)
            iv = intersection_volume(v, closed, obj.vertices, obj.faces).volume_m3
            rows.append({"object": oid, "variant": var, "accepted": stats["accepted"], "rejected": stats["rejected"],
                         "acc_pen_mm": [x * 1e3 for x in stats["penetration_m"]],
                         "acc_iv_cm3": [x * 1e6 for x in stats["intersection_m3"]],
                         "acc_disp_cm": [x * 100 for x in stats["displacement_m"]],
                         "acc_coverage_pct": [x * 100 for x in stats["coverage"]],
                         "pen_mm": (pen * 1e3).tolist(), "iv_cm3": (np.asarray(iv) * 1e6).tolist(),
                         "fingers": fingers[:, :5].sum(1).tolist(), "thumb": fingers[:, 0].tolist(),
                         "palm": fingers[:, 5].tolist(), "coverage_pct": (near.mean(1) * 100).tolist(),
                         "lrec_place_mm4": l0.tolist(), "lrec_fit_mm4": l1.tolist(),
                         "resid_place_mm": r0.tolist(), "resid_fit_mm": r1.tolist(),
                         "cpu_sample": sample_cpu, "cpu_place": place_cpu, "cpu_fit": fit_cpu,
                         "cpu_checks": check_cpu, "hypothesis": PICKS[-1] if var.startswith("multi") else None})
            r = rows[-1]
            print(f"{oid} {var:10s} acc {r['accepted']}/{k} rej {r['rejected']} pen {np.round(r['pen_mm'], 1)} "
                  f"iv {np.round(r['iv_cm3'], 2)} fingers {r['fingers']} cov {np.round(r['coverage_pct'], 1)} "
                  f"Lrec {np.median(l0):.3g}->{np.median(l1):.3g} resid {np.median(r0):.1f}->{np.median(r1):.1f} mm "
                  f"cpu place {place_cpu:.2f} fit {fit_cpu:.2f} checks {check_cpu:.2f}", flush=True)
            out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
