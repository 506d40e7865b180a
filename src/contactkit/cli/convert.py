"""``contactkit convert``: read a public dataset (ContactPose, HO-3D, GRAB, OakInk-Shape) as grasps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contactkit.cli._args import output_file, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a public hand-object dataset to a contactkit grasp file",
        description="Read a dataset in its documented public layout (see docs/datasets.md) into the "
        "contactkit grasp format with MANO as the hand.",
    )
    p.add_argument("format", choices=["contactpose", "ho3d", "grab", "oakink"], help="dataset format")
    p.add_argument("path", type=Path, help="dataset folder or file")
    p.add_argument("--out", type=output_file, required=True, help="output grasp file (.npz)")
    p.add_argument("--mano-dir", type=Path, default=None,
                   help="MANO model folder (contactpose, oakink, grab)")
    p.add_argument("--models-dir", type=Path, default=None, help="HO-3D: YCB models folder")
    p.add_argument("--side", choices=["right", "left"], default="right", help="contactpose, grab: which hand")
    p.add_argument("--stride", type=positive_int, default=None, help="ho3d, grab: keep every k-th frame")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contactkit.io.datasets import read_dataset
    from contactkit.io.grasps import save_grasps

    options: dict[str, Any] = {}
    if args.format in ("contactpose", "oakink"):
        options["mano_dir"] = args.mano_dir
    if args.format in ("contactpose", "grab"):
        options["side"] = args.side
    if args.format == "grab" and args.mano_dir is not None:
        from contactkit.hands import load_hand

        options["hand"] = load_hand("mano", args.side, mano_dir=args.mano_dir)
    if args.format == "ho3d":
        options["models_dir"] = args.models_dir
    if args.stride is not None and args.format in ("ho3d", "grab"):
        options["stride"] = args.stride
    grasps = read_dataset(args.format, args.path, **options)
    save_grasps(args.out, grasps)
    print(f"wrote {len(grasps)} grasps of {len(grasps.objects)} objects from {args.format} to {args.out}")
    return 0
