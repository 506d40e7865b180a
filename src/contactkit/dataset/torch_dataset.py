"""``RenderedDataset``: a PyTorch ``Dataset`` over the views of one split of a rendered dataset, streaming shards.

The grasps of the split (small) are loaded at construction into ``ds.grasps``; the views (depth, masks, images)
are read per shard on demand and the most recently used shards are kept (``cache_shards``), so a sequential
pass reads each shard once.
"""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from contactkit.dataset.build import SPLITS, read_manifest
from contactkit.dataset.shard import VIEW_ARRAYS, shard_dir
from contactkit.errors import ContactkitError

__all__ = ["RenderedDataset"]


class RenderedDataset(torch.utils.data.Dataset):
    """The rendered views of one split (contract A in the project's ownership notes; ``docs/dataset.md``).

    Args:
        root: dataset folder (``dataset.json``, ``shards/``).
        split: ``train``, ``val`` or ``test`` (by object, fixed at build time).
        cache_shards: shards whose views are kept in memory.

    ``ds[i]`` is a dict: ``rgb (H, W, 3) uint8``, ``depth (H, W) float32`` (metres, camera z, 0 = nothing),
    ``hand_mask``/``object_mask (H, W) bool``, ``K (3, 3)``, ``cam_from_world (4, 4)``,
    ``hand_keypoints_3d (21, 3)`` (camera frame, m), ``hand_keypoints_2d (21, 2)`` (pixels), ``object_corners_3d
    (8, 3)``, ``object_corners_2d (8, 2)`` (float32), ``grasp_index`` (row of ``ds.grasps``), ``object_id``,
    ``view_index``. Only complete shards are read (a build in progress can be read at any time).
    """

    def __init__(self, root: str | Path, split: Literal["train", "val", "test"], *, cache_shards: int = 2) -> None:
        from contactkit.io.grasps import GraspSet, load_grasps

        if split not in SPLITS:
            raise ContactkitError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.split = split
        self._shards: list[dict[str, Any]] = []
        self._index: list[tuple[int, int]] = []
        sets = []
        offset = 0
        for o in self.manifest["objects"]:
            if o["split"] != split:
                continue
            folder = shard_dir(self.root, o["shard"])
            js = folder / "shard.json"
            if not js.is_file():
                continue
            meta = json.loads(js.read_text())
            if meta["n_grasps"] == 0:
                continue
            g = load_grasps(folder / "grasps.npz")
            sets.append(g)
            k = len(self._shards)
            self._shards.append({"folder": folder, "object_id": o["object_id"], "grasp_offset": offset,
                                 "n_views": meta["n_views"]})
            self._index.extend((k, j) for j in range(meta["n_views"]))
            offset += len(g)
        if not sets:
            raise ContactkitError(f"{self.root}: no finished shard in split {split!r}")
        self.grasps = GraspSet.concat(sets) if len(sets) > 1 else sets[0]
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_size = max(1, int(cache_shards))

    def __len__(self) -> int:
        return len(self._index)

    def _views(self, k: int) -> dict[str, np.ndarray]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        with np.load(self._shards[k]["folder"] / "views.npz", allow_pickle=False) as z:
            arrays = {name: np.array(z[name]) for name in (*VIEW_ARRAYS, "grasp_row", "view_index")}
        self._cache[k] = arrays
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arrays

    def __getitem__(self, i: int) -> dict[str, Any]:
        from PIL import Image

        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} views")
        k, j = self._index[i]
        shard = self._shards[k]
        arr = self._views(k)
        row, view = int(arr["grasp_row"][j]), int(arr["view_index"][j])
        png = shard["folder"] / "rgb" / f"g{row:04d}_v{view:02d}.png"
        with Image.open(io.BytesIO(png.read_bytes())) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        item: dict[str, Any] = {name: arr[name][j] for name in VIEW_ARRAYS}
        item.update({"rgb": rgb, "grasp_index": shard["grasp_offset"] + row, "object_id": shard["object_id"],
                     "view_index": view})
        return item
