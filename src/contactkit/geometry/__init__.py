"""contactkit.geometry: batched, differentiable geometry between hands and objects (pure torch functions).

Conventions: metres; batch-first ``(B, N, 3)`` points; float32 and float64 kept; signed distances are
**negative inside**. Index searches (k-d trees, AABB trees, winding numbers) run without gradient on the CPU
(or by chunked brute force on CUDA); distances are then recomputed differentiably from the selected points.
"""

from contactkit.geometry.inside import contains, is_closed, signed_distance, winding_number
from contactkit.geometry.knn import NearestPoints, PointIndex, nearest_points
from contactkit.geometry.mesh_distance import (
    MeshClosest,
    MeshIndex,
    closest_points_on_mesh,
    mesh_index,
    point_triangle_closest,
)
from contactkit.geometry.normals import face_areas, face_normals, vertex_normals
from contactkit.geometry.rotations import (
    axis_angle_to_quat,
    axis_angle_to_rotmat,
    quat_to_axis_angle,
    quat_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat,
    rotmat_to_rot6d,
)
from contactkit.geometry.sampling import sample_surface
from contactkit.geometry.sdf import SDFGrid
from contactkit.geometry.transforms import (
    apply_rigid,
    compose_rigid,
    from_homogeneous,
    invert_rigid,
    random_rotations,
    to_homogeneous,
)

__all__ = [
    "MeshClosest",
    "MeshIndex",
    "NearestPoints",
    "PointIndex",
    "SDFGrid",
    "apply_rigid",
    "axis_angle_to_quat",
    "axis_angle_to_rotmat",
    "closest_points_on_mesh",
    "compose_rigid",
    "contains",
    "face_areas",
    "face_normals",
    "from_homogeneous",
    "invert_rigid",
    "is_closed",
    "mesh_index",
    "nearest_points",
    "point_triangle_closest",
    "quat_to_axis_angle",
    "quat_to_rotmat",
    "random_rotations",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_quat",
    "rotmat_to_rot6d",
    "sample_surface",
    "signed_distance",
    "to_homogeneous",
    "vertex_normals",
    "winding_number",
]
