"""Content-keyed caches for derived object data (surface samples, normals, signed distance grids).

Keys start with the mesh's content hash (sha256 of its vertex and face bytes), so two objects with the same
geometry share entries whatever their names, and any change to a vertex gives a new key.

* In memory: a bounded LRU shared by the process (:data:`MEMORY_CACHE`, a :class:`contactkit.cache.LRUCache`;
  :func:`contactkit.cache.clear_caches` empties it).
* On disk: ``<root>/objects/<hash>/<name>.npz`` where ``<root>`` is ``$CONTACTKIT_CACHE`` if set, else
  ``~/.cache/contactkit``. Writes are atomic; an unreadable or stale file is rebuilt with a warning; an
  unwritable cache directory only costs a warning.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from contactkit.cache import LRUCache

__all__ = [
    "CACHE_FORMAT_VERSION",
    "MEMORY_CACHE",
    "warn_external",
    "cache_root",
    "content_hash",
    "load_npz_cache",
    "object_cache_dir",
    "save_npz_cache",
]

#: Bumped when the layout of cached files changes; files with another version are rebuilt.
CACHE_FORMAT_VERSION = 1


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLI_DIR = os.path.join(_PACKAGE_DIR, "cli")


def warn_external(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside contactkit (the user sees their own line).

    Run from the command line (the call passes through :mod:`contactkit.cli`) there is no user line: the
    warning is then attributed to the file its message starts with (``"<path>: ..."``, e.g. a mesh file) when
    that file exists, instead of the ``contactkit`` script.
    """
    frame = sys._getframe(1)
    level = 2  # stacklevel 1 is this function, 2 its caller
    via_cli = False
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        via_cli = via_cli or frame.f_code.co_filename.startswith(_CLI_DIR)
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    if via_cli:
        path = message.split(": ", 1)[0]
        if path != message and os.path.isfile(path):
            warnings.warn_explicit(message, category, filename=path, lineno=1, module="contactkit")
            return
    warnings.warn(message, category, stacklevel=level)


def content_hash(vertices: np.ndarray, faces: np.ndarray) -> str:
    """Hex sha256 of ``vertices`` (float64, C order) and ``faces`` (int64, C order) bytes, first 16 chars."""
    h = hashlib.sha256()
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    h.update(np.asarray(v.shape, dtype=np.int64).tobytes())
    h.update(v.tobytes())
    h.update(np.asarray(f.shape, dtype=np.int64).tobytes())
    h.update(f.tobytes())
    return h.hexdigest()[:16]


#: The process-wide LRU of derived object data (samples, normals, SDF grids, convex pieces), by content.
MEMORY_CACHE: LRUCache[Any] = LRUCache(size=256)


def cache_root() -> Path:
    """``$CONTACTKIT_CACHE`` if set (and non-empty), else ``~/.cache/contactkit``."""
    env = os.environ.get("CONTACTKIT_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "contactkit"


def object_cache_dir(obj_hash: str) -> Path:
    """Directory holding the on-disk cache files of the object with content hash ``obj_hash``."""
    return cache_root() / "objects" / obj_hash


def load_npz_cache(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """Read a cache file written by :func:`save_npz_cache`; ``None`` if absent, stale or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warn_external(f"ignoring unreadable cache file {path} ({exc}); rebuilding it")
        return None
    version = out.get("cache_format_version")
    if version is None or int(version) != CACHE_FORMAT_VERSION or any(k not in out for k in required):
        warn_external(f"ignoring stale cache file {path}; rebuilding it")
        return None
    return out


def save_npz_cache(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Atomically write ``arrays`` (plus the cache format version) to ``path``; False (warned) on error."""
    from contactkit.io.atomic import atomic_savez  # local import: io imports objects lazily, keep it acyclic

    try:
        atomic_savez(path, cache_format_version=np.int64(CACHE_FORMAT_VERSION), **arrays)
    except OSError as exc:
        warn_external(f"could not write cache file {path} ({exc}); continuing without disk cache")
        return False
    return True
