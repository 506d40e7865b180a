"""contactkit's one restricted unpickler: the security boundary for every pickle it reads.

Two kinds of files arrive as pickles: the official MANO ``.pkl`` files (Python-2 pickles holding numpy arrays,
a ``scipy.sparse.csc_matrix`` and chumpy ``Ch`` objects) and some public datasets' annotations (HO-3D
``meta/*.pkl``, OakInk-Shape ``hand_param.pkl``, GRAB's object arrays in ``.npz``). Unpickling them with the
standard unpickler would import (and need) chumpy, and would run any global a tampered file names.
:class:`RestrictedUnpickler` resolves only a fixed allow-list of globals, the union of what the two need:

- chumpy classes (``chumpy.ch.Ch``, ``chumpy.reordering.*``, ``chumpy.ch_ops.*``, ``chumpy.utils.*``,
  ``chumpy.linalg.*``, ``chumpy.logic.*``) map to :class:`ChumpyStub`, which only stores its state; the
  array is its ``'x'`` entry;
- ``scipy.sparse`` CSC/CSR matrices map to :class:`SparseStub` (state only), rebuilt from
  ``data/indices/indptr/shape`` by :func:`to_array`;
- numpy's ``_reconstruct``, ``ndarray``, ``dtype``, ``scalar`` and ``_frombuffer`` (protocol-5 arrays) map to
  small safe re-implementations that refuse object dtypes and array subclasses;
- ``copy_reg._reconstructor`` maps to a version that only instantiates the stand-ins above, and
  ``_codecs.encode`` (bytes in Python-3 protocol-2 pickles) to a plain ``str.encode``;
- plain containers: ``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``bytearray``, ``complex``,
  ``object`` (the base argument of ``copy_reg._reconstructor``) and ``collections.OrderedDict``.

Every other global raises the caller's error class (:class:`~contactkit.errors.HandModelError` for MANO files,
``DatasetFormatError`` for datasets), naming the refused global.
"""

from __future__ import annotations

import collections
import io
import pickle
from typing import Any

import numpy as np
import scipy.sparse

from contactkit.errors import ContactkitError, HandModelError

__all__ = ["ChumpyStub", "RestrictedUnpickler", "SparseStub", "restricted_load", "safe_load_pickle", "to_array"]


class ChumpyStub:
    """Stand-in for a chumpy object: keeps the pickled state; ``array`` is its ``'x'`` value."""

    chumpy_class = "chumpy.ch.Ch"
    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slotstate)
            merged: dict[str, Any] = {}
            for part in state:
                if isinstance(part, dict):
                    merged.update(part)
            state = merged
        if not isinstance(state, dict):
            raise HandModelError(f"unexpected state of a pickled {self.chumpy_class} object")
        self.state = {str(k): v for k, v in state.items()}

    @property
    def array(self) -> np.ndarray:
        """The object's value as a float64 array."""
        state = getattr(self, "state", {})
        if "x" not in state:
            raise HandModelError(
                f"pickled {self.chumpy_class} object has no stored value 'x' (keys: {sorted(state)})"
            )
        return to_array(state["x"])


class SparseStub:
    """Stand-in for a pickled ``scipy.sparse`` CSC/CSR matrix (state only)."""

    fmt = "csc"
    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise HandModelError("unexpected state of a pickled scipy.sparse matrix")
        self.state = {str(k): v for k, v in state.items()}

    def to_dense(self) -> np.ndarray:
        """Rebuild the matrix safely from its arrays; returns a dense float64 array."""
        s = getattr(self, "state", {})
        try:
            shape = tuple(int(x) for x in s.get("_shape", s.get("shape", ())))
            data = np.asarray(s["data"], dtype=np.float64)
            indices = np.asarray(s["indices"], dtype=np.int64)
            indptr = np.asarray(s["indptr"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise HandModelError(f"malformed pickled sparse matrix: {exc}") from None
        cls = scipy.sparse.csr_matrix if self.fmt == "csr" else scipy.sparse.csc_matrix
        try:
            return np.asarray(cls((data, indices, indptr), shape=shape).toarray(), dtype=np.float64)
        except ValueError as exc:
            raise HandModelError(f"malformed pickled sparse matrix: {exc}") from None


def _make_sparse_class(fmt: str) -> type:
    return type(f"SparseStub_{fmt}", (SparseStub,), {"fmt": fmt})


_CSC = _make_sparse_class("csc")
_CSR = _make_sparse_class("csr")


def _chumpy_class(qualname: str) -> type:
    return type("ChumpyStub_" + qualname.replace(".", "_"), (ChumpyStub,), {"chumpy_class": qualname})


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise HandModelError("refusing to reconstruct a numpy array subclass from a pickle")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise HandModelError("refusing to unpickle a numpy object scalar")
    if isinstance(data, str):
        data = data.encode("latin1")
    return np.frombuffer(bytes(data), dtype=dt, count=1)[0]


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise HandModelError("refusing to unpickle a numpy object array")
    return np.frombuffer(bytes(buf), dtype=dt).reshape(shape, order=order).copy(order="K")


def _safe_codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise HandModelError("refusing an unexpected _codecs.encode call in a pickle")
    return text.encode(encoding)


def _safe_copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, ChumpyStub | SparseStub)):
        raise HandModelError(f"refusing to reconstruct {cls!r} from a pickle")
    return cls.__new__(cls)


