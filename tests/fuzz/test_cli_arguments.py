"""Bad command-line arguments fail at parse time with one line naming the argument, before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from contactkit.cli.main import main


def _refused(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-size", "0", "argument --batch-size: expected an integer in [1, 2147483647], got 0"),
        ("--batch-size", "-3", "argument --batch-size: expected an integer in [1, 2147483647], got -3"),
        ("--iterations", "0", "argument --iterations: expected an integer in [1, 2147483647]"),
        ("--seed", "-1", "argument --seed: expected an integer in [0, 4294967295], got -1"),
        ("--n", "1e20", "argument --n: expected an integer in [1, 100000], got 1e20"),
        ("--n", "2.5", "argument --n: expected an integer, got '2.5'"),
        ("--n", "nan", "argument --n: expected an integer, got 'nan'"),
    ],
)
def test_synth_counts_and_seeds_are_checked(tmp_path, capsys, flag, value, message):
    argv = ["synth", "--object", "box", "--n", "2", "--out", str(tmp_path / "s.npz")]
    argv = [a for a in argv] + [flag, value]
    _refused(capsys, argv, message)


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    target = tmp_path / "real.npz"
    target.write_bytes(b"keep")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    cases = [
        (str(tmp_path), "is a directory"),
        (str(tmp_path / "missing" / "s.npz"), "does not exist"),
        (str(link), "is a symbolic link"),
        ("", "expected a file path"),
    ]
    if os.path.exists("/dev/full"):
        cases.append(("/dev/full", "is a character device"))
    for out, message in cases:
        _refused(capsys, ["synth", "--object", "box", "--n", "2", "--out", out], message)
        _refused(capsys, ["evaluate", str(target), "--json", out], message)
    assert link.is_symlink() and target.read_bytes() == b"keep"
    # an output directory that is a file
    _refused(capsys, ["benchmark-set", "--out", str(target)], "exists and is not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        _refused(capsys, ["synth", "--object", "box", "--n", "2", "--out", str(folder / "s.npz")], "not writable")
    finally:
        folder.chmod(0o700)


def test_devices_that_do_not_exist_are_named(tmp_path, capsys):
    argv = ["refine", str(tmp_path / "g.npz"), "--out", str(tmp_path / "r.npz"), "--device"]
    _refused(capsys, [*argv, "nonsense"], "argument --device: unknown device 'nonsense'")
    if not torch.cuda.is_available():
        expected = "is CPU-only; use --device cpu" if torch.version.cuda is None else "no CUDA device is visible"
        _refused(capsys, [*argv, "cuda"], expected)
        _refused(capsys, [*argv, "cuda:3"], expected)


def test_special_files_and_symlinks_as_outputs(tmp_path, capsys):
    # regression (silent wrong result): an --out / --json / --snapshot that was a device or a symlink was
    # replaced by a regular file, or (/dev/full) the command exited 0 without writing anything
    grasps = tmp_path / "g.npz"
    grasps.write_bytes(b"x")
    real = tmp_path / "real.png"
    real.write_bytes(b"png")
    link = tmp_path / "snap.png"
    link.symlink_to(real)
    _refused(capsys, ["view", str(grasps), "--out", str(tmp_path / "v.html"), "--snapshot", str(link)],
             "argument --snapshot: ")
    if os.path.exists("/dev/full"):
        _refused(capsys, ["evaluate", str(grasps), "--json", "/dev/full"], "argument --json: ")
        _refused(capsys, ["refine", str(grasps), "--out", "/dev/full"], "argument --out: ")
    assert link.is_symlink() and real.read_bytes() == b"png"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["g.npz", "real.png", "snap.png"]


def test_mesh_warnings_from_the_command_line_point_at_the_mesh_file(tmp_path, capsys):
    # regression: mesh warnings were attributed to the `contactkit` script; from the CLI they name the file
    import warnings

    mesh = tmp_path / "tiny.obj"
    mesh.write_text("v 0 0 0\nv 1e-6 0 0\nv 0 1e-6 0\nv 0 0 1e-6\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["synth", "--object", str(mesh), "--n", "1", "--out", str(tmp_path / "s.npz"), "--max-batches",
                     "1", "--batch-size", "2", "--iterations", "2", "--no-progress"])
    assert code != 0 and "Traceback" not in capsys.readouterr().err
    small = [w for w in caught if "implausibly small" in str(w.message)]
    assert small and small[0].filename == str(mesh)
