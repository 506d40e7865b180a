"""Training: the loss decreases, checkpoints are written every epoch, and a killed run resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch

from contactkit.learn.checkpoint import load_checkpoint
from contactkit.learn.estimators import build_network, network_config
from contactkit.learn.losses import (
    binary_focal_loss,
    bins_to_contact,
    contact_to_bins,
    inverse_frequency_weights,
    masked_bce,
    multiclass_focal_loss,
)
from contactkit.learn.train import TrainConfig, f1_score, train, training_loss

from .conftest import toy_tensors


@pytest.fixture(scope="module")
def toy(hand):
    return toy_tensors(hand, 4, seed=11, n_points=96)


@pytest.mark.parametrize("kind", ["deepcontact", "picr"])
def test_a_few_steps_decrease_the_loss(toy, kind):
    torch.manual_seed(0)
    net = build_network(kind, network_config(kind, small=True))
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    batch = toy.batch(range(4), "cpu")
    weights = inverse_frequency_weights(contact_to_bins(toy.contact, 10), 10) if kind == "deepcontact" else None
    losses = []
    for _ in range(8):
        loss = training_loss(kind, net, batch, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.9 * losses[0], losses
    assert losses[-1] < min(losses[:3]), losses


def test_training_loss_checks_network_kind(toy):
    net = build_network("picr", network_config("picr", small=True))
    with pytest.raises(TypeError, match="expected a DeepContactNet"):
        training_loss("deepcontact", net, toy.batch(range(2), "cpu"))


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, toy):
    config = TrainConfig(epochs=2, batch_size=2, seed=5, small=True)
    train_data, val_data = toy, toy

    def kill(epoch: int) -> None:
        if epoch == 0:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        train("deepcontact", train_data, val_data, tmp_path / "a", config, progress=False, on_epoch_end=kill)
    assert load_checkpoint(tmp_path / "a" / "last.pt").training["epoch"] == 0
    records = []
    train("deepcontact", train_data, val_data, tmp_path / "a", config, progress=False,
          metadata={"hand_model": "openhand"}, on_record=records.append)
    assert [r["epoch"] for r in records] == [1]
    train("deepcontact", train_data, val_data, tmp_path / "b", config, progress=False)
    resumed = load_checkpoint(tmp_path / "a" / "last.pt")
    straight = load_checkpoint(tmp_path / "b" / "last.pt")
    assert resumed.training["epoch"] == straight.training["epoch"] == 1
    assert resumed.training["hand_model"] == "openhand"
    for name, value in straight.state_dict.items():
        assert torch.equal(value, resumed.state_dict[name]), name
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1]
    assert (tmp_path / "a" / "best.pt").is_file()
    # A finished run reruns as a no-op returning its last record; other settings are refused.
    assert train("deepcontact", train_data, val_data, tmp_path / "a", config, progress=False)["epoch"] == 1
    with pytest.raises(ValueError, match="different settings"):
        train("deepcontact", train_data, val_data, tmp_path / "a", TrainConfig(epochs=3, batch_size=2, seed=5,
                                                                                small=True), progress=False)


def test_bins_round_trip_and_weights():
    contact = torch.tensor([0.0, 0.05, 0.15, 0.999, 1.0])
    assert contact_to_bins(contact, 10).tolist() == [0, 0, 1, 9, 9]
    logits = torch.full((1, 10), -1e4)
    logits[0, 3] = 0.0
    torch.testing.assert_close(bins_to_contact(logits), torch.tensor([0.35]))
    w = inverse_frequency_weights(torch.tensor([0, 0, 0, 1]), 3, power=1.0)
    assert w[1] / w[0] == pytest.approx(3.0)
    w = inverse_frequency_weights(torch.tensor([0] * 9 + [1]), 3)
    assert w[1] / w[0] == pytest.approx(3.0)
    assert float(w[:2].mean()) == pytest.approx(1.0)


def test_picr_losses_analytic():
    logits = torch.tensor([[0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0]])
    # p = 0.5 everywhere, alpha = 1 for balanced classes: loss = 0.25 * log 2.
    assert float(binary_focal_loss(logits, target)) == pytest.approx(0.25 * float(torch.log(torch.tensor(2.0))))
    cr = torch.zeros(1, 2, 4)
    mask = torch.tensor([[True, False]])
    assert float(multiclass_focal_loss(cr, torch.tensor([[1, 0]]), mask)) == pytest.approx(
        0.75**2 * float(torch.log(torch.tensor(4.0))))
    none = torch.zeros(1, 2, dtype=torch.bool)
    assert float(multiclass_focal_loss(cr, torch.tensor([[1, 0]]), none)) == 0.0
    assert float(masked_bce(torch.zeros(1, 2), torch.tensor([[0.5, 0.2]]), mask)) == pytest.approx(
        float(torch.log(torch.tensor(2.0))))


def test_f1_score():
    pred = torch.tensor([True, True, False, False])
    target = torch.tensor([True, False, True, False])
    assert f1_score(pred, target) == pytest.approx(50.0)
    assert f1_score(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)) == 100.0


def test_best_threshold_and_validation_keys(toy):
    from contactkit.learn.train import best_threshold_f1, evaluate_contact_f1

    score = torch.tensor([0.1, 0.3, 0.35, 0.9])
    target = torch.tensor([False, True, True, True])
    threshold, f1 = best_threshold_f1(score, target)
    assert threshold == pytest.approx(0.1) and f1 == pytest.approx(100.0)
    net = build_network("deepcontact", network_config("deepcontact"))
    val = evaluate_contact_f1("deepcontact", net, toy, 2)
    assert set(val) == {f"{s}_{k}" for s in ("hand", "object") for k in ("f1_pct", "f1_best_pct", "threshold")}
    assert val["hand_f1_best_pct"] >= val["hand_f1_pct"]


def test_bins_probability_above():
    from contactkit.learn.losses import bins_probability_above

    logits = torch.log(torch.tensor([[0.5, 0, 0, 0, 0, 0.2, 0, 0, 0, 0.3]]) + 1e-12)
    assert float(bins_probability_above(logits)) == pytest.approx(0.5, abs=1e-6)
    assert float(bins_probability_above(logits, 0.0)) == pytest.approx(1.0, abs=1e-6)
