"""``contactkit estimate``: grasps from images (or 2D keypoints) with the keypoint models of paper 003."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from contactkit.cli._images import not_images, read_images
from contactkit.errors import ContactkitError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "estimate",
        help="estimate grasps from images with the keypoint network (paper 003)",
        description="Estimate hand + object grasps: 2D keypoints -> context-aware graph network -> 3D keypoints "
        "-> hand IK and rigid box placement. INPUT is a rendered contactkit dataset folder (rows link to its "
        "ground truth, so `contactkit evaluate EST.npz` scores them), image files (camera frame; give --object "
        "and the intrinsics), or, with --model lifter and --from-ground-truth-2d, a ground-truth grasp file seen "
        "by random cameras (the paper's lifting-from-ground-truth-2D protocol; labelled as such).",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="dataset folder, image files or grasp file")
    p.add_argument("--model", choices=("keypoints", "lifter", "obman-net", "miho"), required=True,
                   help="keypoints: the image network; lifter: the graph network alone; "
                   "obman-net: ObMan's hand + object network (the object is reconstructed, no --object); "
                   "miho: CPF's HoNet -> PiCR -> GeO (--weights: a HoNet checkpoint, default the shipped one)")
    p.add_argument("--contact", choices=("image", "geometry", "none"), default="image",
                   help="miho: PiCR on image features (--picr-weights, default the shipped one), the shipped geometric "
                   "PiCR, or none (HoNet alone, no GeO) (default image)")
    p.add_argument("--picr-weights", type=Path, default=None, help="miho: image-PiCR checkpoint")
    p.add_argument("--geo-iterations", type=int, default=None, help="miho: GeO iterations (default: the cpf method's)")
    p.add_argument("--weights", type=Path, default=None,
                   help="checkpoint (default for keypoints, lifter, obman-net and miho: the shipped OpenHand weights)")
    p.add_argument("--object", default=None, help="object mesh (bundled name, primitive spec or path) for images")
    p.add_argument("--out", type=Path, required=True, help="output grasp file (.npz)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test", help="dataset split (default test)")
    p.add_argument("--from-ground-truth-2d", action="store_true",
                   help="lifter: take the 2D inputs from the ground truth (an oracle input; recorded in the file)")
    p.add_argument("--views-per-grasp", type=int, default=1, help="grasp-file input: random cameras per grasp")
    p.add_argument("--seed", type=int, default=0, help="grasp-file input: camera seed (default 0)")
    p.add_argument("--focal", type=float, default=None, help="images: focal length, pixels (default: image width)")
    p.add_argument("--ik-iterations", type=int, default=30, help="L-BFGS iterations of the hand IK (default 30)")
    p.add_argument("--penetration-weight", type=float, default=1.0,
                   help="weight of the placed object's penetration cost in the hand IK (contactkit.fit.penetration; "
                   "default 1: on the rendered dataset's held-out objects it cuts intersection volume by 68 %% at no "
                   "MPJPE cost, docs/keypoints.md; 0: keypoints alone)")
    p.set_defaults(func=run)


def _lifter(path: Path | None) -> Any:
    from contactkit.vision.train import lifter_from_checkpoint
    from contactkit.vision.weights import default_lifter_path

    net, _ = lifter_from_checkpoint(path if path is not None else default_lifter_path())
    if net.config.mode != "full":
        raise ContactkitError(f"the lifter must be a full graph (hand and object), got mode {net.config.mode!r}")
    return net


def _keypoint_net(path: Path | None) -> Any:
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.heads import KeypointNet, KeypointNetConfig
    from contactkit.vision.weights import default_keypoints_path

    ckpt = load_checkpoint(path if path is not None else default_keypoints_path(), expected_kind="keypoints")
    net = KeypointNet(KeypointNetConfig.from_dict(ckpt.config))
    net.load_state_dict(ckpt.state_dict)
    return net.eval()


def run(args: argparse.Namespace) -> int:

    from contactkit.fit.estimate import estimate_from_images, estimate_from_views
    from contactkit.fit.hand_ik import IKSettings
    from contactkit.hands import load_hand
    from contactkit.io.grasps import load_grasps, save_grasps

    ik = IKSettings(iterations=args.ik_iterations, penetration_weight=args.penetration_weight)
    inputs: list[Path] = args.inputs
    for path in inputs:
        if not path.exists():
            raise ContactkitError(f"INPUT {path} does not exist")
    out: Path = args.out
    if args.from_ground_truth_2d and args.model != "lifter":
        raise ContactkitError("--from-ground-truth-2d applies to --model lifter only")
    if args.model == "obman-net":
        from contactkit.cli.estimate_obman import estimate_obman

        grasps = estimate_obman(args, inputs)
    elif args.model == "miho":
        from contactkit.cli.estimate_obman import estimate_miho

        grasps = estimate_miho(args, inputs)
    elif len(inputs) == 1 and inputs[0].is_dir():
        grasps = _from_dataset(args, inputs[0], ik)
    elif len(inputs) == 1 and inputs[0].suffix == ".npz":
        if args.model != "lifter" or not args.from_ground_truth_2d:
            raise ContactkitError("a grasp file as INPUT is the lifting-from-ground-truth-2D protocol: give "
                                  "--model lifter --from-ground-truth-2d (an oracle input, recorded as such)")
        from contactkit.vision.data import synthetic_views

        gt = load_grasps(inputs[0])
        hand = load_hand(gt.hand_model, gt.side)
        views = synthetic_views(gt, hand, args.views_per_grasp, seed=args.seed)
        meshes = [gt.objects[oid] for oid in views.object_ids]
        attrs = {"reference": str(inputs[0].resolve()), "estimated_by": "lifter",
                 "keypoints_2d": "ground truth (oracle input)", "camera_seed": args.seed}
        grasps = estimate_from_views(_lifter(args.weights), views, hand, meshes, ik=ik, attrs=attrs)
    else:
        bad = not_images(inputs)
        if bad:
            raise ContactkitError(f"INPUT must be one dataset folder, one grasp file or image files; not {bad}")
        if args.model != "keypoints":
            raise ContactkitError("image files need --model keypoints (the image network)")
        if args.object is None:
            raise ContactkitError("image files need --object MESH (the held object's mesh)")
        from contactkit.objects import load_object

        mesh = load_object(args.object)
        net = _keypoint_net(args.weights)
        rgb, k, f = read_images(inputs, args.focal)
        hand = load_hand("openhand", "right")
        meta = [{"image": str(p)} for p in inputs]
        grasps = estimate_from_images(net, rgb, k, hand, [mesh] * len(inputs), ik=ik,
                                      metadata=meta, attrs={"estimated_by": "keypoints", "frame": "camera",
                                                            "focal_px": f})
    save_grasps(out, grasps)
    print(json.dumps({"out": str(out), "grasps": len(grasps), "reference": grasps.attrs.get("reference")}))
    return 0


def _from_dataset(args: argparse.Namespace, root: Path, ik: Any) -> Any:
    """Rows of a rendered dataset split, linked to its ground truth (saved beside the output)."""
    import numpy as np
    import torch

    from contactkit.dataset import RenderedDataset
    from contactkit.fit.estimate import estimate_from_images, estimate_from_views
    from contactkit.hands import load_hand
    from contactkit.io.grasps import save_grasps
    from contactkit.vision.data import OneBoxSamples, views_from_samples
    ds = OneBoxSamples(RenderedDataset(root, args.split))  # corners of the one object box, whatever the build's
    gt = ds.dataset.grasps
    reference = args.out.with_name(args.out.stem + ".reference.npz")
    save_grasps(reference, gt)
    hand = load_hand(gt.hand_model, gt.side)
    samples = [ds[i] for i in range(len(ds))]
    meshes = [gt.objects[gt.object_ids[int(s["grasp_index"])]] for s in samples]
    attrs = {"reference": str(reference.resolve()), "dataset": str(root), "split": args.split}
    if args.model == "lifter":
        if not args.from_ground_truth_2d:
            raise ContactkitError("--model lifter on a dataset reads its ground-truth 2D keypoints: add --from-"
                                  "ground-truth-2d (an oracle input, recorded as such), or use --model keypoints")
        views = views_from_samples(samples)
        return estimate_from_views(_lifter(args.weights), views, hand, meshes, ik=ik,
                                   attrs={**attrs, "estimated_by": "lifter",
                                          "keypoints_2d": "ground truth (oracle input)"})
    rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
    k = torch.as_tensor(np.stack([s["K"] for s in samples]))
    ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in samples]))
    meta = [{"view_index": int(s["view_index"]), "grasp_index": int(s["grasp_index"])} for s in samples]
    return estimate_from_images(_keypoint_net(args.weights), rgb, k, hand, meshes, cam_from_world=ext, ik=ik,
                                metadata=meta, attrs={**attrs, "estimated_by": "keypoints"},
                                reference_index=np.array([m["grasp_index"] for m in meta], dtype=np.int64))
