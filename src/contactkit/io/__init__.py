"""contactkit.io: atomic writes, the grasp file format and its parameter-only variant (``docs/grasp_format.md``).

``contactkit.io.atomic`` depends on nothing else in contactkit; ``contactkit.objects`` imports it lazily
(inside its disk-cache writer) so that ``io.grasps -> objects`` does not form an import cycle.
"""

from contactkit.io.atomic import atomic_savez, atomic_write_bytes, atomic_write_json, atomic_write_text
from contactkit.io.grasp_params import (
    GRASP_PARAMS_FORMAT_NAME,
    GRASP_PARAMS_FORMAT_VERSION,
    load_grasp_params,
    read_grasp_params_header,
    save_grasp_params,
)
from contactkit.io.grasps import GRASP_FORMAT_NAME, GRASP_FORMAT_VERSION, GraspSet, load_grasps, save_grasps

__all__ = [
    "GRASP_FORMAT_NAME",
    "GRASP_FORMAT_VERSION",
    "GRASP_PARAMS_FORMAT_NAME",
    "GRASP_PARAMS_FORMAT_VERSION",
    "GraspSet",
    "atomic_savez",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_grasp_params",
    "load_grasps",
    "read_grasp_params_header",
    "save_grasp_params",
    "save_grasps",
]
