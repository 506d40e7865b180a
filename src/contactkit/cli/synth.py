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
        "<= 1 cm, thumb and another finger in contact, thumb opposed to two fingers or the palm, >= 3 % of "
        "the hand within 2 mm), rank them by the Ferrari-Canny epsilon. Re-running "
        "the same command resumes from OUT.parts/.",
    )
    p.add_argument("--object", required=True, help="bundled object name, primitive spec or mesh path")
    p.add_argument("--n", type=int, required=True, help="number of accepted grasps wanted")
    p.add_argument("--hand", choices=["openhand", "mano"], default="openhand", help="hand model")
    p.add_argument("--side", choices=["right", "left"], default="right", help="hand side")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, or the local Ray's CPUs (default 1)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run batches as Ray tasks: a local Ray started here, or the cluster at ADDRESS")
    p.add_argument("--batch-size", type=int, default=None, help="candidates per batch")
    p.add_argument("--iterations", type=int, default=None, help="closing iterations per batch")
    p.add_argument("--max-batches", type=int, default=None, help="give up after this many batches")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", type=Path, required=True, help="output grasp file (.npz)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contactkit.synth.synthesis import SynthesisConfig, synthesize

    changes = {}
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    cfg = SynthesisConfig().with_updates(**changes)
    res = synthesize(args.object, args.n, hand=args.hand, side=args.side, seed=args.seed, config=cfg,
                     out=args.out, workers=args.workers, ray=args.ray, max_batches=args.max_batches,
                     progress=not args.no_progress)
    print(json.dumps(res.stats, indent=2, default=float))
    print(f"wrote {len(res.grasps)} grasps to {args.out}")
    return 0 if len(res.grasps) >= args.n else 1
