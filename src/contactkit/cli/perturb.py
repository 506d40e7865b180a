"""``contactkit perturb``: noisy copies of grasps under a named protocol, linked to their ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from contactkit.cli._args import MAX_COPIES, bounded_int, output_file, seed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from contactkit.synth.perturb import PROTOCOLS

    p = subparsers.add_parser(
        "perturb",
        help="make perturbed copies of grasps (contactopt, choir, small protocols)",
        description="Add the seeded noise of a named protocol to every grasp. The output records the input "
        "file as its ground truth (attrs['reference']) and which grasp each copy comes from "
        "(reference_index), so 'contactkit evaluate' finds the reference without --reference.",
    )
    p.add_argument("grasps", type=Path, help="ground-truth grasp file (.npz)")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="contactopt", help="noise protocol")
    p.add_argument("--copies", type=bounded_int(1, MAX_COPIES), default=1, help="copies per grasp (default 1)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=output_file, required=True, help="output grasp file (.npz)")
    p.add_argument("--mano-dir", type=Path, default=None, help="MANO model folder (MANO grasp files)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps, save_grasps
    from contactkit.synth.perturb import perturb

    grasps = load_grasps(args.grasps)
    hand = load_hand(grasps.hand_model, grasps.side, mano_dir=args.mano_dir)
    out = perturb(grasps, args.protocol, copies=args.copies, seed=args.seed, hand=hand,
                  reference=args.grasps.resolve())
    save_grasps(args.out, out)
    print(f"wrote {len(out)} perturbed grasps ({args.protocol}, seed {args.seed}) to {args.out}")
    return 0
