"""Atomic file writes: a reader sees either the old file or the complete new one, never a partial write.

Every writer goes through the same steps: write to a temporary file in the destination's directory (same file
system, so the final rename is atomic), flush and ``fsync`` it, then ``os.replace`` it over the destination.
If anything fails before the rename, the temporary file is removed and the destination is left untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_open", "atomic_savez", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


def _default_mode(dest: Path) -> int:
    """Permissions for the new file: the destination's if it exists, else 0o666 minus the umask."""
    try:
        return dest.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    """The process umask, read from /proc where possible (``os.umask`` briefly changes it for all threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_dir(directory: Path) -> None:
    """Best-effort fsync of a directory so the rename itself is durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a binary temporary file that atomically replaces ``path`` when the ``with`` block succeeds.

    Args:
        path: destination file. Its parent directory is created if missing.

    Yields:
        A writable binary file object. On an exception inside the block the temporary file is deleted and
        ``path`` keeps its previous content (or stays absent).
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _default_mode(dest))
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(dest.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see module docstring)."""
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Serialise ``obj`` as JSON (strict: NaN/inf rejected) and write it atomically."""
    text = json.dumps(obj, indent=indent, allow_nan=False, sort_keys=False)
    atomic_write_text(path, text + "\n")


def atomic_savez(path: str | os.PathLike[str], **arrays: Any) -> None:
    """Save arrays as a compressed ``.npz`` archive (``np.savez_compressed``) atomically.

    Object arrays are refused (they would need pickle to read back). The archive is built in memory first,
    so a failure while serialising leaves nothing on disk.

    Args:
        path: destination; written exactly as given (no ``.npz`` suffix is appended).
        **arrays: name -> array-like.
    """
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"atomic_savez: array {key!r} has dtype object; project files never use pickle")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
