"""Hand layer: contactkit's MANO-format layer against smplx's MANO layer, side by side (forward + backward).

A MANO-format pickle is built from random arrays of MANO's real shapes (778 vertices, 16 joints, 135 pose
correctives, 10 shape coefficients; no real MANO file) and loaded by both layers. For batch 1, 64 and 1024, in
float32 and float64, the script times forward (no grad) and forward + backward (gradients to every input) of
both layers in alternation and prints the medians and their ratio. It also checks that both give the same
vertices. OpenHand (1159 vertices, no pose correctives) is timed alone, as smplx cannot load it.

smplx is an optional bench dependency (``pip install smplx --no-deps``); without it only contactkit is timed.
``--prev DIR`` (the ``src`` folder of an earlier tree, e.g. ``git archive 58975f8 src | tar -x -C /tmp/ck_prev``)
adds that tree's ``hands/lbs.py`` as a third column, in the same interleaved rounds, behind this tree's
``HandModel`` (same checks and wrapper), with its largest vertex difference to this tree; ``--paired N`` adds,
for forward+backward, N rounds of this tree and that one alone in alternating order and the median of the
per-round time ratios (finer than the ratio of medians on a busy machine).

    python benchmarks/bm_hands.py [--repeats 20] [--threads 1] [--prev /tmp/ck_prev/src [--paired 300]]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import numpy as np
import scipy.sparse
import torch

import contactkit.hands.base as hand_base
from _sidebyside import clock_fn, header, interleaved, load_module
from contactkit.hands import HandModel, load_hand
from contactkit.hands.base import MANO_PARENTS


def write_mano_format(folder: Path, seed: int = 0) -> None:
    """``MANO_RIGHT.pkl`` in MANO's layout (plain arrays, sparse regressor), random values of the real shapes."""
    rng = np.random.default_rng(seed)
    v = 778
    jreg = np.zeros((16, v))
    for j in range(16):
        idx = rng.choice(v, 12, replace=False)
        jreg[j, idx] = rng.random(12)
    jreg /= jreg.sum(1, keepdims=True)
    w = rng.random((v, 16)) ** 3
    w /= w.sum(1, keepdims=True)
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    kintree = np.array([[4294967295] + list(MANO_PARENTS[1:]), list(range(16))], dtype=np.int64)
    arrays = {
        "v_template": rng.normal(size=(v, 3)) * 0.04, "f": rng.integers(0, v, size=(1538, 3)).astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(jreg), "weights": w, "posedirs": rng.normal(size=(v, 3, 135)) * 2e-3,
        "shapedirs": rng.normal(size=(v, 3, 10)) * 5e-3, "hands_components": q,
        "hands_mean": rng.normal(size=45) * 0.1, "kintree_table": kintree, "bs_style": "lbs", "bs_type": "lrotmin",
    }  # fmt: skip
    (folder / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(arrays, protocol=2))


def inputs(batch: int, dtype: torch.dtype, grad: bool, nb: int = 10) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(batch)
    shapes = [(batch, 3), (batch, 45), (batch, nb), (batch, 3)]
    scale = [0.5, 0.3, 1.0, 0.1]
    pairs = zip(shapes, scale, strict=True)
    return [(s * torch.randn(*sh, generator=g, dtype=dtype)).requires_grad_(grad) for sh, s in pairs]


def step_contactkit(model: HandModel, x: list[torch.Tensor], backward: bool) -> Any:
    if not backward:
        with torch.no_grad():
            return model(*x).vertices
    out = model(x[0], x[1], x[2], x[3])
    (out.vertices.square().sum() + out.joints.sum()).backward()
    return None


def load_prev_lbs(src: str) -> ModuleType:
    """An earlier tree's ``contactkit/hands/lbs.py`` as a standalone module (it imports only ``contactkit.errors``)."""
    return load_module(Path(src) / "contactkit" / "hands" / "lbs.py", "_prev_lbs")


def prev_step(model: HandModel, prev: ModuleType) -> Callable[[list[torch.Tensor], bool], Any]:
    """``step_contactkit`` with the earlier tree's LBS (model packed once) behind this tree's ``HandModel``."""
    m = model
    packed = prev.pack_lbs(m.v_template, m.shapedirs_flat if m.num_betas > 0 else None,
                           m.posedirs_flat if m.has_posedirs else None, m.j_template,
                           m.j_shapedirs if m.num_betas > 0 else None, m.parents, m.lbs_weights)

    def step(x: list[torch.Tensor], backward: bool) -> Any:
        with mock.patch.object(hand_base, "lbs_packed", lambda p, b, t, _: prev.lbs_packed(p, b, t, packed)):
            return step_contactkit(model, x, backward)

    return step


