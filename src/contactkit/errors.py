"""Exceptions raised at contactkit's public boundary.

Every user-facing error is a subclass of :class:`ContactkitError` (itself a ``ValueError``) so callers can catch
one type, and the CLI can print a one-line message instead of a traceback.
"""


class ContactkitError(ValueError):
    """Base class of every error contactkit raises for bad input."""


class MeshError(ContactkitError):
    """A mesh is empty, non-finite, degenerate or otherwise unusable."""


class UnitsError(ContactkitError):
    """A quantity is in the wrong unit (e.g. millimetres where metres are expected)."""


class GraspFileError(ContactkitError):
    """A grasp file is missing, truncated, of an unknown version, or has a malformed record."""


class HandModelError(ContactkitError):
    """A hand model file is missing, unsafe to load, or has unexpected contents."""


class ShapeError(ContactkitError):
    """A tensor or array argument has the wrong shape or dtype."""


class OutputError(ContactkitError):
    """An output path cannot be written: a directory, a device or other special file, a symbolic link, or an
    unwritable or missing folder."""
