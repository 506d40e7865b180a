"""contactkit.io: atomic writes and the grasp file format (``docs/grasp_format.md``).

``contactkit.io.atomic`` depends on nothing else in contactkit; ``contactkit.objects`` imports it lazily
(inside its disk-cache writer) so that ``io.grasps -> objects`` does not form an import cycle.
"""

from contactkit.io.atomic import atomic_savez, atomic_write_bytes, atomic_write_json, atomic_write_text
from contactkit.io.grasps import GRASP_FORMAT_NAME, GRASP_FORMAT_VERSION, GraspSet, load_grasps, save_grasps

__all__ = [
    "GRASP_FORMAT_NAME",
    "GRASP_FORMAT_VERSION",
    "GraspSet",
    "atomic_savez",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_grasps",
    "save_grasps",
]
