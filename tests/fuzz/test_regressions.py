"""Regression tests of issue 13's silent wrong results in training (each named after the bug)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from contactkit.errors import ContactkitError
from contactkit.hands import load_hand
from contactkit.io.grasps import GraspSet, save_grasps
from contactkit.objects import make_primitive


@pytest.fixture(scope="module")
def hand():
    return load_hand("openhand")


def _noisy_file(folder, name, offset, hand):
    from contactkit.synth.perturb import perturb

    gt = GraspSet.from_arrays(
        hand_model="openhand",
        side="right",
        global_orient=np.zeros((2, 3)),
        hand_pose=np.zeros((2, 45)),
        objects=make_primitive("sphere", radius=0.03 + offset, subdivisions=2),
        object_translation=np.tile([0.0, 0.0, -0.06], (2, 1)),
        num_betas=hand.num_betas,
    )
    save_grasps(folder / f"gt_{name}.npz", gt)
    noisy = perturb(gt, "contactopt", seed=0, hand=hand, reference=folder / f"gt_{name}.npz")
    save_grasps(folder / f"{name}.npz", noisy)
    return folder / f"{name}.npz"


def test_changed_training_file_under_the_same_run_folder(tmp_path, hand):
    # regression: another --data file of the same size under the same --out trained on the previous file's
    # cached tensors while the checkpoint recorded the new file's name
    from contactkit.learn.data import cached_contact_tensors

    first = _noisy_file(tmp_path, "first", 0.0, hand)
    second = _noisy_file(tmp_path, "second", 0.01, hand)
    cache = tmp_path / "run" / "train_tensors.npz"
    a = cached_contact_tensors(first, hand, cache, num_points=64)
    again = cached_contact_tensors(first, hand, cache, num_points=64)
    torch.testing.assert_close(again.xyz, a.xyz)  # the same file reuses its cache
    b = cached_contact_tensors(second, hand, cache, num_points=64)
    fresh = cached_contact_tensors(second, hand, tmp_path / "fresh.npz", num_points=64)
    assert len(b) == len(a)
    assert not torch.equal(b.xyz, a.xyz)
    torch.testing.assert_close(b.xyz, fresh.xyz)


def test_half_written_last_log_line_does_not_crash_resume(tmp_path):
    # regression: a run killed while appending to log.jsonl left half a line, and resuming crashed on it
    from contactkit.io.runlog import truncate_log

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"epoch": 0, "loss": 1.0}) + "\n" + json.dumps({"epoch": 1, "loss": 0.5}) + "\n"
                   + '{"epoch": 2, "lo')
    truncate_log(log, "epoch", 2)
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [0, 1]


def test_unsafe_checkpoint_refusal_gives_no_unsafe_advice(tmp_path):
    # regression: refusing a checkpoint that holds pickled code repeated PyTorch's advice to retry with
    # weights_only=False, which is wrong advice for an untrusted file
    from contactkit.learn.checkpoint import load_checkpoint

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "state_dict": Payload()}, path)
    with pytest.raises(ContactkitError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "not just tensors" in message or "pickled objects" in message
    assert "do not load this file with weights_only=False" in message
    assert "you have two options" not in message and "set `weights_only`" not in message


def test_partial_synthesis_says_exactly_what_it_wrote(tmp_path, capsys, monkeypatch):
    # regression: `synth --max-batches 1` that stopped short printed "wrote 2 grasps to partial.npz", exited 1 and
    # wrote no file (the library keeps finished batches in OUT.parts/ and writes OUT only when n are accepted)
    from types import SimpleNamespace

    import contactkit.synth.synthesis as synthesis
    from contactkit.cli.main import main

    monkeypatch.setattr(synthesis, "synthesize", lambda *a, **k: SimpleNamespace(grasps=[0, 1], stats={"batches": 1}))
    out = tmp_path / "partial.npz"
    code = main(["synth", "--object", "box", "--n", "50", "--out", str(out), "--max-batches", "1"])
    captured = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert not any(line.startswith("wrote") for line in captured.out.splitlines())
    assert f"only 2 of 50 grasps were accepted; nothing was written to {out}" in captured.err
