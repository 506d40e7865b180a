"""JointDiffusion on held-out objects: refinement in the wild and grasp synthesis, against the baselines.

Run by hand (data from ``scripts/make_jointdiffusion_data.py``, weights from ``contactkit train jointdiffusion``)::

    python benchmarks/bm_jointdiffusion.py --data DIR --noisy-weights N.pt --object-weights O.pt \
        [--n-refine 32] [--synth-objects 8] [--synth-batch 8] [--json OUT.json] [--skip refine|synth] \
        [--other-noisy-weights V1.pt] [--other-object-weights V1.pt] [--ablation] [--oracle] [--paper-settings]
        [--sampler dpm|ddim] [--steps N] [--samples K] [--one-sample] [--session6] [--session7] [--session12]
        [--fit-iterations N]

Sampling and fit default to the library's (refinement: DPM-Solver++, ``DEFAULT_STEPS`` = 5 steps, the mean of
``DEFAULT_REFINE_SAMPLES`` samples per grasp, fit ``FIT_ITERATIONS`` with the penetration term in stage 1;
``--one-sample`` adds session 5's one-sample row, ``--session6`` session 6's fit of the same sampled fields,
``--session7`` session 7's, ``--session12`` session 12's (50 + 50 iterations);
synthesis: DDIM, 50 steps, one sample per candidate, as ``contactkit synth --method diffusion``);
``--paper-settings`` adds a row with DDIM in 50 steps and the ``choir`` preset's 300 + 100 fit iterations. Seconds
are wall-clock and CPU (``time.process_time``: the process's own CPU time, near the wall-clock time on an idle core).

1. **Refinement** of ``--n-refine`` ContactOpt-protocol noisy inputs of the test objects (``DIR/noisy_test.npz``,
   seeded subsample), against their ground truth: the input, ``choir`` in the wild (one CHOIR sampled by the
   refinement model, two-stage fit; no ground truth read) and ``contactopt`` driven by the shipped DeepContact
   (its own settings: 250 iterations, 4 restarts). MPJPE (mm), hand contact F1 (%), intersection volume (cm^3),
   with paired bootstrap 95 % intervals (1000 resamples of the grasps) of the differences choir - contactopt and
   choir - input. choir is fitted once without the shift check, which is then applied row by row (a rejected grasp
   keeps its input, so its metrics are the input's). Optional rows: other weights with the same anchoring, the
   unanchored paper fit (``--ablation``), the in-the-wild fit of the ground-truth CHOIR (``--oracle``, two rows
   labelled ORACLE: from the noisy hand, and from the noisy hand placed rigidly on the field by
   ``rigid_init_from_field``; diagnostics, never a method). The ground-truth CHOIR uses the refinement model's
   anchor assignment (its spec's ``assignment``).
2. **Synthesis** on each test object: one batch of ``--synth-batch`` candidates by ``--method diffusion`` and by
   ``--method optimize`` (the synthesiser's acceptance checks, simulation included): share accepted, penetration
   (mm), intersection volume (cm^3), simulation displacement (cm), fingers in contact (of 5), contact coverage (%
   of hand vertices within 2 mm), diversity, seconds per candidate; the share accepted with its Wilson 95 %
   interval and the candidates rejected by each check (the first check each failed).

Prints markdown tables; ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contactkit.diffusion.fitting import MAX_SHIFT_M, refine_in_the_wild
from contactkit.diffusion.predictor import load_choir_predictor
from contactkit.diffusion.synthesis import SYNTH_SAMPLING, DiffusionCandidates
from contactkit.hands import load_hand
from contactkit.io.grasps import load_grasps
from contactkit.metrics.evaluate import evaluate
from contactkit.refine.api import refine
from contactkit.synth.synthesis import SynthesisConfig, diversity, synthesize

METRICS = ("mpjpe_mm", "contact_f1_pct", "intersection_volume_cm3")


def bootstrap_diff(a: np.ndarray, b: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of mean(a - b) by resampling paired rows."""
    rng = np.random.default_rng(seed)
    d = a - b
    d = d[np.isfinite(d)]
    means = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(n)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of mean(a) / mean(b) by resampling paired rows."""
    rng = np.random.default_rng(seed)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    idx = [rng.integers(0, len(a), len(a)) for _ in range(n)]
    ratios = [a[i].mean() / b[i].mean() for i in idx]
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval of a share ``k / n`` (``(nan, nan)`` for ``n = 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


NO_CHECK = "choir in the wild without the shift check"
ABLATION = "choir, unanchored (no x0 clip, no input prior, no shift check)"
PAPER = "choir in the wild, DDIM 50 steps, one sample, fit 300 + 100 iterations"
ONE_SAMPLE = "choir in the wild, one sample, DPM-Solver++ 10, w_in 10 (session 5 defaults)"
SESSION6 = "choir in the wild, session 6's fit (no stage-1 penetration, 50 + 17 iterations)"
#: The fit of sessions 5 and 6: no penetration term in stage 1, and stage 2 ran 17 iterations (a single count of 50
#: was scaled by the preset's 300 : 100 until session 7).
PREVIOUS_FIT: dict[str, Any] = {"stage1_penetration": 0.0, "iterations": (50, 17), "penetration_depth": 2e-3,
                                 "contact_anchor_weight": 0.0}
ORACLE = "ORACLE: the in-the-wild fit of the ground-truth CHOIR, from the noisy hand"
ORACLE_RIGID = "ORACLE: the same from the noisy hand placed rigidly on the field (rigid_init_from_field)"
SESSION7 = "choir in the wild, session 7's fit (stage-1 penetration 1e4, tolerance 2 mm, no contact-anchor term)"
#: Session 7's fit: stage-1 penetration 1e4, exactly 50 + 50 iterations, ContactOpt's 2 mm penetration tolerance,
#: the paper's (unwidened) contact densities in Eq. 10 and no contact-anchor term.
SESSION7_FIT: dict[str, Any] = {"stage1_penetration": 1e4, "iterations": (50, 50), "penetration_depth": 2e-3,
                                "contact_anchor_weight": 0.0}
SESSION12 = "choir in the wild, session 12's fit (50 + 50 iterations)"


class Clock:
    """Wall-clock and CPU seconds since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __call__(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def bench_refine(data: Path, weights: Path, n: int, sampling: dict[str, Any], iterations: int | None, seed: int,
                 ablation: bool = False, other_weights: Path | None = None, oracle_fit: bool = False,
                 paper: bool = False, one_sample: bool = False, session6: bool = False,
                 session7: bool = False, session12: bool = False) -> dict[str, Any]:
    noisy_all = load_grasps(data / "noisy_test.npz")
    gt = load_grasps(data / "gt_test.npz")
    hand = load_hand(noisy_all.hand_model, noisy_all.side)
    rows = np.sort(np.random.default_rng(seed).permutation(len(noisy_all))[:n])
    noisy = noisy_all.subset(rows)
    out: dict[str, Any] = {"n": len(noisy), "objects": sorted(f"{gt.objects[o].name} ({o[:6]})"
                                                              for o in set(noisy.object_ids))}
    runs: dict[str, Any] = {"input (noisy)": (noisy, (0.0, 0.0))}
    pred = load_choir_predictor(hand, weights=weights, seed=seed, **sampling)
    fit = {} if iterations is None else {"iterations": iterations}
    previous = PREVIOUS_FIT if iterations is None else {**PREVIOUS_FIT, **fit}
    clock = Clock()
    # Run without the shift check and apply it afterwards (a rejected grasp keeps its input parameters, so its
    # metrics are the input's): one fit gives both rows.
    choir = refine_in_the_wild(noisy, pred, hand=hand, seed=seed, max_shift_m=None, **fit)
    runs[NO_CHECK] = (choir, clock())
    shift = np.array([m["refine"]["anchor_shift_mm"] for m in choir.metadata])
    rejected = shift > MAX_SHIFT_M * 1e3
    out["choir_rejected"] = int(rejected.sum())
    out["choir_anchor_shift_mm_median"] = float(np.median(shift))
    if other_weights is not None:
        alt = load_choir_predictor(hand, weights=other_weights, seed=seed, **sampling)
        clock = Clock()
        other = refine_in_the_wild(noisy, alt, hand=hand, seed=seed, **fit)
        runs[f"choir in the wild, weights {other_weights.name}"] = (other, clock())
    if one_sample:  # session 5's defaults: one sample, DPM-Solver++ in 10 steps, input prior 10
        single = load_choir_predictor(hand, weights=weights, seed=seed, sampler="dpm", steps=10, samples=1)
        clock = Clock()
        runs[ONE_SAMPLE] = (refine_in_the_wild(noisy, single, hand=hand, seed=seed, input_weight=10.0, **previous),
                            clock())
    if session6:  # session 6's defaults: the same sampled fields, the previous fit
        clock = Clock()
        runs[SESSION6] = (refine_in_the_wild(noisy, pred, hand=hand, seed=seed, **previous), clock())
    if session7:  # session 7's defaults: the same sampled fields, session 7's fit
        clock = Clock()
        runs[SESSION7] = (refine_in_the_wild(noisy, pred, hand=hand, seed=seed, **SESSION7_FIT), clock())
    if session12:  # session 12's defaults: the same sampled fields, 50 + 50 iterations
        clock = Clock()
        runs[SESSION12] = (refine_in_the_wild(noisy, pred, hand=hand, seed=seed, iterations=(50, 50)), clock())
    if paper:
        slow = load_choir_predictor(hand, weights=weights, seed=seed, sampler="ddim", steps=50, samples=1)
        clock = Clock()
        runs[PAPER] = (refine_in_the_wild(noisy, slow, hand=hand, seed=seed, iterations=None), clock())
    if ablation:
        raw = load_choir_predictor(hand, weights=weights, seed=seed, clip=None, **{**sampling, "samples": 1})
        clock = Clock()
        runs[ABLATION] = (refine_in_the_wild(noisy, raw, hand=hand, seed=seed, input_weight=0.0, max_shift_m=None,
                                             **fit), clock())
    # Diagnostics: the same two-stage fit on the CHOIR encoded from the ground truth (ORACLE: reads the reference;
    # an upper bound of the fit, not a method), and the anchors decoded from the sampled fields against the truth.
    from contactkit.contact.choir import anchors_from_distances, encode
    from contactkit.diffusion.fitting import (
        CONTACT_ANCHOR_WEIGHT,
        FIT_ITERATIONS,
        INPUT_WEIGHT,
        PENETRATION_DEPTH,
        STAGE1_PENETRATION,
        fit_fields,
        rigid_init_from_field,
    )
    from contactkit.diffusion.representation import grasp_geometry
    from contactkit.geometry.normals import vertex_normals
    from contactkit.refine.api import objects_from_grasps
    from contactkit.refine.refiner import HandParamsInit

    ref_rows = gt.subset(np.asarray(noisy.reference_index))
    geo = grasp_geometry(ref_rows, hand)
    gt_field = encode(geo["obj_points"], geo["verts"], vertex_normals(geo["verts"], hand.faces), geo["anchors"],
                      assignment=pred.spec.assignment)  # the refinement model's anchor assignment
    if oracle_fit:  # the in-the-wild fit's settings (input prior, penetration, contact-anchor term), no shift check
        tt = noisy.hand_tensors()
        start = HandParamsInit(tt["global_orient"], tt["hand_pose"], tt["betas"], tt["transl"])
        oracle_objects = objects_from_grasps(noisy, seed=seed)
        wild = {"input_weight": INPUT_WEIGHT, "stage1_penetration": STAGE1_PENETRATION,
                "penetration_depth": PENETRATION_DEPTH, "contact_anchor_weight": CONTACT_ANCHOR_WEIGHT,
                "iterations": FIT_ITERATIONS if iterations is None else iterations}
        for name, rigid in ((ORACLE, False), (ORACLE_RIGID, True)):
            clock = Clock()
            init = rigid_init_from_field(hand, start, oracle_objects, gt_field) if rigid else start
            res = fit_fields(hand, init, oracle_objects, gt_field, seed=seed, **wild)
            oracle = noisy.replace(global_orient=res.global_orient.detach().double().numpy(),
                                   hand_pose=res.hand_pose.detach().double().numpy(),
                                   betas=res.betas.detach().double().numpy(),
                                   transl=res.transl.detach().double().numpy(), hand_vertices=None, hand_contact=None)
            runs[name] = (oracle, clock())
    sampled = pred.predict(noisy, hand).field
    noisy_anchors = grasp_geometry(noisy, hand)["anchors"]
    decoded = anchors_from_distances(sampled.grid, sampled.anchor_sq_dist, sampled.assignment, hint=noisy_anchors)
    out["anchor_error_mm"] = {
        "noisy input": float((noisy_anchors - geo["anchors"]).norm(dim=-1).mean() * 1e3),
        "decoded from the sampled CHOIR": float((decoded - geo["anchors"]).norm(dim=-1).mean() * 1e3),
        "ORACLE: decoded from the ground-truth CHOIR (noisy hint)": float((anchors_from_distances(
            gt_field.grid, gt_field.anchor_sq_dist, gt_field.assignment, hint=noisy_anchors) - geo["anchors"]
        ).norm(dim=-1).mean() * 1e3),
    }
    clock = Clock()
    runs["contactopt + DeepContact"] = (refine(noisy.replace(attrs={k: v for k, v in noisy.attrs.items()
                                                                    if k != "reference"}), "contactopt", seed=seed),
                                        clock())
    values: dict[str, dict[str, np.ndarray]] = {}
    for name, (g, secs) in runs.items():
        ev = evaluate(g, gt, list(METRICS), hand=hand)  # rows paired through reference_index
        values[name] = {m: np.asarray(ev[m].values, dtype=float) for m in METRICS}
        out[name] = {**{m: float(np.nanmean(values[name][m])) for m in METRICS}, "seconds_per_grasp": secs[0] / len(g),
                     "cpu_seconds_per_grasp": secs[1] / len(g)}
    main = "choir in the wild (JointDiffusion)"
    values[main] = {m: np.where(rejected, values["input (noisy)"][m], values[NO_CHECK][m]) for m in METRICS}
    out[main] = {**{m: float(np.nanmean(values[main][m])) for m in METRICS},
                 "seconds_per_grasp": out[NO_CHECK]["seconds_per_grasp"],
                 "cpu_seconds_per_grasp": out[NO_CHECK]["cpu_seconds_per_grasp"]}
    a, b = values[main], values["contactopt + DeepContact"]
    out["choir_minus_contactopt_95ci"] = {m: bootstrap_diff(a[m], b[m]) for m in METRICS}
    out["choir_minus_input_95ci"] = {m: bootstrap_diff(a[m], values["input (noisy)"][m]) for m in METRICS}
    for name in values:  # other weights / settings against the main row, paired
        if name.startswith("choir in the wild,"):
            out[f"choir_minus_[{name}]_95ci"] = {m: bootstrap_diff(a[m], values[name][m]) for m in METRICS}
    out["rows"] = {"anchor_shift_mm": shift.tolist(), "input_mpjpe_mm": values["input (noisy)"]["mpjpe_mm"].tolist(),
                   "no_check_mpjpe_mm": values[NO_CHECK]["mpjpe_mm"].tolist()}
    out["choir_mpjpe_over_input"] = out["choir in the wild (JointDiffusion)"]["mpjpe_mm"] / out["input (noisy)"][
        "mpjpe_mm"]
    out["choir_mpjpe_over_input_95ci"] = bootstrap_ratio(a["mpjpe_mm"], values["input (noisy)"]["mpjpe_mm"])
    return out


def bench_synth(data: Path, weights: Path, n_objects: int, batch: int, sampling: dict[str, Any], seed: int,
                other_weights: Path | None = None) -> dict[str, Any]:
    gt = load_grasps(data / "gt_test.npz")
    objs = list(dict.fromkeys(gt.object_ids))[:n_objects]
    hand = load_hand(gt.hand_model, gt.side)
    sampling = {**SYNTH_SAMPLING, **{k: v for k, v in sampling.items() if k != "samples"}}  # as `contactkit synth`
    samplers = {"diffusion": DiffusionCandidates(load_choir_predictor(hand, weights=weights, context="object",
                                                                   seed=seed, **sampling))}
    if other_weights is not None:
        samplers[f"diffusion, weights {other_weights.name}"] = DiffusionCandidates(load_choir_predictor(
            hand, weights=other_weights, context="object", seed=seed, **sampling))
    cfg = SynthesisConfig(batch_size=batch)
    out: dict[str, Any] = {}
    for method in [*samplers, "optimize"]:
        stats: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []  # every batch's statistics, also of objects with nothing accepted

        def record(_: int, st: dict[str, Any], seen: list[dict[str, Any]] = batches) -> None:
            seen.append(st)

        accepted = []
        clock = Clock()
        for oid in objs:
            try:
                res = synthesize(gt.objects[oid], batch, seed=seed, config=cfg, max_batches=1,
                                 candidates=samplers.get(method), on_batch=record)
                stats.append(res.stats)
                accepted.append(res.grasps)
            except ValueError as err:  # nothing accepted on this object
                stats.append({"candidates": batch, "accepted": 0, "error": str(err)})
        secs, cpu = clock()
        cands = sum(s["candidates"] for s in stats)
        acc = sum(s["accepted"] for s in stats)

        def mean_of(key: str, st: list[dict[str, Any]] = stats) -> float:
            vals = [s[key] for s in st if key in s and np.isfinite(s[key])]
            return float(np.mean(vals)) if vals else float("nan")

        fingers = [len(g.metadata[i]["synthesis"]["fingers_in_contact"]) for g in accepted for i in range(len(g))]
        div = [diversity(g) for g in accepted if len(g) > 1]
        rejected: dict[str, int] = {}
        for st in batches:
            for reason, count in st["rejected"].items():
                rejected[reason] = rejected.get(reason, 0) + int(count)
        out[method] = {
            "objects": len(objs), "candidates": cands, "accepted": acc, "accepted_share": acc / max(cands, 1),
            "accepted_share_95ci": wilson(acc, cands), "rejected": rejected,
            "coverage_percent": mean_of("mean_coverage_percent"),
            "penetration_mm": mean_of("mean_penetration_mm"), "intersection_cm3": mean_of("mean_intersection_cm3"),
            "displacement_cm": mean_of("mean_displacement_cm"),
            "fingers_in_contact": float(np.mean(fingers)) if fingers else float("nan"),
            "diversity_rotation_deg": float(np.mean([d["rotation_deg"] for d in div])) if div else float("nan"),
            "seconds_per_candidate": secs / max(cands, 1), "cpu_seconds_per_candidate": cpu / max(cands, 1),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--noisy-weights", type=Path, required=True)
    ap.add_argument("--object-weights", type=Path, required=True)
    ap.add_argument("--n-refine", type=int, default=32)
    ap.add_argument("--synth-objects", type=int, default=8)
    ap.add_argument("--synth-batch", type=int, default=8)
    ap.add_argument("--sampler", choices=("dpm", "ddim"), default=None, help="sampler (default: the library's)")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the library's)")
    ap.add_argument("--samples", type=int, default=None,
                    help="refinement: samples averaged per grasp (default: the library's)")
    ap.add_argument("--one-sample", action="store_true",
                    help="also run choir in the wild with session 5's defaults (one sample, DPM-Solver++ 10 steps, "
                    "input prior 10), same weights")
    ap.add_argument("--session6", action="store_true",
                    help="also run choir in the wild with session 6's fit (no stage-1 penetration, 50 + 17 "
                    "iterations) on the same sampled fields")
    ap.add_argument("--session7", action="store_true",
                    help="also run choir in the wild with session 7's fit (penetration tolerance 2 mm, the paper's "
                    "Eq. 10 densities) on the same sampled fields")
    ap.add_argument("--session12", action="store_true",
                    help="also run choir in the wild with session 12's fit (50 + 50 iterations) on the same fields")
    ap.add_argument("--fit-iterations", type=int, default=None,
                    help="refinement fit iterations per stage (default: the library's)")
    ap.add_argument("--paper-settings", action="store_true",
                    help="also run choir in the wild with DDIM 50 steps and the preset's 300 + 100 fit iterations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", choices=("refine", "synth"), default=None)
    ap.add_argument("--ablation", action="store_true", help="also run choir unanchored (the previous behaviour)")
    ap.add_argument("--other-noisy-weights", type=Path, default=None,
                    help="also run choir in the wild with these refinement weights (e.g. the previous ones)")
    ap.add_argument("--oracle", action="store_true",
                    help="also fit the CHOIR encoded from the ground truth (ORACLE diagnostic: an upper bound)")
    ap.add_argument("--other-object-weights", type=Path, default=None,
                    help="also run diffusion synthesis with these object-conditioned weights")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    result: dict[str, Any] = {}
    sampling = {k: v for k, v in (("sampler", args.sampler), ("steps", args.steps), ("samples", args.samples))
                if v is not None}
    if args.skip != "refine":
        r = bench_refine(args.data, args.noisy_weights, args.n_refine, sampling, args.fit_iterations, args.seed,
                         args.ablation, args.other_noisy_weights, args.oracle, args.paper_settings, args.one_sample,
                         args.session6, args.session7, args.session12)
        result["refine"] = r
        print(f"\nRefinement, {r['n']} noisy inputs on {len(r['objects'])} held-out objects\n")
        print("| method | MPJPE (mm) | hand contact F1 (%) | IV (cm^3) | s / grasp | CPU s / grasp |\n"
              "|---|---|---|---|---|---|")
        names = ["input (noisy)", "choir in the wild (JointDiffusion)", NO_CHECK, PAPER, ABLATION,
                 "contactopt + DeepContact", ORACLE, ORACLE_RIGID]
        names[2:2] = [k for k in r if k.startswith("choir in the wild, weights") or k in (ONE_SAMPLE, SESSION6,
                                                                                          SESSION7, SESSION12)]
        for name in names:
            if name not in r:
                continue
            v = r[name]
            print(f"| {name} | {v['mpjpe_mm']:.1f} | {v['contact_f1_pct']:.1f} | {v['intersection_volume_cm3']:.2f} | "
                  f"{v['seconds_per_grasp']:.2f} | {v['cpu_seconds_per_grasp']:.2f} |")
        for key in [k for k in r if k.startswith("choir_minus_")]:
            print(f"\n{key[:-5].replace('_', ' ', 2)}, 95 % CI: "
                  + ", ".join(f"{m} [{lo:+.2f}, {hi:+.2f}]" for m, (lo, hi) in r[key].items()))
        print(f"choir samples rejected (input kept): {r['choir_rejected']} / {r['n']}; median anchor shift "
              f"{r['choir_anchor_shift_mm_median']:.1f} mm")
        lo, hi = r["choir_mpjpe_over_input_95ci"]
        print(f"choir MPJPE / input MPJPE: {r['choir_mpjpe_over_input']:.2f} (95 % CI [{lo:.2f}, {hi:.2f}])")
        print("mean anchor error (mm): " + ", ".join(f"{k} {v:.1f}" for k, v in r["anchor_error_mm"].items()))
    if args.skip != "synth":
        s = bench_synth(args.data, args.object_weights, args.synth_objects, args.synth_batch, sampling, args.seed,
                        args.other_object_weights)
        result["synth"] = s
        print("\nSynthesis on held-out objects\n")
        keys = ["accepted_share", "penetration_mm", "intersection_cm3", "displacement_cm", "fingers_in_contact",
                "coverage_percent", "diversity_rotation_deg", "seconds_per_candidate", "cpu_seconds_per_candidate"]
        print("| method | " + " | ".join(keys) + " |")
        print("|" + "---|" * (len(keys) + 1))
        for m in s:
            print(f"| {m} | " + " | ".join(f"{s[m][k]:.3g}" for k in keys) + " |")
        for m in s:
            lo, hi = s[m]["accepted_share_95ci"]
            print(f"{m}: {s[m]['accepted']} / {s[m]['candidates']} accepted (Wilson 95 % [{lo:.3f}, {hi:.3f}]); "
                  f"rejected by {s[m]['rejected']}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
