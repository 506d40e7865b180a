"""``contactkit refine``: refine the grasps of a file with a named contact method."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from contactkit.refine.methods import METHODS

    lines = [f"  {name}: {spec.source}" for name, spec in sorted(METHODS.items())]
    p = subparsers.add_parser(
        "refine",
        help="refine grasps with ContactOpt, ObMan, CPF, CHOIR or physical-affinity test-time optimisation",
        description="Refine every grasp of GRASPS with a named method. Targets come from --targets (a reference "
        "grasp file: oracle contact measured on it; or 'oracle': the ground truth 'contactkit perturb' linked to "
        "the file), else from --estimator (a trained checkpoint), else, for contactopt and cpf, from the shipped "
        "learned estimator (DeepContact, PiCR), else from the linked ground truth, else from the file's own "
        "hand_contact/object_contact maps.\n\nMethods:\n"
        + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("grasps", type=Path, help="grasp file to refine (.npz)")
    p.add_argument("--method", choices=sorted(METHODS), default="contactopt", help="method (default contactopt)")
    p.add_argument("--targets", default=None, metavar="REF|oracle",
                   help="reference grasp file for oracle targets, or 'oracle' for the linked ground truth")
    p.add_argument("--estimator", type=Path, default=None, metavar="CHECKPOINT",
                   help="a deepcontact or picr checkpoint (from 'contactkit train') predicting the targets")
    p.add_argument("--out", type=Path, required=True, help="output grasp file (.npz)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="grasps optimised together (default 64)")
    p.add_argument("--iterations", type=int, default=None, help="override the method's iteration count")
    p.add_argument("--restarts", type=int, default=None, help="override the method's number of restarts")
    p.add_argument("--mano-dir", type=Path, default=None, help="MANO model folder (MANO grasp files)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from contactkit.errors import ContactkitError
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps, save_grasps
    from contactkit.refine.api import refine

    grasps = load_grasps(args.grasps)
    hand = load_hand(grasps.hand_model, grasps.side, mano_dir=args.mano_dir)
    overrides = {}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.restarts is not None:
        overrides["restarts"] = args.restarts
    targets: Any = None
    if args.targets is not None and args.estimator is not None:
        raise ContactkitError("give either --targets or --estimator, not both")
    if args.targets == "oracle":
        targets = "oracle"
    elif args.targets is not None:
        targets = load_grasps(args.targets)
    elif args.estimator is not None:
        from contactkit.learn.checkpoint import load_checkpoint
        from contactkit.learn.estimators import load_estimator

        kind = load_checkpoint(args.estimator).kind
        if kind != "deepcontact" and kind != "picr":
            raise ContactkitError(f"--estimator {args.estimator} holds a {kind} network, not a contact estimator")
        targets = load_estimator(kind, hand, args.estimator, device=args.device)
    bar = None if args.no_progress else tqdm(total=1, desc=f"refine {args.method}", unit="it", file=sys.stderr)

    def progress(step: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.total = total
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            bar.refresh()

    t0 = time.perf_counter()
    try:
        out = refine(grasps, args.method, targets=targets, hand=hand, seed=args.seed, device=args.device,
                     batch_size=args.batch_size, progress=progress, **overrides)
    finally:
        if bar is not None:
            bar.close()
    save_grasps(args.out, out)
    seconds = time.perf_counter() - t0
    print(f"refined {len(out)} grasps with {args.method} in {seconds:.1f} s "
          f"({1000.0 * seconds / max(1, len(out)):.0f} ms per grasp); wrote {args.out}")
    return 0