def step_smplx(layer: Any, x: list[torch.Tensor], backward: bool) -> Any:
    if not backward:
        with torch.no_grad():
            return layer(global_orient=x[0], hand_pose=x[1], betas=x[2], transl=x[3]).vertices
    out = layer(global_orient=x[0], hand_pose=x[1], betas=x[2], transl=x[3])
    (out.vertices.square().sum() + out.joints.sum()).backward()
    return None


def paired_ratio(ours: Callable[[], Any], prev: Callable[[], Any], rounds: int) -> float:
    """Median over ``rounds`` of prev's time / ours in the same round (order alternating), process CPU time."""
    clock = clock_fn()
    ours(), prev()
    ratios = []
    for r in range(rounds):
        times = {}
        for k, fn in (("ours", ours), ("prev", prev)) if r % 2 == 0 else (("prev", prev), ("ours", ours)):
            t0 = clock()
            fn()
            times[k] = clock() - t0
        ratios.append(times["prev"] / times["ours"])
    return statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prev", default=None, help="src folder of an earlier tree: its hands/lbs.py as a third column")
    ap.add_argument("--paired", type=int, default=0, help="with --prev: rounds of paired timing (forward+backward)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prev = load_prev_lbs(args.prev) if args.prev else None
    try:
        import smplx
    except ImportError:
        smplx = None
    header("hand layer forward / forward+backward: contactkit vs smplx (MANO-format file, 778 vertices)")
    with tempfile.TemporaryDirectory() as tmp:
        write_mano_format(Path(tmp))
        for dtype in (torch.float32, torch.float64):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = load_hand("mano", "right", mano_dir=tmp, dtype=dtype)
                ref = None
                if smplx is not None:
                    ref = smplx.MANO(tmp, is_rhand=True, use_pca=False, flat_hand_mean=True, dtype=dtype)
            tag = str(dtype).removeprefix("torch.")
            prev_fn = prev_step(ours, prev) if prev is not None else None
            for batch in (1, 64, 1024):
                reps = args.repeats if batch < 1024 else max(5, args.repeats // 3)
                for backward in (False, True):
                    x = inputs(batch, dtype, backward)
                    fns = {"ours": lambda x=x, b=backward, m=ours: step_contactkit(m, x, b)}
                    if ref is not None:
                        fns["ref"] = lambda x=x, b=backward, r=ref: step_smplx(r, x, b)
                    if prev_fn is not None:
                        fns["prev"] = lambda x=x, b=backward, f=prev_fn: f(x, b)
                    med = interleaved(fns, reps, warmup=2)
                    what = "fwd+bwd" if backward else "fwd    "
                    line = f"mano-fmt {tag:<8} batch {batch:>5} {what} contactkit {med['ours']:8.2f} ms"
                    if ref is not None:
                        diff = ""
                        if not backward:
                            diff = f"   max |dv| {float((fns['ours']() - fns['ref']()).abs().max()):.1e} m"
                        line += f"   smplx {med['ref']:8.2f} ms   ratio {med['ref'] / med['ours']:5.2f}x{diff}"
                    if prev_fn is not None:
                        line += f"   prev {med['prev']:8.2f} ms   ratio {med['prev'] / med['ours']:5.2f}x"
                        if not backward:
                            line += f"   max |dv| {float((fns['ours']() - fns['prev']()).abs().max()):.1e} m"
                        elif args.paired > 0:
                            n = args.paired if batch < 1024 else max(10, args.paired // 20)
                            line += f"   paired {paired_ratio(fns['ours'], fns['prev'], n):5.3f}x ({n} rounds)"
                    print(line)
        oh = load_hand("openhand")
        for batch in (1, 64, 1024):
            x = inputs(batch, torch.float32, True, oh.num_betas)
            med = interleaved({"ours": lambda x=x: step_contactkit(oh, x, True)}, max(3, args.repeats // 2))
            print(f"openhand float32 batch {batch:>5} fwd+bwd contactkit {med['ours']:8.2f} ms")


if __name__ == "__main__":
    main()
