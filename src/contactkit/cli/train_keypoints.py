"""``contactkit train lifter|keypoints``: the keypoint models of paper 003 (arguments and runner).

``lifter``: the context-aware graph network alone, from 2D keypoints made without images — every ground-truth
grasp of ``--data`` / ``--val`` (grasp files) seen by ``--views-per-grasp`` random cameras around the pair.
``keypoints``: the image encoder + lifter on a rendered dataset (``contactkit.dataset.RenderedDataset``), its object
corners taken from the one object box (:class:`contactkit.vision.data.OneBoxSamples`, so datasets built with an
older box definition train the same targets).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contactkit.cli._args import int_list
from contactkit.cli._outputs import print_epoch, print_run
from contactkit.errors import ContactkitError

KINDS = ("lifter", "keypoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the keypoint models (added to ``contactkit train``)."""
    g = parser.add_argument_group("keypoint models (lifter, keypoints; paper 003)")
    g.add_argument("--mode", choices=("full", "hand", "object"), default="full",
                   help="graph: both sub-graphs + merged graph (default), or one sub-graph only (Table 2 ablations)")
    g.add_argument("--views-per-grasp", type=int, default=40,
                   help="lifter: random cameras per ground-truth grasp (default 40; validation uses 10)")
    g.add_argument("--views-per-step", type=int, default=256, help="views per optimisation step (default 256)")
    g.add_argument("--finetune-epochs", type=int, default=0,
                   help="epochs after --epochs at --finetune-lr with the affinity loss added (default 0)")
    g.add_argument("--finetune-lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4)")
    g.add_argument("--affinity-weight", type=float, default=10.0,
                   help="weight of the physical affinity loss while fine-tuning (paper: 10; 0: MSE-only control)")
    g.add_argument("--weight-2d", type=float, default=0.01,
                   help="keypoints: weight of the 2D loss (pixels^2) beside the 3D loss (mm^2) (default: the "
                   "paper's 0.01)")
    g.add_argument("--augment", action="store_true",
                   help="keypoints: random zoom / shift and colour changes of the training images")
    g.add_argument("--init", type=Path, default=None,
                   help="start from this checkpoint's weights (e.g. a trained run's best.pt, to fine-tune it)")
    g.add_argument("--noise-px", type=float, default=0.0, help="lifter: 2D noise added while training, pixels")
    g.add_argument("--hidden", type=int, default=128, help="features per graph node (default 128)")
    g.add_argument("--image-size", type=int, default=128, help="keypoints: square input size, pixels (default 128)")
    g.add_argument("--width", type=int, default=32, help="keypoints: channels of the ResNet's first stage (default 32)")
    g.add_argument("--blocks", type=int_list, default="2,2,2",
                   help="keypoints: basic blocks per ResNet stage (default 2,2,2)")


def run(args: argparse.Namespace) -> int:
    """Train a lifter or a keypoint network; prints one JSON line with the run folder."""
    if args.kind == "keypoints":
        return _run_keypoints(args)
    import dataclasses

    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.data import synthetic_views
    from contactkit.vision.lifter import LifterConfig
    from contactkit.vision.train import LifterTrainConfig, train_lifter

    if args.val is None:
        raise ContactkitError("train lifter needs --val (ground-truth grasps of validation objects)")
    for name in ("data", "val"):
        if not getattr(args, name).is_file():
            raise ContactkitError(f"--{name} file {getattr(args, name)} does not exist")
    if args.views_per_grasp < 1 or args.views_per_step < 1:
        raise ContactkitError("--views-per-grasp and --views-per-step must be >= 1")
    train_set, val_set = load_grasps(args.data), load_grasps(args.val)
    hand = load_hand(train_set.hand_model, train_set.side)
    train_views = synthetic_views(train_set, hand, args.views_per_grasp, seed=args.seed)
    val_views = synthetic_views(val_set, hand, 10, seed=10_007)
    epochs = args.epochs
    if args.init is not None:
        epochs = 0
    net_config = LifterConfig(mode=args.mode, hidden=args.hidden)
    config = LifterTrainConfig(epochs=epochs, finetune_epochs=args.finetune_epochs, batch_size=args.views_per_step,
                               lr=args.lr, finetune_lr=args.finetune_lr,
                               affinity_weight=args.affinity_weight if args.finetune_epochs else 0.0,
                               noise_px=args.noise_px, seed=args.seed, device=args.device)
    init_state = None
    if args.init is not None:
        ckpt = load_checkpoint(args.init, expected_kind="lifter")
        if ckpt.config != dataclasses.asdict(net_config):
            raise ContactkitError(f"--init {args.init} holds a lifter with settings {ckpt.config}, not "
                                  f"{dataclasses.asdict(net_config)}")
        init_state = ckpt.state_dict
    metadata: dict[str, Any] = {
        "hand_model": hand.name, "side": hand.side, "train_file": str(args.data), "val_file": str(args.val),
        "train_grasps": len(train_set), "val_grasps": len(val_set), "train_views": len(train_views),
        "train_objects": sorted({o.name for o in train_set.objects.values()}),
        "val_objects": sorted({o.name for o in val_set.objects.values()}),
        "init": None if args.init is None else str(args.init),
    }

    record = train_lifter(train_views, val_views, args.out, net_config, config, progress=not args.quiet,
                          metadata=metadata, on_record=print_epoch, init_state=init_state)
    print_run(args.out, record)
    return 0


def _run_keypoints(args: argparse.Namespace) -> int:
    """``train keypoints --data DATASET``: the image network on the rendered dataset's train / val splits."""
    import dataclasses

    from contactkit.dataset import RenderedDataset
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.data import OneBoxSamples
    from contactkit.vision.heads import KeypointNetConfig
    from contactkit.vision.train_keypoints import KeypointTrainConfig, train_keypoints
    # every shard stays in memory: a shuffled epoch touches all of them (a few MB per 100 views at 128 px)
    train_ds = OneBoxSamples(RenderedDataset(args.data, "train", cache_shards=1_000_000))
    val_ds = OneBoxSamples(RenderedDataset(args.data, "val", cache_shards=1_000_000))
    net_config = KeypointNetConfig(backbone={"name": "resnet", "width": args.width, "blocks": args.blocks},
                                   image_size=args.image_size, lifter={"mode": args.mode, "hidden": args.hidden})
    config = KeypointTrainConfig(epochs=0 if args.init is not None else args.epochs,
                                 finetune_epochs=args.finetune_epochs, batch_size=args.views_per_step, lr=args.lr,
                                 finetune_lr=args.finetune_lr, affinity_weight=args.affinity_weight,
                                 weight_2d=args.weight_2d, augment=args.augment, seed=args.seed,
                                 device=args.device)
    init_state = None
    if args.init is not None:
        ckpt = load_checkpoint(args.init, expected_kind="keypoints")
        if ckpt.config != dataclasses.asdict(net_config):
            raise ContactkitError(f"--init {args.init} holds a network with settings {ckpt.config}")
        init_state = ckpt.state_dict
    metadata = {"dataset": str(args.data), "train_views": len(train_ds), "val_views": len(val_ds),
                "train_objects": sorted({o.name for o in train_ds.dataset.grasps.objects.values()}),
                "val_objects": sorted({o.name for o in val_ds.dataset.grasps.objects.values()}),
                "init": None if args.init is None else str(args.init)}

    record = train_keypoints(train_ds, val_ds, args.out, net_config, config, progress=not args.quiet,
                             metadata=metadata, on_record=print_epoch, init_state=init_state)
    print_run(args.out, record)
    return 0
