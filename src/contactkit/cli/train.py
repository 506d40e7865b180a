"""``contactkit train``: train DeepContact or PiCR on perturbed grasps linked to their ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contactkit.cli._args import bounded_int, device, finite_float, output_dir, positive_float, positive_int, seed
from contactkit.cli._outputs import print_run

if TYPE_CHECKING:
    from contactkit.learn.train import TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a learned model (deepcontact, picr, jointdiffusion, lifter, keypoints, obman-net, honet, "
        "picr-image)",
        description="Train DeepContact (binned hand and object contact) or PiCR (vertex contact, contact region, "
        "anchor elasticity) on noisy grasps whose ground truth is linked through attrs['reference'] and "
        "reference_index (as 'contactkit perturb' writes them). Network inputs and targets are cached as npz in "
        "the run folder; every epoch writes RUN/last.pt atomically, RUN/best.pt keeps the best validation "
        "contact F1, and rerunning the same command resumes.",
    )
    p.add_argument("kind", choices=("deepcontact", "picr", "jointdiffusion", "lifter", "keypoints", "obman-net",
                                     "honet", "picr-image"),
                   help="network to train")
    p.add_argument("--data", type=Path, required=True, help="training grasp file (perturbed, .npz)")
    p.add_argument("--val", type=Path, default=None,
                   help="validation grasp file (perturbed, .npz; required for deepcontact/picr)")
    p.add_argument("--out", type=output_dir, required=True, help="run folder (checkpoints, log.jsonl, caches)")
    p.add_argument("--epochs", type=positive_int, default=20, help="epochs (default 20)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="grasps per step (default 8)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=seed, default=0, help="seed of initialisation, data order, dropout (default 0)")
    p.add_argument("--device", type=device, default="cpu", help="torch device (default cpu)")
    p.add_argument("--backbone", choices=("small", "large"), default="small",
                   help="small (default, as shipped, ~40 k parameters) or the full multi-scale PointNet++ (~1 M)")
    p.add_argument("--no-contact-prior", action="store_true",
                   help="DeepContact: no per-vertex contact-bin prior from the training set (on by default)")
    p.add_argument("--no-shape-prior", action="store_true",
                   help="DeepContact: keep the contact prior but not its learnt dependence on the object's extents "
                   "and wrist-frame centroid (on by default; implied by --no-contact-prior)")
    p.add_argument("--pose-components", type=bounded_int(0, 256), default=0,
                   help="DeepContact: K > 0 principal axes of the noisy hand's wrist-frame posture join the object's "
                   "extents in the learnt dependence of the contact prior (default 0: object only)")
    p.add_argument("--class-weight-power", type=finite_float, default=0.5,
                   help="DeepContact: exponent of the inverse-frequency contact-bin weights (default 0.5; 0: plain "
                   "cross-entropy, calibrated expected contact)")
    p.add_argument("--num-points", type=positive_int, default=2048, help="object samples per grasp (default 2048)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    from contactkit.cli._jointdiffusion import add_jointdiffusion_arguments

    add_jointdiffusion_arguments(p)
    from contactkit.cli import train_keypoints


    train_keypoints.add_arguments(p)
    from contactkit.cli import train_obman

    train_obman.add_arguments(p)
    p.set_defaults(func=run)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~contactkit.learn.train.TrainConfig` of parsed ``contactkit train`` arguments."""
    from contactkit.learn.train import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       device=args.device, small=args.backbone == "small",
                       contact_prior=not args.no_contact_prior,
                       shape_prior=not (args.no_contact_prior or args.no_shape_prior),
                       pose_components=args.pose_components, class_weight_power=args.class_weight_power)


def run(args: argparse.Namespace) -> int:
    from contactkit.errors import ContactkitError
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps
    from contactkit.learn.data import cached_contact_tensors
    from contactkit.learn.train import train

    if args.kind == "jointdiffusion":
        from contactkit.cli._jointdiffusion import run_jointdiffusion

        return run_jointdiffusion(args)
    if args.kind in ("obman-net", "honet", "picr-image"):
        from contactkit.cli import train_obman

        return train_obman.run(args)
    if args.kind in ("lifter", "keypoints"):
        from contactkit.cli import train_keypoints

        return train_keypoints.run(args)
    if args.val is None:
        raise ContactkitError(f"train {args.kind} needs --val")
    for name in ("data", "val"):
        if getattr(args, name) is None or not getattr(args, name).is_file():
            raise ContactkitError(f"--{name} file {getattr(args, name)} does not exist")
    if args.epochs < 1 or args.batch_size < 2:
        raise ContactkitError("--epochs must be >= 1 and --batch-size >= 2 (batch norm needs two samples)")
    head = load_grasps(args.data)
    hand = load_hand(head.hand_model, head.side)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"building network inputs and targets (cached in {args.out}) ...", flush=True)
    train_data = cached_contact_tensors(args.data, hand, args.out / "train_tensors.npz", num_points=args.num_points)
    val_data = cached_contact_tensors(args.val, hand, args.out / "val_tensors.npz", num_points=args.num_points)
    config = train_config(args)
    metadata: dict[str, Any] = {
        "hand_model": hand.name,
        "side": hand.side,
        "num_points": args.num_points,
        "train_grasps": len(train_data),
        "val_grasps": len(val_data),
        "train_file": str(args.data),
        "val_file": str(args.val),
    }

    def show(record: dict[str, Any]) -> None:
        val = ", ".join(f"{k} {v:.1f}" for k, v in record["val"].items())
        print(f"epoch {record['epoch'] + 1}/{config.epochs}: loss {record['train_loss']:.4f}, val {val}, "
              f"{record['seconds']:.1f} s ({record['grasps_per_second']:.1f} grasps/s)", flush=True)

    record = train(args.kind, train_data, val_data, args.out, config, progress=not args.quiet,
                   metadata=metadata, on_record=show)
    print_run(args.out, record)
    return 0
