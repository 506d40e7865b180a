"""Shared by the ``estimate`` and ``train`` CLI tests: an in-memory rendered dataset."""

from __future__ import annotations

import sys
import types
from pathlib import Path


def install_fake_dataset(monkeypatch, tmp_path: Path, samples: list[dict], grasps) -> Path:
    """Make ``contactkit.dataset.RenderedDataset`` serve ``samples`` (contract-A dicts) and ``grasps`` for every
    split, for the rest of the test; returns the (empty) dataset folder to pass on the command line."""

    class FakeRenderedDataset:  # the shape of contract A's RenderedDataset
        def __init__(self, root, split):
            self.grasps = grasps

        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return samples[i]

    monkeypatch.setitem(sys.modules, "contactkit.dataset", types.SimpleNamespace(RenderedDataset=FakeRenderedDataset))
    root = tmp_path / "ds"
    root.mkdir()
    return root
