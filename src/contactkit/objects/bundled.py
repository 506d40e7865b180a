"""Bundled real objects (decimated YCB meshes, CC BY 4.0) and the one-string object loader.

``load_object(spec)`` resolves, in this order:

1. an ``ObjectMesh`` (returned as is);
2. a bundled name: ``"mug"``, ``"cracker_box"``, ``"mustard_bottle"`` (see :func:`list_bundled_objects`);
3. a primitive spec ``"kind:key=value,..."`` or a bare primitive kind (``"sphere:radius=0.04"``,
   ``"box:extents=0.05/0.05/0.1"``, ``"torus"``); note ``"mug"`` is the bundled YCB mug, the procedural mug is
   ``"mug:"`` (or with parameters);
4. a path to a mesh file (``.obj/.ply/.stl/.glb/.gltf/.off``).
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

import numpy as np

from contactkit.errors import ContactkitError, MeshError
from contactkit.objects.checks import Units
from contactkit.objects.mesh import SUPPORTED_SUFFIXES, ObjectMesh
from contactkit.objects.primitives import PRIMITIVE_KINDS, make_primitive, parse_primitive_spec

__all__ = ["BUNDLED_OBJECTS", "bundled_object_info", "list_bundled_objects", "load_bundled", "load_object"]

#: bundled name -> YCB id of the source mesh
BUNDLED_OBJECTS: dict[str, str] = {
    "mug": "025_mug",
    "cracker_box": "003_cracker_box",
    "mustard_bottle": "006_mustard_bottle",
}


def list_bundled_objects() -> list[str]:
    """Names accepted by :func:`load_object` for the bundled YCB meshes, sorted."""
    return sorted(BUNDLED_OBJECTS)


def _data_file(name: str) -> Path:
    return Path(str(resources.files("contactkit.objects") / "data" / f"{name}.npz"))


def bundled_object_info(name: str) -> dict[str, str]:
    """Provenance strings stored with a bundled object (``ycb_id``, ``source``, ``license``)."""
    if name not in BUNDLED_OBJECTS:
        raise ContactkitError(
            f"unknown bundled object {name!r}; expected one of {', '.join(list_bundled_objects())}"
        )
    with np.load(_data_file(name), allow_pickle=False) as data:
        return {k: str(data[k]) for k in ("name", "ycb_id", "source", "license") if k in data.files}


@functools.cache
def load_bundled(name: str) -> ObjectMesh:
    """Load a bundled object (cached per process; objects are immutable so sharing is safe).

    The mug and the mustard bottle are not watertight (as in YCB): loading warns once and they are flagged
    ``is_watertight=False``; inside tests then use generalised winding numbers.
    """
    if name not in BUNDLED_OBJECTS:
        raise ContactkitError(
            f"unknown bundled object {name!r}; expected one of {', '.join(list_bundled_objects())}"
        )
    path = _data_file(name)
    if not path.is_file():
        raise MeshError(f"bundled object file {path} is missing; reinstall contactkit")
    with np.load(path, allow_pickle=False) as data:
        vertices, faces = np.array(data["vertices"]), np.array(data["faces"])
    return ObjectMesh.from_arrays(
        vertices,
        faces,
        name=name,
        units="m",
        source=f"bundled:{name} (YCB {BUNDLED_OBJECTS[name]}, CC BY 4.0)",
    )


def load_object(spec: str | os.PathLike[str] | ObjectMesh, *, units: Units = "auto") -> ObjectMesh:
    """Resolve an object spec (bundled name, primitive spec, or mesh path; see module docstring).

    Args:
        spec: the spec or an ``ObjectMesh``.
        units: unit of a mesh *file* (ignored for bundled objects and primitives, which are in metres).

    Raises:
        ContactkitError: unknown name (the message lists bundled names and primitive kinds).
        MeshError: the file cannot be read or is malformed.
    """
    if isinstance(spec, ObjectMesh):
        return spec
    if isinstance(spec, os.PathLike):
        return ObjectMesh.from_file(spec, units=units)
    if not isinstance(spec, str):
        raise ContactkitError(
            f"object spec must be a string, a path or an ObjectMesh, got {type(spec).__name__}"
        )
    text = spec.strip()
    if text in BUNDLED_OBJECTS:
        return load_bundled(text)
    head = text.partition(":")[0].strip().lower()
    if head in PRIMITIVE_KINDS and (":" in text or text.lower() == head):
        kind, params = parse_primitive_spec(text)
        return make_primitive(kind, **params)
    path = Path(text).expanduser()
    if path.suffix.lower() in SUPPORTED_SUFFIXES or path.exists() or os.sep in text:
        return ObjectMesh.from_file(path, units=units)
    raise ContactkitError(
        f"unknown object {spec!r}: not a bundled object ({', '.join(list_bundled_objects())}), "
        f"a primitive spec (kind:key=value,... with kind in {', '.join(PRIMITIVE_KINDS)}) or a mesh path"
    )
