"""``contactkit synth``: synthesise stable grasps of an object (ObMan-style), resumable and parallel."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contactkit.cli._args import MAX_GRASPS, bounded_int, output_file, positive_int, seed, workers


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesise grasps of an object (resumable, parallel)",
        description="Sample approaches around the object, close the hand by optimisation, keep grasps "
        "passing the thresholds (penetration <= 2 mm, intersection <= 2 cm^3, simulation displacement "
        "<= 1 cm, thumb and another finger in contact, thumb opposed to two fingers or the palm, >= 3.5 % of "
        "the hand within 2 mm), rank them by the Ferrari-Canny epsilon. Re-running "
        "the same command resumes from OUT.parts/.",
    )
    p.add_argument("--object", required=True, help="bundled object name, primitive spec or mesh path")
    p.add_argument("--n", type=bounded_int(1, MAX_GRASPS), required=True, help="number of accepted grasps wanted")
    p.add_argument("--hand", choices=["openhand", "mano"], default="openhand", help="hand model")
    p.add_argument("--side", choices=["right", "left"], default="right", help="hand side")
    p.add_argument("--seed", type=seed, default=0, help="run seed (default 0)")
    p.add_argument("--workers", type=workers, default=1, help="worker processes, or the local Ray's CPUs (default 1)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run batches as Ray tasks: a local Ray started here, or the cluster at ADDRESS")
    p.add_argument("--batch-size", type=positive_int, default=None, help="candidates per batch")
    p.add_argument("--iterations", type=positive_int, default=None, help="closing iterations per batch")
    p.add_argument("--max-batches", type=positive_int, default=None, help="give up after this many batches")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", type=output_file, required=True, help="output grasp file (.npz)")
    p.add_argument("--method", choices=("optimize", "diffusion"), default="optimize",
                   help="optimize (default: close the hand by optimisation) or diffusion (sample CHOIRs from the "
                   "object-conditioned JointDiffusion model and fit them; same acceptance checks and output)")
    p.add_argument("--weights", type=Path, default=None,
                   help="--method diffusion: a JointDiffusion checkpoint (default: the shipped object model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contactkit.synth.synthesis import SynthesisConfig, synthesize

    changes = {}
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    cfg = SynthesisConfig().with_updates(**changes)
    candidates = None
    if args.method == "diffusion":
        from contactkit.diffusion.synthesis import diffusion_candidates

        candidates = diffusion_candidates(args.hand, args.side, args.weights, args.seed)
    res = synthesize(args.object, args.n, hand=args.hand, side=args.side, seed=args.seed, config=cfg,
                     out=args.out, workers=args.workers, ray=args.ray, max_batches=args.max_batches,
                     progress=not args.no_progress, candidates=candidates)
    print(json.dumps(res.stats, indent=2, default=float))
    if len(res.grasps) >= args.n:
        print(f"wrote {len(res.grasps)} grasps to {args.out}")
        return 0
    print(f"only {len(res.grasps)} of {args.n} grasps were accepted; nothing was written to {args.out} (finished "
          f"batches are kept in {args.out}.parts/ and a rerun with more --max-batches resumes from them)",
          file=sys.stderr)
    return 1
