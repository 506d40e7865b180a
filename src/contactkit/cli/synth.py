"""``contactkit synth``: synthesise stable grasps of an object (ObMan-style), resumable and parallel."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesise grasps of an object (resumable, parallel)",
        description="Sample approaches around the object, close the hand by optimisation, keep grasps "
        "passing the thresholds (penetration <= 2 mm, intersection <= 2 cm^3, simulation displacement "
        "<= 1 cm, thumb and another finger in contact), rank them by the Ferrari-Canny epsilon. Re-running "
        "the same command resumes from OUT.parts/.",
    )
    p.add_argument("--object", required=True, help="bundled object name, primitive spec or mesh path")
    p.add_argument("--n", type=int, required=True, help="number of accepted grasps wanted")
    p.add_argument("--hand", choices=["openhand", "mano"], default="openhand", help="hand model")
    p.add_argument("--side", choices=["right", "left"], default="right", help="hand side")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--batch-size", type=int, default=None, help="candidates per batch")
    p.add_argument("--iterations", type=int, default=None, help="closing iterations per batch")
    p.add_argument("--max-batches", type=int, default=None, help="give up after this many batches")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", type=Path, required=True, help="output grasp file (.npz)")
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
                     out=args.out, workers=args.workers, max_batches=args.max_batches,
                     progress=not args.no_progress, candidates=candidates)
    print(json.dumps(res.stats, indent=2, default=float))
    print(f"wrote {len(res.grasps)} grasps to {args.out}")
    return 0 if len(res.grasps) >= args.n else 1
