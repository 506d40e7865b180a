"""OpenHand: contactkit's default, openly licensed hand (MANO-format), converted from the WebXR generic hand.

The asset is the "generic-hand" profile of ``@webxr-input-profiles/assets`` 1.0.20 (MIT, (c) 2019 Amazon; the
notice is in ``hands/assets/LICENSE-webxr-generic-hand.md``), converted by ``scripts/make_openhand.py`` into
``hands/assets/openhand_{right,left}.npz`` (plain arrays, no pickle). See ``docs/hands.md`` for the joint
mapping, the rest frame, the shape space and the synthetic pose PCA.

Rest frame (``betas = 0``, zero pose): the asset as stored, a flat open hand, in metres, translated so the
wrist joint is at the origin; fingers point along about -y; right hand's palm faces about -x (left: +x).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from contactkit.errors import HandModelError
from contactkit.hands.base import HandModelData, check_side

__all__ = ["ASSET_DIR", "OPENHAND_SHAPE_NAMES", "openhand_arrays", "openhand_data"]

ASSET_DIR = Path(__file__).resolve().parent / "assets"
#: Shape coefficients of OpenHand; one unit is about one standard deviation of adult anthropometry.
OPENHAND_SHAPE_NAMES = (
    "scale", "palm_width", "thickness",
    "thumb_length", "index_length", "middle_length", "ring_length", "little_length",
)  # fmt: skip


@lru_cache(maxsize=2)
def openhand_arrays(side: str) -> dict[str, np.ndarray]:
    """All arrays stored in ``openhand_<side>.npz`` (read-only, cached)."""
    side = check_side(side)
    path = ASSET_DIR / f"openhand_{side}.npz"
    if not path.is_file():
        raise HandModelError(f"OpenHand asset missing: {path} (regenerate with scripts/make_openhand.py)")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def openhand_data(side: str = "right") -> HandModelData:
    """Arrays of OpenHand for one side, ready for :class:`~contactkit.hands.base.HandModel`."""
    a = openhand_arrays(side)
    faces = np.asarray(a["faces"], dtype=np.int64)
    return HandModelData(
        name="openhand",
        side=side,
        v_template=np.array(a["v_template"], dtype=np.float64),
        faces=faces,
        closed_faces=faces.copy(),
        j_regressor=np.array(a["j_regressor"], dtype=np.float64),
        weights=np.array(a["weights"], dtype=np.float64),
        posedirs=None,
        shapedirs=np.array(a["shapedirs"], dtype=np.float64),
        parents=np.array(a["parents"], dtype=np.int64),
        fingertips=np.array(a["fingertips"], dtype=np.int64),
        pca_components=np.array(a["pca_components"], dtype=np.float64),
        pca_mean=np.array(a["pca_mean"], dtype=np.float64),
        shape_names=tuple(str(s) for s in a["shape_names"]),
        info={
            "source": str(a["source"]),
            "licence": "MIT, (c) 2019 Amazon (see LICENSE-webxr-generic-hand.md)",
        },
    )
