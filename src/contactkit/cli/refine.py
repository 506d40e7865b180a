"""``contactkit refine``: refine the grasps of a file with a named contact method."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from contactkit.cli._args import device, output_file, positive_int, seed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from contactkit.refine.methods import METHODS

    lines = [f"  {name}: {spec.source}" for name, spec in sorted(METHODS.items())]
    p = subparsers.add_parser(
        "refine",
        help="refine grasps with ContactOpt, ObMan, CPF, CHOIR or physical-affinity test-time optimisation",
        description="Refine every grasp of GRASPS with a named method. By default every method runs in the wild, "
        "from the noisy hand and the object alone: contactopt with DeepContact, cpf/cpf_object with PiCR (shipped "
        "for OpenHand, moved onto any other hand by a vertex correspondence), obman with contact zones from grasp "
        "statistics, affinity with penetration, anatomy and a pose prior, choir with a learned CHOIR predictor "
        "(JointDiffusion) when one is installed. --estimator uses a trained checkpoint instead. The ground truth "
        "is used only with --targets oracle (the file 'contactkit perturb' linked) or --targets FILE (a reference "
        "grasp file); the output then records it and its rows are labelled '(oracle)'. When no targets exist "
        "for the method and hand, the command says how to fix it and exits non-zero.\n\nMethods:\n"
        + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("grasps", type=Path, help="grasp file to refine (.npz)")
    p.add_argument("--method", choices=sorted(METHODS), default="contactopt", help="method (default contactopt)")
    p.add_argument("--targets", default=None, metavar="oracle|FILE",
                   help="use the ground truth (oracle): 'oracle' for the linked ground truth, or a reference grasp "
                   "file paired through the set's reference_index (default: in the wild)")
    p.add_argument("--estimator", type=Path, default=None, metavar="CHECKPOINT",
                   help="a deepcontact or picr checkpoint (from 'contactkit train') predicting the targets")
    p.add_argument("--out", type=output_file, required=True, help="output grasp file (.npz)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--device", type=device, default="cpu", help="torch device (default cpu)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="grasps optimised together (default 64)")
    p.add_argument("--iterations", type=positive_int, default=None, help="override the method's iteration count")
    p.add_argument("--restarts", type=positive_int, default=None, help="override the method's number of restarts")
    p.add_argument("--mano-dir", type=Path, default=None, help="MANO model folder (MANO grasp files)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="refine the batches as Ray tasks: a local Ray started here (no ADDRESS) or the cluster at "
                   "ADDRESS (pip install 'contactkit[ray]'); same result as without")
    p.add_argument("--ray-cpus", type=positive_int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from contactkit.errors import ContactkitError
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps, save_grasps
    from contactkit.refine.api import refine
    from contactkit.targets import method_label, target_source_of

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
    if args.targets is not None:
        targets = args.targets  # "oracle" or a reference grasp file, resolved by refine()
    elif args.estimator is not None:
        from contactkit.refine.targets import estimator_from_checkpoint

        targets = estimator_from_checkpoint(args.estimator, hand, device=args.device)
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
                     batch_size=args.batch_size, progress=progress, ray=args.ray, ray_cpus=args.ray_cpus,
                     **overrides)
    finally:
        if bar is not None:
            bar.close()
    save_grasps(args.out, out)
    seconds = time.perf_counter() - t0
    label = method_label(args.method, target_source_of(out))
    print(f"refined {len(out)} grasps with {label} (targets: {target_source_of(out)}) in {seconds:.1f} s "
          f"({1000.0 * seconds / max(1, len(out)):.0f} ms per grasp); wrote {args.out}")
    return 0
