"""Readers of public hand-object datasets into :class:`~contactkit.io.grasps.GraspSet` (MANO hands).

=============== ======================================= =============================================== format
function                                release / files (details in each module)
=============== ======================================= ===============================================
``contactpose`` :func:`read_contactpose`                ContactPose grasps + contact maps
(``annotations.json``, ``mano_fits_15.json``, ``{object}.ply``)
``ho3d``        :func:`read_ho3d`                       HO-3D v2 / v3 ``meta/*.pkl`` + YCB models ``grab``
:func:`read_grab`                       GRAB ``grab/s*/*.npz`` + ``tools/`` meshes ``oakink``
:func:`read_oakink_shape`               OakInk-Shape ``oakink_shape_v2`` + ``metaV2``
=============== ======================================= ===============================================

:func:`read_dataset` dispatches on the format name. See ``docs/datasets.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contactkit.hands.unpickle import RestrictedUnpickler
from contactkit.io.datasets._common import DatasetFormatError, load_restricted_pickle
from contactkit.io.datasets.contactpose import read_contactpose
from contactkit.io.datasets.grab import read_grab
from contactkit.io.datasets.ho3d import read_ho3d
from contactkit.io.datasets.oakink import read_oakink_shape

if TYPE_CHECKING:
    from contactkit.io.grasps import GraspSet

__all__ = [
    "DATASET_READERS",
    "DatasetFormatError",
    "RestrictedUnpickler",
    "load_restricted_pickle",
    "read_contactpose",
    "read_dataset",
    "read_grab",
    "read_ho3d",
    "read_oakink_shape",
]

DATASET_READERS: dict[str, Callable[..., GraspSet]] = {
    "contactpose": read_contactpose,
    "ho3d": read_ho3d,
    "grab": read_grab,
    "oakink": read_oakink_shape,
}


def read_dataset(fmt: str, path: str | Path, **options: Any) -> GraspSet:
    """Read ``path`` with the reader of ``fmt`` (a key of :data:`DATASET_READERS`), passing ``options``."""
    if fmt not in DATASET_READERS:
        raise DatasetFormatError(f"format must be one of {sorted(DATASET_READERS)}, got {fmt!r}")
    return DATASET_READERS[fmt](path, **options)
