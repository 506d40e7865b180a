"""Seeded malformed inputs for contactkit's public API and CLI, and the rule that classifies each outcome.

Every case is invalid or implausible input (the classes of issue 13's fuzz run): mesh files, grasp files, and
command lines. A case passes when contactkit answers with one of its own errors
(:class:`contactkit.errors.ContactkitError`; for the CLI a non-zero exit with a message and no traceback), or,
for inputs that are implausible rather than invalid (``expect="warn"``), with a warning. Anything else is
counted: a *traceback* (another exception escaped), a *silent acceptance* (no error and no warning), or a
*hang* (the case ran past its time limit).

Used by ``tests/fuzz/test_fuzz.py`` (a few hundred cases) and ``scripts/fuzz_boundaries.py`` (thousands).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OUTCOMES = ("error", "warning", "traceback", "silent", "hang")


@dataclass
class Case:
    """One malformed input: ``run()`` exercises the API or CLI; ``expect`` is ``"error"`` or ``"warn"``."""

    kind: str
    label: str
    run: Callable[[], Any]
    expect: str = "error"


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def classify(case: Case, timeout_s: float = 20.0) -> tuple[str, str]:
    """Run one case; return ``(outcome, detail)`` with outcome in :data:`OUTCOMES`."""
    from contactkit.errors import ContactkitError

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    err = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                result = case.run()
            except SystemExit as stop:  # argparse refused an argument
                code = stop.code if isinstance(stop.code, int) else 1
                if code != 0 and "error:" in err.getvalue() and "Traceback" not in err.getvalue():
                    return "error", err.getvalue().strip().splitlines()[-1]
                return "traceback", f"SystemExit({stop.code!r}) {err.getvalue()[-300:]}"
        if isinstance(result, int) and result != 0:  # the CLI returned an exit code
            text = err.getvalue().strip()
            if text and "Traceback" not in text:
                return "error", text.splitlines()[-1]
            return "traceback", f"exit {result} without a clear message: {text[-300:]}"
        relevant = [w for w in caught if not issubclass(w.category, DeprecationWarning)]
        if relevant:
            return ("warning" if case.expect == "warn" else "silent"), str(relevant[0].message)[:200]
        return "silent", f"returned {type(result).__name__} (exit code {result!r})" if isinstance(
            result, int
        ) else f"returned {type(result).__name__}"
    except _Timeout:
        return "hang", f"ran past {timeout_s:g} s"
    except ContactkitError as exc:
        return "error", f"{type(exc).__name__}: {exc}"[:300]
    except Exception as exc:  # noqa: BLE001 - any other exception escaping is what the fuzz run counts
        tb = traceback.format_exc(limit=-3)
        return "traceback", f"{type(exc).__name__}: {exc} | {tb[-400:]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------------------------------------ mesh files


def _tetra(scale: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64) * scale
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
    return v, f


def _spoil(rng: np.random.Generator, v: np.ndarray, value: float) -> np.ndarray:
    """``v`` with one to three entries set to ``value``."""
    out = v.copy()
    out.flat[rng.choice(out.size, size=int(rng.integers(1, 4)), replace=False)] = value
    return out


def _obj_text(v: np.ndarray, f: np.ndarray) -> str:
    lines = [f"v {a!r} {b!r} {c!r}" for a, b, c in v.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f.tolist()]
    return "\n".join(lines) + "\n"


def _ply_text(v: np.ndarray, f: np.ndarray, n_v: int | None = None, n_f: int | None = None) -> str:
    head = [
        "ply",
        "format ascii 1.0",
        f"element vertex {len(v) if n_v is None else n_v}",
        "property float x",
        "property float y",
        "property float z",
        f"element face {len(f) if n_f is None else n_f}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    body = [" ".join(repr(x) for x in row) for row in v.tolist()] + [f"3 {a} {b} {c}" for a, b, c in f.tolist()]
    return "\n".join(head + body) + "\n"


def _stl_binary(v: np.ndarray, f: np.ndarray, count: int | None = None) -> bytes:
    out = bytearray(b"\0" * 80)
    out += struct.pack("<I", len(f) if count is None else count)
    for tri in f:
        out += struct.pack("<3f", 0, 0, 0)
        for i in tri:
            out += struct.pack("<3f", *v[i])
        out += b"\0\0"
    return bytes(out)


def mesh_cases(rng: np.random.Generator, folder: Path, count: int) -> Iterator[Case]:
    """Malformed or implausible mesh files, loaded through :func:`contactkit.objects.load_object`."""
    from contactkit.objects import load_object

    def loader(path: Path) -> Callable[[], Any]:
        return lambda: load_object(path)

    v0, f0 = _tetra()
    makers: list[tuple[str, str, Callable[[], tuple[str, bytes | str]]]] = [
        ("empty", "error", lambda: (".obj", b"")),
        ("garbage", "error", lambda: (str(rng.choice([".obj", ".ply", ".stl", ".off"])), rng.bytes(400))),
        ("nan vertex", "error", lambda: (".obj", _obj_text(_spoil(rng, v0, np.nan), f0))),
        ("inf vertex", "error", lambda: (".obj", _obj_text(_spoil(rng, v0, np.inf), f0))),
        ("face out of range", "error", lambda: (".obj", _obj_text(v0, f0 + int(rng.integers(4, 100))))),
        ("no faces", "error", lambda: (".obj", _obj_text(v0, f0[:0]))),
        ("flat plane", "error_or_warn", lambda: (".obj", _obj_text(v0 * [1, 1, 0], f0))),
        ("single triangle", "error_or_warn", lambda: (".obj", _obj_text(v0[:3], f0[:1]))),
        ("tiny scale", "warn", lambda: (".obj", _obj_text(v0 * 10.0 ** -int(rng.integers(5, 9)), f0))),
        ("huge scale", "warn", lambda: (".obj", _obj_text(v0 * 10.0 ** int(rng.integers(3, 7)), f0))),
        ("ply more vertices than held", "error", lambda: (".ply", _ply_text(v0, f0, n_v=4 + int(rng.integers(1, 50))))),
        ("ply more faces than held", "error", lambda: (".ply", _ply_text(v0, f0, n_f=4 + int(rng.integers(1, 50))))),
        ("truncated ply", "error", lambda: (".ply", _ply_text(v0, f0)[: int(rng.integers(10, 150))])),
        ("stl count too large", "error", lambda: (".stl", _stl_binary(v0, f0, count=4 + int(rng.integers(1, 1000))))),
        ("truncated stl", "error", lambda: (".stl", _stl_binary(v0, f0)[: int(rng.integers(84, 200))])),
        ("unknown extension", "error", lambda: (rng.choice([".xyz", ".txt", ""]), _obj_text(v0, f0))),
        ("degenerate faces only", "error", lambda: (".obj", _obj_text(v0, np.array([[0, 0, 1], [1, 1, 2]])))),
    ]
    for i in range(count):
        name, expect, make = makers[i % len(makers)]
        suffix, data = make()
        path = folder / f"mesh_{i}{suffix}"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        yield Case("mesh", name, loader(path), expect="warn" if expect != "error" else "error")


# ------------------------------------------------------------------------------------------------ grasp files


def _valid_grasps(n: int = 2) -> Any:
    from contactkit.io.grasps import GraspSet
    from contactkit.objects import make_primitive

    obj = make_primitive("sphere", radius=0.03, subdivisions=2)
    return GraspSet.from_arrays(
        hand_model="openhand",
        side="right",
        global_orient=np.zeros((n, 3)),
        hand_pose=np.zeros((n, 45)),
        objects=obj,
        object_translation=np.tile([0.0, 0.0, -0.06], (n, 1)),
        num_betas=0,
    )


def _rewrite(src: Path, dst: Path, mutate: Callable[[dict[str, Any], dict[str, np.ndarray]], None]) -> Path:
    with np.load(src, allow_pickle=False) as d:
        raw = {k: np.array(d[k]) for k in d.files}
    header = json.loads(str(raw.pop("header")))
    mutate(header, raw)
    with open(dst, "wb") as fh:
        np.savez(fh, header=np.str_(json.dumps(header)), **raw)
    return dst


def grasp_cases(rng: np.random.Generator, folder: Path, count: int, hand: Any) -> Iterator[Case]:
    """Malformed grasp files, read with ``load_grasps`` and scored with a cheap ``evaluate``."""
    from contactkit.io.grasps import load_grasps, save_grasps
    from contactkit.metrics import evaluate

    good = folder / "good.npz"
    save_grasps(good, _valid_grasps())
    key = _valid_grasps().object_ids[0]

    def use(path: Path) -> Callable[[], Any]:
        def run() -> Any:
            g = load_grasps(path)
            return evaluate(g, None, ["penetration_depth_mm", "disjointedness_mm"], hand=hand)

        return run

    def odd_value() -> Any:
        return rng.choice(np.array(["abc", "", None, 3, -1, 1.5, True, [1], {"a": 1}], dtype=object))

    invalid_header_fields: dict[str, list[Any]] = {
        "hand_model": [3, None, "", [1], "nonsense"],
        "side": ["abc", 3, None, ""],
        "num_grasps": ["abc", -1, 1.5, True, None, 3],
        "object_ids": ["abc", 3, None, {"a": 1}, [1, 2]],
        "objects": [[1], "abc", None, 3],
        "metadata": [{"a": 1}, "abc", 3, [1, 2]],
        "attrs": [[1], "abc", 3, None],
        "optional": ["abc", 3, {"a": 1}, ["nonsense"]],
        "units": ["mm", 3, None],
        "version": [True, "1", 2, None, 1.0],
        "format": ["abc", None, 3],
    }

    def header_field(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        field = str(rng.choice(sorted(invalid_header_fields)))
        values = invalid_header_fields[field]
        h[field] = values[int(rng.integers(len(values)))]

    invalid_object_fields: dict[str, list[Any]] = {
        "name": [3, None, [1], {"a": 1}, True],
        "is_watertight": ["yes", 1, None, [True]],
        "analytic_volume_m3": ["abc", "not a number", -1.0, 0, [1.0], True],
        "source": [3, [1], {"a": 1}],
        "primitive": ["sphere", 3, [1]],
    }

    def object_field(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        field = str(rng.choice(sorted(invalid_object_fields)))
        values = invalid_object_fields[field]
        h["objects"][key][field] = values[int(rng.integers(len(values)))]

    def array_shape(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        name = str(rng.choice(["global_orient", "hand_pose", "betas", "transl", "object_rotation",
                               "object_translation"]))
        shape = r[name].shape
        # a shape that differs from the valid one (for betas, whose width is free, in the grasp count or rank)
        while shape == r[name].shape or (name == "betas" and len(shape) == 2 and shape[0] == 2):
            shape = tuple(int(x) for x in rng.integers(0, 5, size=int(rng.integers(0, 4))))
        r[name] = rng.normal(size=shape)

    def array_dtype(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        name = str(rng.choice(["global_orient", "hand_pose", "transl"]))
        r[name] = r[name].astype(str(rng.choice(["U3", "bool", "complex128", "S2"])))

    def nan_value(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        name = str(rng.choice(["global_orient", "hand_pose", "transl", "object_translation"]))
        a = r[name].copy()
        a.flat[int(rng.integers(0, a.size))] = rng.choice([np.nan, np.inf, -np.inf])
        r[name] = a

    def zero_grasps(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        for name in ("global_orient", "hand_pose", "betas", "transl", "object_rotation", "object_translation"):
            r[name] = r[name][:0]
        h["num_grasps"], h["object_ids"], h["metadata"] = 0, [], []

    def wrong_vertex_count(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        r["hand_vertices"] = rng.normal(size=(2, int(rng.integers(1, 2000)), 3)) * 0.05
        h["optional"] = ["hand_vertices"]

    def bad_reference(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        choice = int(rng.integers(0, 4))
        if choice == 0:
            h["attrs"]["reference"] = odd_value()
        elif choice == 1:
            h["attrs"]["reference"] = str(folder / f"missing_{rng.integers(1e9)}.npz")
        elif choice == 2:
            h["attrs"]["reference"] = str(folder / "unrelated.npz")
        else:
            h["attrs"]["reference"] = str(folder)

    def bad_reference_index(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        h["attrs"]["reference"] = str(good)
        if rng.random() < 0.5:  # the wrong length
            r["reference_index"] = rng.integers(0, 2, size=int(rng.choice([0, 1, 3, 4])))
        else:  # the right length, an index outside the reference's two grasps
            r["reference_index"] = np.array([int(rng.integers(0, 2)), int(rng.choice([-3, -1, 2, 7]))])
        h["optional"] = ["reference_index"]

    def rotation(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        r["object_rotation"] = r["object_rotation"] * rng.choice([-1.0, 0.0, 2.0])

    def pickled(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        r["hand_pose"] = np.array([{"evil": 1}] * 2, dtype=object)

    def absurd(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        name = str(rng.choice(["hand_pose", "global_orient"]))
        r[name] = r[name] + 10.0 ** int(rng.integers(3, 10))

    def absurd_betas(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        r["betas"] = np.full((2, 10), 10.0 ** int(rng.integers(3, 7)))

    def millimetres(h: dict[str, Any], r: dict[str, np.ndarray]) -> None:
        r["transl"] = r["transl"] + 1000.0

    from contactkit.objects import make_primitive

    unrelated = _valid_grasps().replace(
        object_ids=[make_primitive("box", extents=[0.05, 0.05, 0.05]).content_hash] * 2,
        objects={(b := make_primitive("box", extents=[0.05, 0.05, 0.05])).content_hash: b},
    )
    save_grasps(folder / "unrelated.npz", unrelated)
    mutations: list[tuple[str, str, Callable[[dict[str, Any], dict[str, np.ndarray]], None]]] = [
        ("header field of the wrong type", "error", header_field),
        ("object header field of the wrong type", "error", object_field),
        ("array of the wrong shape", "error", array_shape),
        ("array of the wrong dtype", "error", array_dtype),
        ("NaN or inf value", "error", nan_value),
        ("zero grasps", "error", zero_grasps),
        ("stored vertices of another hand", "error", wrong_vertex_count),
        ("reference that does not resolve or match", "error", bad_reference),
        ("reference_index out of range", "error", bad_reference_index),
        ("object rotation not a rotation", "error", rotation),
        ("pickled object array", "error", pickled),
        ("absurd pose magnitude", "warn", absurd),
        ("absurd shape coefficients", "warn", absurd_betas),
        ("millimetre translation", "error", millimetres),
    ]
    for i in range(count):
        j = i % (len(mutations) + 2)
        path = folder / f"grasps_{i}.npz"
        if j == len(mutations):  # random bytes, or a valid file cut short
            data = good.read_bytes()
            path.write_bytes(data[: int(rng.integers(0, len(data) - 1))] if rng.random() < 0.5 else rng.bytes(300))
            yield Case("grasps", "truncated or garbage file", use(path))
            continue
        if j == len(mutations) + 1:
            yield Case("grasps", "missing path or a directory", use(folder if rng.random() < 0.5 else path))
            continue
        name, expect, mutate = mutations[j]
        _rewrite(good, path, mutate)
        yield Case("grasps", name, use(path), expect=expect)


# ------------------------------------------------------------------------------------------------ command lines


def cli_cases(rng: np.random.Generator, folder: Path, count: int) -> Iterator[Case]:
    """Command lines with one bad argument each, run in-process through ``contactkit.cli.main.main``."""
    from contactkit.cli.main import main
    from contactkit.io.grasps import save_grasps

    good = folder / "cli_good.npz"
    if not good.exists():
        save_grasps(good, _valid_grasps())
    real = folder / "cli_real.npz"
    real.write_bytes(b"keep")
    link = folder / "cli_link.npz"
    if not link.is_symlink():
        link.symlink_to(real)
    (folder / "cli_dir").mkdir(exist_ok=True)
    bad_counts = ["0", "-3", "1e20", "nan", "inf", "abc", "", "2.5", "-0.5", "99999999999999999999"]
    bad_seeds = ["-1", "4294967296", "1e40", "x", "0.5"]
    bad_outputs = [str(folder / "cli_dir"), str(folder / "missing" / "o.npz"), str(link), ""]
    if os.path.exists("/dev/full"):
        bad_outputs += ["/dev/full", "/dev/null"]
    bad_devices = ["nonsense", "cuda:99", "gpu", "cuda:-1", ""]
    try:
        import torch

        if not torch.cuda.is_available():
            bad_devices.append("cuda")
    except ImportError:  # pragma: no cover
        pass
    out = str(folder / "cli_out.npz")
    commands: list[tuple[list[str], list[tuple[str, list[str]]]]] = [
        (["synth", "--object", "box", "--n", "2", "--out", out],
         [("--batch-size", bad_counts), ("--iterations", bad_counts), ("--n", bad_counts), ("--seed", bad_seeds),
          ("--workers", bad_counts), ("--max-batches", bad_counts), ("--out", bad_outputs)]),
        (["refine", str(good), "--out", out, "--iterations", "1"],
         [("--device", bad_devices), ("--batch-size", bad_counts), ("--iterations", bad_counts),
          ("--restarts", bad_counts), ("--seed", bad_seeds), ("--out", bad_outputs)]),
        (["perturb", str(good), "--out", out],
         [("--copies", [*bad_counts, "10000", "100000"]), ("--seed", bad_seeds), ("--out", bad_outputs)]),
        (["evaluate", str(good), "--metrics", "penetration_depth_mm"],
         [("--json", bad_outputs), ("--workers", bad_counts), ("--metrics", ["nonsense", "simulation"])]),
        (["view", str(good), "--out", str(folder / "v.html"), "--no-metrics"],
         [("--out", bad_outputs), ("--snapshot", bad_outputs), ("--max-samples", [*bad_counts, "100001"])]),
        (["train", "deepcontact", "--data", str(good), "--val", str(good), "--out", str(folder / "run")],
         [("--epochs", bad_counts), ("--batch-size", bad_counts), ("--lr", ["0", "-1", "nan", "inf", "x"]),
          ("--seed", bad_seeds), ("--device", bad_devices), ("--num-points", bad_counts),
          ("--out", [str(real), str(link)])]),
        (["benchmark-set", "--out", str(folder / "bset")],
         [("--seed", bad_seeds), ("--workers", bad_counts), ("--grasps-per-object", bad_counts),
          ("--out", [str(real), str(link)])]),
        (["convert", "ho3d", str(folder), "--out", out],
         [("--stride", bad_counts), ("--out", bad_outputs)]),
    ]
    empty, foreign, flat = folder / "cli_empty.npz", folder / "cli_foreign.npz", folder / "cli_flat.obj"
    if not empty.exists():
        save_grasps(empty, _valid_grasps().subset([]))
        save_grasps(foreign, _valid_grasps().replace(hand_vertices=np.zeros((2, 778, 3))))
        v, f = _tetra()
        flat.write_text(_obj_text(v * [1.0, 1.0, 0.0], f))
    missing_inputs = [
        ["refine", str(empty), "--out", out],
        ["perturb", str(empty), "--out", out],
        ["view", str(empty), "--out", str(folder / "v.html")],
        ["evaluate", str(empty)],
        ["evaluate", str(foreign)],
        ["evaluate", str(good), "--reference", str(empty)],
        ["synth", "--object", str(flat), "--n", "1", "--out", str(folder / "flat.npz"), "--max-batches", "1",
         "--batch-size", "4", "--iterations", "5", "--no-progress"],
        ["evaluate", str(folder / "nope.npz")],
        ["refine", str(folder / "nope.npz"), "--out", out],
        ["perturb", str(folder / "cli_dir"), "--out", out],
        ["view", str(folder / "nope.npz"), "--out", str(folder / "v.html")],
        ["evaluate", str(good), "--reference", str(folder / "nope.npz")],
        ["synth", "--object", str(folder / "nope.obj"), "--n", "1", "--out", out],
    ]
    for i in range(count):
        if i % 10 == 9:
            argv = missing_inputs[int(rng.integers(len(missing_inputs)))]
            yield Case("cli", f"missing input: {argv[0]}", lambda argv=argv: main(argv))
            continue
        base, options = commands[int(rng.integers(len(commands)))]
        flag, values = options[int(rng.integers(len(options)))]
        value = values[int(rng.integers(len(values)))]
        argv = list(base)
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
        yield Case("cli", f"{base[0]} {flag} {value!r}", lambda argv=argv: main(argv))
