"""Checkpoint round trip and refusal of anything that is not a contactkit state dict."""

from __future__ import annotations

import pickle

import pytest
import torch

from contactkit.learn.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from contactkit.learn.estimators import build_network, inputs_for, load_estimator, network_config

from .conftest import posed_scene


class _Payload:
    def __init__(self) -> None:
        self.value = 3


@pytest.mark.parametrize("kind", ["deepcontact", "picr"])
def test_round_trip_gives_identical_outputs(tmp_path, hand, kind):
    torch.manual_seed(1)
    config = network_config(kind, small=True)
    net = build_network(kind, config).eval()
    path = tmp_path / "net.pt"
    save_checkpoint(path, Checkpoint(kind=kind, config=config, state_dict=net.state_dict(),
                                     training={"hand_model": "openhand", "epoch": 3}))
    ckpt = load_checkpoint(path, expected_kind=kind)
    assert ckpt.training == {"hand_model": "openhand", "epoch": 3} and ckpt.config == config
    loaded = build_network(kind, ckpt.config)
    loaded.load_state_dict(ckpt.state_dict)
    loaded.eval()
    verts, pts, nrm = posed_scene(hand, 2, seed=2)
    inputs = inputs_for(hand, verts, pts, nrm)
    with torch.no_grad():
        a, b = net(inputs.xyz, inputs.features), loaded(inputs.xyz, inputs.features)
    if kind == "picr":
        a, b = torch.cat([a.vc, a.ae]), torch.cat([b.vc, b.ae])
    assert torch.equal(a, b)
    est = load_estimator(kind, hand, path)
    assert est.checkpoint.training["epoch"] == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_refuses_files_that_are_not_state_dicts(tmp_path):
    cases = {
        "missing.pt": None,
        "random.pt": bytes(range(256)) * 4,
        "pickle.pt": pickle.dumps(_Payload()),
    }
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not a readable contactkit state dict"):
        load_checkpoint(tmp_path / "random.pt")
    with pytest.raises(CheckpointError, match="not a readable contactkit state dict"):
        load_checkpoint(tmp_path / "pickle.pt")
    # An arbitrary object saved by torch (pickled class) is refused by weights_only loading.
    torch.save({"format": "contactkit.checkpoint", "obj": _Payload()}, tmp_path / "object.pt")
    with pytest.raises(CheckpointError, match="not a readable contactkit state dict"):
        load_checkpoint(tmp_path / "object.pt")
    # A plain state dict without the header.
    torch.save({"weight": torch.zeros(3)}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="no 'contactkit.checkpoint' header"):
        load_checkpoint(tmp_path / "bare.pt")
    torch.save({"format": "contactkit.checkpoint", "version": 99}, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "v99.pt")
    torch.save({"format": "contactkit.checkpoint", "version": 1, "kind": "picr", "config": "{}",
                "state_dict": {"w": "not a tensor"}}, tmp_path / "bad_sd.pt")
    with pytest.raises(CheckpointError, match="no valid state_dict"):
        load_checkpoint(tmp_path / "bad_sd.pt")
    with pytest.raises(CheckpointError, match="holds a picr network, expected deepcontact"):
        torch.save({"format": "contactkit.checkpoint", "version": 1, "kind": "picr", "config": "{}",
                    "state_dict": {}}, tmp_path / "picr.pt")
        load_checkpoint(tmp_path / "picr.pt", expected_kind="deepcontact")


@pytest.mark.parametrize("kind", ["deepcontact", "picr"])
def test_shipped_weights_load_and_predict(hand, kind):
    from contactkit.learn.estimators import shipped_weights_path

    try:
        path = shipped_weights_path(kind, "openhand")
    except Exception:
        pytest.skip(f"no shipped {kind} weights in this checkout")
    ckpt = load_checkpoint(path, expected_kind=kind)
    assert ckpt.training["hand_model"] == "openhand" and ckpt.optimizer is None
    est = load_estimator(kind, hand)
    verts, pts, nrm = posed_scene(hand, 1, seed=9)
    targets = est.predict(verts, pts, nrm)
    assert targets.object_contact is not None and targets.object_contact.shape == (1, 256)
    assert torch.isfinite(targets.object_contact).all()
