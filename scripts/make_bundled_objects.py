"""Decimate three YCB meshes and store them in ``src/contactkit/objects/data/`` as compressed npz.

Run once by a maintainer (needs ``pip install fast-simplification`` and the YCB copies in
``../shared/assets/objects/ycb``); the outputs are committed so contactkit works without ``../shared``:

    python scripts/make_bundled_objects.py [--ycb-dir DIR] [--faces 3000]

Each ``<name>.npz`` holds ``vertices (V, 3) float32`` metres, ``faces (F, 3) int32`` and string fields
``name``, ``ycb_id``, ``source``, ``license``; the meshes have already been through ``ObjectMesh.from_arrays``
(duplicate vertices merged, degenerate faces removed), so loading them is deterministic. The YCB meshes are
CC BY 4.0 (Calli et al.); see ``src/contactkit/objects/data/LICENSE-YCB.md``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from contactkit.io.atomic import atomic_savez  # noqa: E402
from contactkit.objects.mesh import ObjectMesh  # noqa: E402

#: bundled name -> YCB file stem
OBJECTS = {
    "mug": "025_mug",
    "cracker_box": "003_cracker_box",
    "mustard_bottle": "006_mustard_bottle",
}
DATA_DIR = REPO / "src" / "contactkit" / "objects" / "data"


def decimate(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric edge-collapse decimation (fast-simplification) to about ``target_faces`` triangles."""
    import fast_simplification

    v, f = fast_simplification.simplify(
        vertices.astype(np.float32), faces.astype(np.int32), target_count=int(target_faces)
    )
    return np.asarray(v, dtype=np.float64), np.asarray(f, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ycb-dir", type=Path, default=REPO.parent / "shared" / "assets" / "objects" / "ycb")
    parser.add_argument("--faces", type=int, default=3000, help="target triangle count per object")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    for name, ycb_id in OBJECTS.items():
        src = args.ycb_dir / f"{ycb_id}.obj"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = ObjectMesh.from_file(src, name=name, units="m", repair=False)
            v, f = decimate(np.asarray(full.vertices), np.asarray(full.faces), args.faces)
            small = ObjectMesh.from_arrays(v.astype(np.float32), f, name=name, units="m", repair=False)
        out = args.out / f"{name}.npz"
        atomic_savez(
            out,
            vertices=np.asarray(small.vertices, dtype=np.float32),
            faces=np.asarray(small.faces, dtype=np.int32),
            name=np.str_(name),
            ycb_id=np.str_(ycb_id),
            source=np.str_(f"YCB {ycb_id}, {full.num_faces} faces, decimated to {small.num_faces}"),
            license=np.str_("CC BY 4.0, Calli et al., The YCB object and model set; see LICENSE-YCB.md"),
        )
        print(
            f"{name:15s} {ycb_id:22s} {full.num_faces:6d} -> {small.num_faces:5d} faces, "
            f"watertight={small.is_watertight}, {out.stat().st_size / 1024:.0f} KiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
