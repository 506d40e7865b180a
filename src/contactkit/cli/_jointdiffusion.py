"""``contactkit train jointdiffusion``: the JointDiffusion part of ``contactkit train`` (arguments and run).

``--data`` is a ground-truth grasp file (e.g. from ``contactkit synth`` / ``benchmark-set``); the training pairs are
built here (``--context noisy``: ``--copies`` ContactOpt-protocol perturbations per grasp; ``--context object``: one
example per grasp) and cached in the run folder. Without ``--val`` a seeded tenth of the objects (at least one) is
held out for the validation loss, so validation never sees a training object.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from contactkit.cli._outputs import print_run


def add_jointdiffusion_arguments(p: argparse.ArgumentParser) -> None:
    """JointDiffusion-only options of ``contactkit train``."""
    g = p.add_argument_group("jointdiffusion")
    g.add_argument("--context", choices=("noisy", "object"), default=None,
                   help="jointdiffusion: condition on a noisy hand-object pair (refinement) or the object alone "
                   "(synthesis); required for jointdiffusion")
    g.add_argument("--steps", type=int, default=2000, help="jointdiffusion: optimiser steps (default 2000)")
    g.add_argument("--copies", type=int, default=16,
                   help="jointdiffusion, noisy context: perturbed copies per training grasp (default 16; 4 for "
                   "validation)")
    g.add_argument("--ema-decay", type=float, default=0.999, help="jointdiffusion: EMA decay (default 0.999)")
    g.add_argument("--val-every", type=int, default=100,
                   help="jointdiffusion: steps between validation and checkpoints (default 100)")
    g.add_argument("--base-channels", type=int, default=16,
                   help="jointdiffusion: channels of the U-Net's first level (default 16; 8 for a small CPU model)")
    g.add_argument("--no-cache", action="store_true",
                   help="jointdiffusion: build the training examples in memory only (no RUN/{train,val}_*.npz; a "
                   "resumed run rebuilds the same seeded examples): for large data, where the compressed cache "
                   "costs minutes and gigabytes")
    g.add_argument("--assignment", choices=("ordered", "shuffled"), default=None,
                   help="jointdiffusion: anchor assignment of the CHOIR distances (paper 002 App. B.1): 'ordered' "
                   "(m mod 32; each anchor is fixed only up to a mirror image) or 'shuffled' (a fixed permutation "
                   "of it; unique decode). Recorded with the weights. Default: ordered, or the --init weights' own "
                   "(another one with --init is refused)")
    g.add_argument("--attn-resolutions", type=int, nargs="+", default=[8, 4],
                   help="jointdiffusion: U-Net resolutions (voxels per axis) with self- and cross-attention "
                   "(default 8 4; 4 alone halves a CPU step)")


def _split_objects(grasps: Any, seed: int) -> tuple[Any, Any, dict[str, list[str]]]:
    import numpy as np

    ids = sorted(set(grasps.object_ids))
    if len(ids) < 2:
        from contactkit.errors import ContactkitError

        raise ContactkitError("--data holds one object: give --val (validation needs objects not seen in training)")
    rng = np.random.default_rng(seed)
    n_val = max(1, round(0.1 * len(ids)))
    val_ids = sorted(str(x) for x in rng.permutation(ids)[:n_val])
    is_val = np.array([o in val_ids for o in grasps.object_ids])
    names = lambda sel: sorted(f"{grasps.objects[o].name} ({o})" for o in sel)  # noqa: E731
    return (grasps.subset(np.flatnonzero(~is_val)), grasps.subset(np.flatnonzero(is_val)),
            {"train": names(set(ids) - set(val_ids)), "val": names(val_ids)})


def _examples(path: Path, grasps: Any, hand: Any, context: str, copies: int, seed: int, num_points: int,
              assignment: str, cache: bool = True) -> Any:
    from contactkit.diffusion.representation import ChoirExamples, build_examples

    expected = len(grasps) * (copies if context == "noisy" else 1)

    def build() -> ChoirExamples:
        return build_examples(grasps, hand, context, copies=copies, seed=seed, num_points=num_points,
                              assignment=assignment)

    if not cache:
        return build()
    if path.is_file():
        cached = ChoirExamples.load(path)
        if (len(cached) == expected and cached.context.shape[1] == (2 if context == "noisy" else 1)
                and cached.assignment == assignment):
            return cached
    ex = build()
    ex.save(path)
    return ex


def run_jointdiffusion(args: argparse.Namespace) -> int:
    from contactkit.diffusion.train import DiffusionTrainConfig, train_jointdiffusion
    from contactkit.errors import ContactkitError
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps

    if args.context is None:
        raise ContactkitError("--context (noisy or object) is required for jointdiffusion")
    if args.steps < 1 or args.batch_size < 1 or args.copies < 1 or args.val_every < 1:
        raise ContactkitError("--steps, --batch-size, --copies and --val-every must be >= 1")
    for name in ("data", "val"):
        path = getattr(args, name)
        if path is not None and not path.is_file():
            raise ContactkitError(f"--{name} file {path} does not exist")
    init = None
    assignment = args.assignment or "ordered"
    if args.init is not None:
        from contactkit.diffusion.checkpoint import load_diffusion
        from contactkit.diffusion.train import check_init

        init = load_diffusion(args.init)
        assignment = args.assignment or init.spec.assignment
        check_init(init, args.context, assignment)
    data = load_grasps(args.data)
    if data.reference_index is not None and "perturbation" in data.attrs:
        raise ContactkitError("--data must be ground-truth grasps (the perturbed copies are made here)")
    hand = load_hand(data.hand_model, data.side)
    if args.val is not None:
        train_set, val_set = data, load_grasps(args.val)
        split = {part: sorted(f"{g.objects[o].name} ({o})" for o in set(g.object_ids))
                 for part, g in (("train", train_set), ("val", val_set))}
    else:
        train_set, val_set, split = _split_objects(data, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = not getattr(args, "no_cache", False)
    print(f"building CHOIR examples ({f'cached in {args.out}' if cache else 'not cached'}) ...", flush=True)
    tr = _examples(args.out / f"train_{args.context}.npz", train_set, hand, args.context, args.copies, args.seed,
                   args.num_points, assignment, cache)
    va = _examples(args.out / f"val_{args.context}.npz", val_set, hand, args.context, 4, args.seed + 1,
                   args.num_points, assignment, cache)
    config = DiffusionTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                  ema_decay=args.ema_decay, val_every=args.val_every, seed=args.seed,
                                  device=args.device)
    metadata = {"data": str(args.data), "val": None if args.val is None else str(args.val), "split": split,
                "train_grasps": len(train_set), "val_grasps": len(val_set), "copies": args.copies,
                "context": args.context}

    def show(record: dict[str, Any]) -> None:
        if not args.quiet:
            print(f"step {record['step']}/{config.steps}: loss {record['train_loss']:.4f}, val "
                  f"{record['val_loss']:.4f} (best {record['best_val_loss']:.4f}), {record['seconds']:.1f} s",
                  flush=True)

    from contactkit.diffusion.model import JointDiffusionConfig
    from contactkit.diffusion.representation import context_channels

    model = JointDiffusionConfig(context_channels=context_channels(args.context), base_channels=args.base_channels,
                                 attn_resolutions=tuple(args.attn_resolutions),
                                 num_heads=4 if args.base_channels % 4 == 0 and args.base_channels >= 16 else 2)
    if init is not None:
        metadata["init"] = {"weights": str(args.init), "training": init.training}
    record = train_jointdiffusion(tr, va, args.context, args.out, config, model=model, metadata=metadata,
                                  hand_model=hand.name, num_points=args.num_points, on_record=show, init=init)
    if int(os.environ.get("RANK", 0)) == 0:  # torchrun: one summary line
        print_run(args.out, record, counter="step")
    return 0
