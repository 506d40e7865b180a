"""contactkit's one restricted unpickler: the union of what MANO files and dataset annotations need, no more.

(Object arrays of plain containers stay allowed: GRAB stores its parameter dicts that way, and only allow-listed
globals can appear inside them.)
"""

from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest

from contactkit.errors import HandModelError
from contactkit.hands import unpickle
from contactkit.io import datasets
from contactkit.io.datasets._common import DatasetFormatError, load_restricted_pickle


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_one_unpickler_serves_mano_and_datasets():
    assert datasets.RestrictedUnpickler is unpickle.RestrictedUnpickler
    assert not hasattr(datasets._common, "_ALLOWED_GLOBALS")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_and_plain_containers_round_trip(protocol):
    data = collections.OrderedDict(
        a=np.arange(6.0).reshape(2, 3), b=np.eye(2, dtype=np.float32).T, c=[np.int64(3), (1, 2)], d={"x": {1, 2}}
    )
    for load in (unpickle.safe_load_pickle, load_restricted_pickle):
        out = load(pickle.dumps(data, protocol=protocol))
        np.testing.assert_array_equal(out["a"], data["a"])
        np.testing.assert_array_equal(out["b"], data["b"])
        assert out["b"].dtype == np.float32 and out["c"][0] == 3 and out["c"][1] == (1, 2) and out["d"]["x"] == {1, 2}


@pytest.mark.parametrize(("load", "error"), [(unpickle.safe_load_pickle, HandModelError),
                                             (load_restricted_pickle, DatasetFormatError)])
def test_code_and_object_arrays_are_refused_with_the_callers_error(load, error):
    with pytest.raises(error, match=r"refusing to load (posix|os|nt)\.system"):
        load(pickle.dumps({"x": _System()}, protocol=2))
    with pytest.raises(error, match=r"refusing to load (__builtin__|builtins)\.eval"):
        load(pickle.dumps([eval], protocol=2))
    with pytest.raises(error, match="could not read"):
        load(b"not a pickle")
