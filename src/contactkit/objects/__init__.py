"""contactkit.objects: validated object meshes, procedural primitives and the bundled YCB objects.

See ``docs/objects.md``.
"""

from contactkit.objects.bundled import BUNDLED_OBJECTS, list_bundled_objects, load_bundled, load_object
from contactkit.objects.cache import cache_root, content_hash
from contactkit.objects.mesh import SUPPORTED_SUFFIXES, ObjectMesh
from contactkit.objects.primitives import (
    PRIMITIVE_KINDS,
    box,
    capsule,
    cylinder,
    make_primitive,
    mug,
    sphere,
    torus,
)

__all__ = [
    "BUNDLED_OBJECTS",
    "PRIMITIVE_KINDS",
    "SUPPORTED_SUFFIXES",
    "ObjectMesh",
    "box",
    "cache_root",
    "capsule",
    "content_hash",
    "cylinder",
    "list_bundled_objects",
    "load_bundled",
    "load_object",
    "make_primitive",
    "mug",
    "sphere",
    "torus",
]
