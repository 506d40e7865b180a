"""Atomic file writes: a reader sees either the old file or the complete new one, never a partial write.

Every writer goes through the same steps: write to a temporary file in the destination's directory (same file
system, so the final rename is atomic), flush and ``fsync`` it, then ``os.replace`` it over the destination.
If anything fails before the rename, the temporary file is removed and the destination is left untouched.

The destination must be a regular file or absent: a directory, a device (``/dev/full``), a pipe or a symbolic
link raises :class:`~contactkit.errors.OutputError` (replacing it with a regular file would silently break what
it pointed to), as does an unwritable folder. Temporary files carry the writer's process id; one left behind by
a writer that was killed is removed by the next write to the same destination.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from contactkit.errors import ContactkitError, OutputError

__all__ = [
    "atomic_open",
    "atomic_savez",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_path",
    "json_number",
    "json_safe",
]


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~contactkit.errors.OutputError` unless ``path`` can be (re)written as a regular file.

    Refused: a symbolic link, an existing directory / device / pipe / socket, an existing file that is not
    writable, and a path whose nearest existing folder is not writable. A missing folder is fine here (the
    writers create it); the CLI additionally requires it to exist.
    """
    dest = Path(path)
    name = str(path)
    if dest.is_symlink():
        raise OutputError(f"output {name!r} is a symbolic link; refusing to replace it (give the real path)")
    try:
        mode = dest.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise OutputError(f"output {name!r} cannot be examined: {err.strerror or err}") from None
    if mode is not None:
        if not stat.S_ISREG(mode):
            raise OutputError(f"output {name!r} is {_kind(mode)}, not a regular file; refusing to write to it")
        if not os.access(dest, os.W_OK):
            raise OutputError(f"output {name!r} exists and is not writable")
    folder = dest.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"output {name!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output {name!r}: folder {str(folder)!r} is not writable")


def _remove_orphans(dest: Path) -> None:
    """Delete temporary files of ``dest`` left by writers that no longer run (killed mid-write)."""
    for tmp in dest.parent.glob(f".{glob_escape(dest.name)}.*.tmp"):
        parts = tmp.name[len(dest.name) + 2 :].split(".")
        if not parts or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                tmp.unlink()
        except OSError:
            pass


def glob_escape(name: str) -> str:
    """``name`` with the glob metacharacters ``*?[`` escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


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
        path: destination file (regular or absent; see :func:`check_output_path`). Its parent directory is
            created if missing.

    Yields:
        A writable binary file object. On an exception inside the block the temporary file is deleted and
        ``path`` keeps its previous content (or stays absent).
    """
    dest = Path(path)
    check_output_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(dest)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp", dir=dest.parent)
    except OSError as err:
        raise OutputError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, _default_mode(dest))
        with os.fdopen(fd, "wb") as fh:
            yield fh
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as err:
                raise OutputError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
        try:
            os.replace(tmp, dest)
        except OSError as err:
            raise OutputError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(dest.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see module docstring)."""
    with atomic_open(path) as fh:
        try:
            fh.write(data)
        except OSError as err:
            raise OutputError(f"cannot write {str(path)!r}: {err.strerror or err}") from None


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def json_number(x: float | None) -> float | None:
    """``x`` as a JSON number, or None (JSON ``null``) when it is None, NaN or infinite: the one way contactkit
    writes "not computed" into strict JSON (``allow_nan=False``)."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def json_safe(obj: Any) -> Any:
    """``obj`` with every float made a :func:`json_number` (NaN and inf become ``None``), numpy integers made
    ``int`` and dict keys made ``str``, recursively through dicts, lists and tuples (tuples become lists)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return json_number(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


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
            raise ContactkitError(f"atomic_savez: array {key!r} has dtype object; project files never use pickle")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
