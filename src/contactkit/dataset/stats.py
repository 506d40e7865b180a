"""Quality and yield statistics of a built dataset (``contactkit dataset info --stats``).

Two sources, both read-only: each shard's ``shard.json`` holds the synthesis run's statistics (every candidate
and every accepted grasp of the object's batches), and each shard's ``grasps.npz`` holds the grasps the dataset
kept (the first ``grasps_per_object`` accepted, ranked by epsilon) with their acceptance measures in
``metadata[i]["synthesis"]``. Yield and rejection reasons come from the first, the distributions of the kept
grasps (coverage, fingers in contact, penetration, intersection volume, displacement) from the second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.dataset.build import read_manifest
from contactkit.dataset.shard import shard_dir

__all__ = ["dataset_statistics"]

FINGERS = ("thumb", "index", "middle", "ring", "little")


def _quantiles(vals: list[float]) -> dict[str, float | None]:
    if not vals:
        return {"mean": None, "p10": None, "p50": None, "p90": None}
    a = np.asarray(vals, dtype=np.float64)
    q = np.quantile(a, [0.1, 0.5, 0.9])
    return {"mean": float(a.mean()), "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}


def dataset_statistics(root: str | Path) -> dict[str, Any]:
    """Yield and quality statistics over the finished shards of the dataset at ``root``.

    Returns:
        ``shards`` (finished), ``synthesis``: ``candidates`` (evaluated: without those left unsimulated by
        ``stop_after_accepted``), ``accepted``, ``yield`` (pooled), ``object_yield``
        (mean and 10/50/90 % quantiles over objects), ``rejected`` (counts per reason); ``kept``: ``grasps``,
        ``coverage_percent``, ``penetration_mm``, ``intersection_cm3``, ``displacement_cm`` (mean and
        quantiles), ``fingers_in_contact_histogram`` (0..5 fingers), ``palm_in_contact_fraction``,
        ``finger_contact_fraction`` (per finger); ``seconds_per_object`` (mean and quantiles of the shards' build
        times) and ``seconds_per_kept_grasp``.
    """
    from contactkit.io.grasps import load_grasps

    root = Path(root)
    man = read_manifest(root)
    cand = acc = 0
    rejected: dict[str, int] = {}
    obj_yield: list[float] = []
    seconds: list[float] = []
    measures: dict[str, list[float]] = {k: [] for k in ("coverage_percent", "penetration_mm", "intersection_cm3",
                                                         "displacement_cm")}
    fingers: list[int] = []
    per_finger = np.zeros(len(FINGERS))
    palm: list[bool] = []
    shards = 0
    for o in man["objects"]:
        d = shard_dir(root, o["shard"])
        js = d / "shard.json"
        if not js.is_file():
            continue
        shards += 1
        meta = json.loads(js.read_text())
        seconds.append(float(meta.get("seconds") or 0.0))
        syn = meta.get("synthesis") or {}
        evaluated = int(syn.get("candidates", 0)) - int(syn.get("not_simulated", 0))
        if evaluated > 0:
            cand += evaluated
            acc += int(syn["accepted"])
            obj_yield.append(syn["accepted"] / evaluated)
            for k, v in (syn.get("rejected") or {}).items():
                rejected[k] = rejected.get(k, 0) + int(v)
        if meta.get("n_grasps", 0) == 0 or not (d / "grasps.npz").is_file():
            continue
        for md in load_grasps(d / "grasps.npz").metadata:
            s = md.get("synthesis", {})
            for k in measures:
                if s.get(k) is not None:
                    measures[k].append(float(s[k]))
            touched = s.get("fingers_in_contact", [])
            fingers.append(len(touched))
            per_finger += [f in touched for f in FINGERS]
            palm.append(bool(s.get("palm_in_contact")))
    kept = len(fingers)
    return {
        "root": str(root),
        "shards": shards,
        "synthesis": {
            "candidates": cand, "accepted": acc, "yield": acc / cand if cand else None,
            "object_yield": _quantiles(obj_yield), "rejected": rejected,
        },
        "kept": {
            "grasps": kept,
            **{k: _quantiles(v) for k, v in measures.items()},
            "fingers_in_contact_histogram": np.bincount(np.asarray(fingers, dtype=np.int64), minlength=6)[:6].tolist(),
            "finger_contact_fraction": dict(zip(FINGERS, (per_finger / max(1, kept)).tolist(), strict=True)),
            "palm_in_contact_fraction": float(np.mean(palm)) if palm else None,
        },
        "seconds_per_object": _quantiles(seconds),
        "seconds_per_kept_grasp": sum(seconds) / kept if kept else None,
    }
