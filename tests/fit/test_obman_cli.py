"""``contactkit train obman-net|honet`` and ``contactkit estimate --model obman-net|miho`` on an in-memory dataset."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from tests.fit.fake_dataset import install_fake_dataset
from tests.vision.test_obman_net import grasp_samples

from contactkit.cli.main import main
from contactkit.hands import load_hand
from contactkit.io.grasps import load_grasps
from contactkit.metrics import evaluate

TINY_ARGS = ["--width", "8", "--blocks", "1,1", "--image-size", "32", "--batch-size", "3", "--quiet"]


@pytest.fixture()
def dataset(tmp_path, monkeypatch):
    hand = load_hand("openhand")
    samples, grasps = grasp_samples(hand, 3)

    return install_fake_dataset(monkeypatch, tmp_path, samples, grasps), grasps


def test_train_and_estimate_obman_net(tmp_path, dataset):
    root, grasps = dataset
    run = tmp_path / "run"
    assert main(["train", "obman-net", "--data", str(root), "--out", str(run), "--epochs", "1",
                 "--finetune-epochs", "1", *TINY_ARGS]) == 0
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["base", "contact"]
    # fine-tuning a trained network: --init, only the fine-tuning epochs run
    assert main(["train", "obman-net", "--data", str(root), "--out", str(tmp_path / "ft"), "--init",
                 str(run / "last.pt"), "--finetune-epochs", "1", "--contact-weight", "0", *TINY_ARGS]) == 0
    out = tmp_path / "est.npz"
    assert main(["estimate", str(root), "--model", "obman-net", "--object", "box", "--out", str(out)]) == 2
    assert main(["estimate", str(root), "--model", "obman-net", "--weights", str(run / "last.pt"),
                 "--out", str(out)]) == 0
    est = load_grasps(out)
    assert len(est) == 3 and est.reference_index.tolist() == [0, 1, 2] and est.attrs["objects"] == "reconstructed"
    assert len(est.objects) == 3 and all(m.vertices.shape == (642, 3) for m in est.objects.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = evaluate(est, reference=est.attrs["reference"], metrics=["mpjpe_mm", "chamfer_mm"])
    assert np.isfinite(ev["mpjpe_mm"].mean) and np.isfinite(ev["chamfer_mm"].mean)


def test_train_refuses_malformed_blocks_before_reading_data(tmp_path, capsys):
    for blocks in ("2,x", "2,0", ""):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "obman-net", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run"),
                  "--blocks", blocks])
        assert exit_info.value.code == 2 and "comma-separated positive integers" in capsys.readouterr().err


def test_train_honet_and_estimate_miho(tmp_path, dataset):
    root, grasps = dataset
    run = tmp_path / "honet"
    assert main(["train", "honet", "--data", str(root), "--out", str(run), "--epochs", "1", *TINY_ARGS]) == 0
    assert main(["train", "honet", "--data", str(root), "--out", str(tmp_path / "x"), "--epochs", "1",
                 "--finetune-epochs", "1", *TINY_ARGS]) == 2
    out = tmp_path / "miho.npz"
    assert main(["estimate", str(root), "--model", "miho", "--weights", str(run / "last.pt"), "--contact", "none",
                 "--out", str(out)]) == 0
    est = load_grasps(out)
    assert len(est) == 3 and est.object_ids == grasps.object_ids and est.attrs["miho_contact"] == "none"
    # only the image PiCR takes --picr-weights
    assert main(["estimate", str(root), "--model", "miho", "--weights", str(run / "last.pt"), "--contact", "none",
                 "--picr-weights", str(run / "last.pt"), "--out", str(out)]) == 2
    # train an image PiCR (noisy ground-truth hands) and run HoNet -> image PiCR -> GeO
    picr_run = tmp_path / "picr"
    assert main(["train", "picr-image", "--data", str(root), "--out", str(picr_run), "--epochs", "2",
                 "--num-points", "64", *TINY_ARGS]) == 0
    log = [json.loads(x) for x in (picr_run / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and 0.0 <= log[-1]["val"]["vc_f1_pct"] <= 100.0
    # the checkpoint records the validation-tuned t_vc, which the loaded network uses for MIHO's springs
    from contactkit.vision.train_picr_image import VC_THRESHOLDS, image_picr_from_checkpoint

    loaded, training = image_picr_from_checkpoint(picr_run / "last.pt")
    assert training["vc_threshold"] in VC_THRESHOLDS and loaded.vc_threshold == training["vc_threshold"]
    picr_path = picr_run / "last.pt"
    assert main(["estimate", str(root), "--model", "miho", "--weights", str(run / "last.pt"), "--picr-weights",
                 str(picr_path), "--geo-iterations", "2", "--out", str(out)]) == 0
    est = load_grasps(out)
    assert est.attrs["miho_contact"] == "image" and est.attrs["targets"].startswith("given")


def test_shipped_honet_and_image_picr_are_the_miho_defaults_and_load_safely(tmp_path, dataset):
    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.weights import default_honet_path, default_picr_image_path

    for path, kind in ((default_honet_path(), "honet"), (default_picr_image_path(), "picr-image")):
        ckpt = load_checkpoint(path, expected_kind=kind)  # weights_only=True inside
        assert ckpt.optimizer is None and ckpt.config["hand"] == "openhand" and path.stat().st_size < 4_000_000
        assert ckpt.training["dataset"]  # trained on a rendered dataset's train split (model card)
    assert load_checkpoint(default_picr_image_path()).training["vc_threshold"] == 0.5  # tuned on v3's val split
    root, grasps = dataset
    out = tmp_path / "miho.npz"
    assert main(["estimate", str(root), "--model", "miho", "--geo-iterations", "2", "--out", str(out)]) == 0
    est = load_grasps(out)
    assert len(est) == len(grasps) and est.attrs["weights"] == str(default_honet_path())
    assert est.attrs["miho_contact"] == "image" and est.attrs["targets"].startswith("given")


def test_shipped_obman_net_is_the_default_and_loads_safely(tmp_path):
    from PIL import Image

    from contactkit.learn.checkpoint import load_checkpoint
    from contactkit.vision.weights import default_obman_net_path

    ckpt = load_checkpoint(default_obman_net_path(), expected_kind="obman-net")
    assert ckpt.optimizer is None and ckpt.config["hand"] == "openhand"
    assert default_obman_net_path().stat().st_size < 4_000_000
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(img)
    out = tmp_path / "est.npz"
    assert main(["estimate", str(img), "--model", "obman-net", "--out", str(out)]) == 0
    est = load_grasps(out)
    assert len(est) == 1 and est.attrs["frame"] == "camera" and est.attrs["objects"] == "reconstructed"
