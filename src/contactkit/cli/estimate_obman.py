"""``contactkit estimate --model obman-net``: hand + reconstructed object from images or a rendered dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contactkit.errors import ContactkitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def estimate_obman(args: argparse.Namespace, inputs: list[Path]) -> Any:
    """The grasp set of ``contactkit estimate --model obman-net`` (rows linked to the ground truth for a dataset)."""
    import numpy as np
    import torch
    from PIL import Image

    from contactkit.fit.obman import grasps_from_obman, run_obman
    from contactkit.io.grasps import save_grasps
    from contactkit.vision.train_obman import obman_from_checkpoint

    if args.weights is None:
        raise ContactkitError("--model obman-net needs --weights (a `contactkit train obman-net` checkpoint, or the "
                              "shipped one: see docs/obman_net.md)")
    if args.object is not None:
        raise ContactkitError("--model obman-net reconstructs the object; --object does not apply")
    net, training = obman_from_checkpoint(args.weights)
    attrs: dict[str, Any] = {"weights": str(args.weights), "trained_on": training.get("dataset")}
    if len(inputs) == 1 and inputs[0].is_dir():
        from contactkit.dataset import RenderedDataset

        ds = RenderedDataset(inputs[0], args.split)
        reference = args.out.with_name(args.out.stem + ".reference.npz")
        save_grasps(reference, ds.grasps)
        samples = [ds[i] for i in range(len(ds))]
        rgb = torch.as_tensor(np.stack([s["rgb"] for s in samples]))
        k = torch.as_tensor(np.stack([s["K"] for s in samples]))
        ext = torch.as_tensor(np.stack([s["cam_from_world"] for s in samples]))
        meta = [{"view_index": int(s["view_index"]), "grasp_index": int(s["grasp_index"])} for s in samples]
        out = run_obman(net, rgb, k)
        return grasps_from_obman(net, out, ext, metadata=meta,
                                 attrs={**attrs, "reference": str(reference.resolve()), "dataset": str(inputs[0]),
                                        "split": args.split},
                                 reference_index=np.array([m["grasp_index"] for m in meta], dtype=np.int64))
    bad = [str(p) for p in inputs if p.suffix.lower() not in IMAGE_SUFFIXES]
    if bad:
        raise ContactkitError(f"--model obman-net takes one dataset folder or image files; not {bad}")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in inputs]
    if len({im.shape for im in images}) != 1:
        raise ContactkitError("all images must have the same size")
    h, w = images[0].shape[:2]
    f = args.focal if args.focal is not None else float(w)
    k = torch.tensor([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]]).expand(len(images), 3, 3)
    out = run_obman(net, torch.as_tensor(np.stack(images)), k)
    return grasps_from_obman(net, out, metadata=[{"image": str(p)} for p in inputs],
                             attrs={**attrs, "frame": "camera", "focal_px": f})