_CHUMPY_MODULES = (
    "chumpy",
    "chumpy.ch",
    "chumpy.reordering",
    "chumpy.ch_ops",
    "chumpy.utils",
    "chumpy.linalg",
    "chumpy.logic",
    "chumpy.optimization",
)
_SPARSE_MODULES = (
    "scipy.sparse",
    "scipy.sparse.csc",
    "scipy.sparse._csc",
    "scipy.sparse.csr",
    "scipy.sparse._csr",
    "scipy.sparse.compressed",
    "scipy.sparse._compressed",
)
_SAFE_BUILTINS: dict[str, type] = {
    "object": object, "set": set, "frozenset": frozenset, "list": list, "tuple": tuple, "dict": dict,
    "bytearray": bytearray, "complex": complex,
}  # fmt: skip
_NUMPY_MODULES = (
    "numpy",
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` resolving only the allow-listed globals of the module docstring.

    Args:
        file: binary file object holding the pickle.
        error: exception class raised for a refused global (a :class:`~contactkit.errors.ContactkitError`).
        what: description of the file used in the error message.
    """

    def __init__(
        self, file: Any, *, error: type[ContactkitError] = HandModelError, what: str = "pickle", **kwargs: Any
    ) -> None:
        super().__init__(file, **kwargs)
        self.error = error
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed(module, name)
        if found is None:
            raise self.error(
                f"{self.what}: refusing to load {module}.{name} (only numpy arrays, plain containers and the MANO "
                "files' chumpy / scipy.sparse values are allowed)"
            )
        return found

    @staticmethod
    def _allowed(module: str, name: str) -> Any:
        if module in _CHUMPY_MODULES:
            return _chumpy_class(f"{module}.{name}")
        if module in _SPARSE_MODULES:
            if name == "csc_matrix":
                return _CSC
            if name == "csr_matrix":
                return _CSR
        if module in _NUMPY_MODULES:
            if name == "_reconstruct":
                return _safe_reconstruct
            if name == "ndarray":
                return np.ndarray
            if name == "dtype":
                return np.dtype
            if name == "scalar":
                return _safe_scalar
            if name == "_frombuffer":
                return _safe_frombuffer
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_copyreg_reconstructor
        if module == "_codecs" and name == "encode":  # how Python 3 protocol-2 pickles store bytes
            return _safe_codecs_encode
        if module in ("__builtin__", "builtins") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        return None


def restricted_load(data: bytes, *, error: type[ContactkitError] = HandModelError, what: str = "pickle") -> Any:
    """Unpickle ``data`` (Python 2 or 3; ``encoding="latin1"``) with :class:`RestrictedUnpickler`.

    Raises:
        error: for a disallowed global or a corrupt or truncated pickle, naming ``what``.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), error=error, what=what, encoding="latin1").load()
    except ContactkitError as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{what}: {exc}") from None
    except Exception as exc:  # corrupt or truncated pickle
        raise error(f"{what}: could not read the pickle: {type(exc).__name__}: {exc}") from None


def safe_load_pickle(data: bytes) -> Any:
    """Unpickle MANO file bytes (:func:`restricted_load` raising :class:`~contactkit.errors.HandModelError`)."""
    return restricted_load(data, error=HandModelError, what="MANO pickle")


def to_array(obj: Any) -> np.ndarray:
    """Turn an unpickled MANO value (ndarray, chumpy stand-in, sparse stand-in, list) into a numpy array."""
    if isinstance(obj, ChumpyStub):
        return obj.array
    if isinstance(obj, SparseStub):
        return obj.to_dense()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise HandModelError("refusing a numpy object array in a MANO pickle")
        return obj
    try:
        arr = np.asarray(obj)
    except (TypeError, ValueError) as exc:
        raise HandModelError(f"cannot convert {type(obj).__name__} to an array: {exc}") from None
    if arr.dtype.hasobject:
        raise HandModelError(f"cannot convert {type(obj).__name__} to a numeric array")
    return arr
