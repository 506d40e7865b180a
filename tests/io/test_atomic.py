"""Atomic writes: complete new file or untouched old one, never a partial file or a stray temp file."""

import json
import os
import stat

import numpy as np
import pytest

from contactkit.errors import ContactkitError, OutputError
from contactkit.io import atomic
from contactkit.io.atomic import atomic_savez, atomic_write_bytes, atomic_write_json


def _listing(directory):
    return sorted(p.name for p in directory.iterdir())


def test_write_and_overwrite(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(p, b"first")
    assert p.read_bytes() == b"first"
    atomic_write_bytes(p, b"second")
    assert p.read_bytes() == b"second"
    assert _listing(p.parent) == ["f.bin"]
    mode = stat.S_IMODE(p.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's private 0o600


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch, failing):
    p = tmp_path / "data.npz"
    atomic_savez(p, x=np.arange(3))
    before = p.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(atomic.os, failing, boom)
    with pytest.raises(OutputError, match="simulated"):
        atomic_savez(p, x=np.arange(1000))
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert _listing(tmp_path) == ["data.npz"]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    p = tmp_path / "new.json"

    def boom(*args, **kwargs):
        raise OSError("simulated")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OutputError):
        atomic_write_json(p, {"a": 1})
    monkeypatch.undo()
    assert _listing(tmp_path) == []


def test_exception_inside_block_leaves_nothing(tmp_path):
    p = tmp_path / "f.txt"
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(p) as fh:
            fh.write(b"partial")
            raise RuntimeError("writer crashed")
    assert _listing(tmp_path) == []


def test_savez_roundtrip_and_refuses_object_arrays(tmp_path):
    p = tmp_path / "a.npz"
    atomic_savez(p, a=np.eye(3), b=np.arange(4, dtype=np.int64))
    with np.load(p, allow_pickle=False) as d:
        np.testing.assert_array_equal(d["a"], np.eye(3))
        assert d["b"].dtype == np.int64
    with pytest.raises(ContactkitError, match="dtype object"):
        atomic_savez(tmp_path / "o.npz", o=np.array([{"x": 1}], dtype=object))
    assert not (tmp_path / "o.npz").exists()


def test_json_is_strict(tmp_path):
    p = tmp_path / "h.json"
    atomic_write_json(p, {"x": [1, 2.5], "s": "é"})
    assert json.loads(p.read_text()) == {"x": [1, 2.5], "s": "é"}
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "nan.json", {"x": float("nan")})
    assert not (tmp_path / "nan.json").exists()


def test_special_files_and_symlinks_as_outputs_are_refused(tmp_path):
    # regression: an output that was a device or a symlink used to be replaced by a regular file
    target = tmp_path / "real.bin"
    target.write_bytes(b"keep")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"keep"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="named pipe"):
        atomic_write_bytes(fifo, b"x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    with pytest.raises(OutputError, match="directory"):
        atomic_write_bytes(tmp_path, b"x")
    if os.path.exists("/dev/full"):
        with pytest.raises(OutputError, match="character device"):
            atomic_write_json("/dev/full", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.bin", "pipe", "real.bin"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            atomic_write_bytes(folder / "x.bin", b"x")
    finally:
        folder.chmod(0o700)


def test_orphaned_temp_files_of_dead_writers_are_removed(tmp_path):
    # a temp file from a killed writer (a pid that is not running) is cleaned by the next write; one of a live
    # process (this one's parent) is left alone
    dest = tmp_path / "f.npz"
    dead = tmp_path / f".f.npz.{2**22 + 12345}.abc.tmp"
    alive = tmp_path / f".f.npz.{os.getppid()}.def.tmp"
    dead.write_bytes(b"x" * 100)
    alive.write_bytes(b"y")
    atomic_write_bytes(dest, b"data")
    assert _listing(tmp_path) == [alive.name, "f.npz"]


def test_json_safe_makes_strict_json_of_numpy_and_non_finite_values():
    from contactkit.io.atomic import json_safe

    obj = {1: (np.float32(0.5), np.int64(3)), "x": [float("nan"), np.float64("inf"), {"y": np.nan}], "z": "s"}
    safe = json_safe(obj)
    assert safe == {"1": [0.5, 3], "x": [None, None, {"y": None}], "z": "s"}
    assert type(safe["1"][1]) is int and type(safe["1"][0]) is float
    json.dumps(safe, allow_nan=False)  # strict JSON accepts it
