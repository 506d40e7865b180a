"""``contactkit train obman-net|honet|picr-image``: ObMan's hand + object network (paper 001 §3), CPF's HoNet or
CPF's image PiCR (paper 004 §4) on a rendered dataset.

Trains on the dataset's train split and selects ``best.pt`` on its val split (split by object at build time).
obman-net: ``--finetune-epochs N`` adds N epochs with ``--contact-weight`` x the contact loss (paper: 10);
``--contact-weight 0`` is the no-contact control with the same steps. ``--init RUN/last.pt`` starts from a trained
network (then ``--epochs`` is ignored: only the fine-tuning runs).
"""

from __future__ import annotations

import argparse

from contactkit.cli._outputs import print_epoch, print_run
from contactkit.errors import ContactkitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``obman-net`` (added to ``contactkit train``; it also reads --finetune-epochs,
    --finetune-lr, --init, --image-size, --width and --blocks of the keypoint group)."""
    g = parser.add_argument_group("obman-net (paper 001)")
    g.add_argument("--contact-weight", type=float, default=10.0,
                   help="obman-net: mu_C of the contact loss while fine-tuning (paper: 10; 0: control)")
    g.add_argument("--lambda-r", type=float, default=0.5,
                   help="obman-net: repulsion weight lambda_R of the contact loss (paper: 0.5)")
    g.add_argument("--normal-weight", type=float, default=0.0,
                   help="obman-net: mu_N of the object's normal-consistency regulariser (default 0: paper 001)")
    g.add_argument("--steps-per-epoch", type=int, default=0,
                   help="obman-net/honet: at most N steps per epoch, a fresh seeded subset each epoch (default 0: all)")
    g.add_argument("--hand", choices=("openhand", "mano"), default="openhand",
                   help="obman-net: hand model of the hand branch (default openhand; mano needs the MANO files)")


def run(args: argparse.Namespace) -> int:
    """Train an ObMan network, a HoNet or an image PiCR (``args.kind``); prints one JSON line with the run folder."""
    if args.kind == "picr-image":
        return _run_picr_image(args)
    import dataclasses

    from contactkit.dataset import RenderedDataset
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.honet import HoNetConfig
    from contactkit.vision.obman_net import ObManNetConfig
    from contactkit.vision.train_obman import ObManTrainConfig, train_obman

    train_ds, val_ds = RenderedDataset(args.data, "train"), RenderedDataset(args.data, "val")
    if train_ds.grasps.hand_model != args.hand:
        raise ContactkitError(f"the dataset's grasps use hand {train_ds.grasps.hand_model!r}; pass --hand "
                              f"{train_ds.grasps.hand_model}")
    settings = {"backbone": {"name": "resnet", "width": args.width, "blocks": args.blocks},
                "image_size": args.image_size, "hand": args.hand, "side": train_ds.grasps.side}
    honet = args.kind == "honet"
    if honet and args.finetune_epochs:
        raise ContactkitError("honet has no contact fine-tuning: --finetune-epochs applies to obman-net")
    net_config = HoNetConfig(**settings) if honet else ObManNetConfig(**settings)
    config = ObManTrainConfig(epochs=0 if args.init is not None else args.epochs,
                              finetune_epochs=args.finetune_epochs, batch_size=args.batch_size, lr=args.lr,
                              finetune_lr=args.finetune_lr, contact_weight=args.contact_weight,
                              lambda_r=args.lambda_r, seed=args.seed, device=args.device,
                              steps_per_epoch=args.steps_per_epoch, normal_weight=args.normal_weight)
    init_state = None
    if args.init is not None:
        ckpt = load_checkpoint(args.init, expected_kind="honet" if honet else "obman-net")
        if ckpt.config != dataclasses.asdict(net_config):
            raise ContactkitError(f"--init {args.init} holds a network with settings {ckpt.config}, not "
                                  f"{dataclasses.asdict(net_config)}")
        init_state = ckpt.state_dict
    metadata = {"dataset": str(args.data), "train_views": len(train_ds), "val_views": len(val_ds),
                "train_objects": len(train_ds.grasps.objects), "val_objects": len(val_ds.grasps.objects),
                "init": None if args.init is None else str(args.init)}

    record = train_obman(train_ds, train_ds.grasps, val_ds, val_ds.grasps, args.out, net_config, config,
                         progress=not args.quiet, metadata=metadata, on_record=print_epoch, init_state=init_state)
    print_run(args.out, record)
    return 0


def _run_picr_image(args: argparse.Namespace) -> int:
    """``train picr-image``: noisy ground-truth hands stand in for HoNet's (``contactkit.vision.train_picr_image``)."""
    from contactkit.dataset import RenderedDataset
    from contactkit.vision.picr_image import ImagePiCRConfig
    from contactkit.vision.train_picr_image import ImagePiCRTrainConfig, train_image_picr

    if args.init is not None or args.finetune_epochs:
        raise ContactkitError("picr-image has no --init or fine-tuning stage")
    train_ds, val_ds = RenderedDataset(args.data, "train"), RenderedDataset(args.data, "val")
    net_config = ImagePiCRConfig(backbone={"name": "resnet", "width": args.width, "blocks": args.blocks},
                                 image_size=args.image_size, hand=train_ds.grasps.hand_model, side=train_ds.grasps.side)
    config = ImagePiCRTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  num_points=min(args.num_points, 2048), seed=args.seed, device=args.device)
    record = train_image_picr(train_ds, train_ds.grasps, val_ds, val_ds.grasps, args.out, net_config, config,
                              progress=not args.quiet, metadata={"dataset": str(args.data)})
    print_run(args.out, record, val=record.get("val"))
    return 0
