"""JointDiffusion training: resume reproduces an uninterrupted run; DDP on 2 CPU processes (gloo) gives the
single-process gradient of the whole batch; the CLI trains and writes its run folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from contactkit.diffusion.model import JointDiffusion, JointDiffusionConfig
from contactkit.diffusion.representation import ChoirExamples, ChoirScaler
from contactkit.diffusion.train import DiffusionTrainConfig, normalise, step_loss, train_jointdiffusion
from contactkit.errors import ContactkitError

TINY = dict(context_channels=2, base_channels=8, channel_mult=(1, 2, 4), attn_resolutions=(4,), num_heads=2,
            context_tokens=4, contact_hidden=64, contact_blocks=2, bottleneck_channels=4)


def random_examples(n: int, seed: int) -> ChoirExamples:
    g = torch.Generator().manual_seed(seed)
    return ChoirExamples(torch.rand(n, 1, 16, 16, 16, generator=g), 0.1 * torch.randn(n, 32, 9, generator=g),
                         torch.rand(n, 2, 16, 16, 16, generator=g), [f"obj{i % 3}" for i in range(n)])


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    tr, va = random_examples(12, 0), random_examples(4, 1)
    cfg = DiffusionTrainConfig(steps=4, batch_size=4, val_every=2, seed=3)
    model = JointDiffusionConfig(**TINY)
    full = train_jointdiffusion(tr, va, "noisy", tmp_path / "full", cfg, model=model)
    train_jointdiffusion(tr, va, "noisy", tmp_path / "cut", cfg, model=model, stop_after=2)
    assert len((tmp_path / "cut" / "log.jsonl").read_text().splitlines()) == 1
    resumed = train_jointdiffusion(tr, va, "noisy", tmp_path / "cut", cfg, model=model)
    assert resumed["val_loss"] == pytest.approx(full["val_loss"], rel=1e-6)
    from contactkit.diffusion.checkpoint import load_diffusion

    a, b = load_diffusion(tmp_path / "full" / "last.pt"), load_diffusion(tmp_path / "cut" / "last.pt")
    assert a.extra is not None and b.extra is not None
    for k, v in a.extra["raw"].items():
        assert torch.allclose(v, b.extra["raw"][k], atol=1e-6), k
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    # EMA weights (what best.pt and sampling use) differ from the raw weights after training
    assert any(not torch.equal(v, a.state_dict[k]) for k, v in a.extra["raw"].items())
    with pytest.raises(ValueError, match="other settings"):
        train_jointdiffusion(tr, va, "noisy", tmp_path / "cut", DiffusionTrainConfig(steps=5, batch_size=4),
                             model=model)


def test_init_fine_tunes_from_given_weights(tmp_path):
    """--init: the run starts from the given weights and keeps their network config and standardisation (not
    refitted to the new data); a checkpoint of another context is refused."""
    from contactkit.diffusion.checkpoint import load_diffusion

    model = JointDiffusionConfig(**TINY)
    cfg = DiffusionTrainConfig(steps=2, batch_size=4, val_every=2, seed=3)
    train_jointdiffusion(random_examples(8, 0), random_examples(4, 1), "noisy", tmp_path / "a", cfg, model=model)
    base = load_diffusion(tmp_path / "a" / "best.pt")
    new_data = random_examples(8, 5)
    new_data.volume.mul_(3.0)  # other statistics than the first run's data
    frozen = DiffusionTrainConfig(steps=1, batch_size=4, val_every=1, seed=4, lr=0.0)
    train_jointdiffusion(new_data, random_examples(4, 1), "noisy", tmp_path / "b", frozen, init=base)
    tuned = load_diffusion(tmp_path / "b" / "last.pt")
    assert tuned.spec.to_dict() == base.spec.to_dict()
    for k, v in base.state_dict.items():  # lr 0: the weights are the init's
        assert torch.allclose(v, tuned.state_dict[k], atol=1e-6), k
    objects = ChoirExamples(new_data.volume, new_data.contact, new_data.context[:, :1], new_data.object_ids)
    with pytest.raises(ValueError, match="context"):
        train_jointdiffusion(objects, objects, "object", tmp_path / "c", frozen, init=base)


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    from contactkit.diffusion.schedule import training_scheduler

    data, cfg, net = _setup()
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    loss = step_loss(ddp, training_scheduler(), data, 5, cfg, rank, world)
    loss.backward()
    if rank == 0:
        torch.save({k: p.grad for k, p in net.named_parameters()}, os.path.join(out_dir, "ddp_grads.pt"))
    torch.distributed.destroy_process_group()


def _setup():
    ex = random_examples(8, 0)
    data = normalise(ex, ChoirScaler.fit(ex.volume, ex.context, ex.contact))
    torch.manual_seed(0)
    return data, DiffusionTrainConfig(batch_size=4, seed=1), JointDiffusion(JointDiffusionConfig(**TINY))


def test_ddp_two_cpu_processes_match_one_process_on_the_whole_batch(tmp_path):
    from contactkit.diffusion.schedule import training_scheduler

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ddp_grads = torch.load(tmp_path / "ddp_grads.pt", weights_only=True)
    data, cfg, net = _setup()
    step_loss(net, training_scheduler(), data, 5, cfg).backward()
    for k, p in net.named_parameters():
        assert p.grad is not None and ddp_grads[k] is not None, k
        assert torch.allclose(ddp_grads[k], p.grad, rtol=1e-4, atol=1e-6), k
    # and one rank's own gradient is not the whole batch's (the test can fail)
    net.zero_grad()
    step_loss(net, training_scheduler(), data, 5, cfg, rank=0, world=2).backward()
    assert any(not torch.allclose(ddp_grads[k], p.grad, rtol=1e-4, atol=1e-6) for k, p in net.named_parameters())


def test_examples_assignment_is_recorded_in_the_spec_and_must_agree(tmp_path):
    """The examples' anchor assignment becomes the checkpoint's; validation examples of another scheme and --init
    weights of another scheme are refused (before any training)."""
    from contactkit.diffusion.checkpoint import load_diffusion

    cfg = DiffusionTrainConfig(steps=1, batch_size=4, val_every=1, seed=3)
    shuffled = [ChoirExamples(e.volume, e.contact, e.context, e.object_ids, "shuffled")
                for e in (random_examples(8, 0), random_examples(4, 1))]
    train_jointdiffusion(*shuffled, "noisy", tmp_path / "a", cfg, model=JointDiffusionConfig(**TINY))
    base = load_diffusion(tmp_path / "a" / "best.pt")
    assert base.spec.assignment == "shuffled"
    with pytest.raises(ContactkitError, match="validation examples 'ordered'"):
        train_jointdiffusion(shuffled[0], random_examples(4, 1), "noisy", tmp_path / "b", cfg)
    with pytest.raises(ContactkitError, match="trained with the 'shuffled' anchor assignment, not 'ordered'"):
        train_jointdiffusion(random_examples(8, 0), random_examples(4, 1), "noisy", tmp_path / "c", cfg, init=base)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
    # examples cached before the scheme was recorded read as "ordered"; saved ones keep theirs
    shuffled[1].save(tmp_path / "s.npz")
    assert ChoirExamples.load(tmp_path / "s.npz").assignment == "shuffled"
    e = random_examples(2, 0)
    np.savez(tmp_path / "old.npz", volume=e.volume.numpy(), contact=e.contact.numpy(), context=e.context.numpy(),
             object_ids=np.array(e.object_ids))
    assert ChoirExamples.load(tmp_path / "old.npz").assignment == "ordered"


def test_cli_trains_with_an_object_split(tmp_path, gt_grasps, capsys):
    from contactkit.cli.main import main
    from contactkit.io.grasps import save_grasps

    save_grasps(tmp_path / "gt.npz", gt_grasps)
    code = main(["train", "jointdiffusion", "--data", str(tmp_path / "gt.npz"), "--context", "object",
                 "--out", str(tmp_path / "run"), "--steps", "2", "--val-every", "1", "--batch-size", "2",
                 "--num-points", "256", "--quiet"])
    assert code == 0
    assert (tmp_path / "run" / "train_object.npz").is_file()  # examples cached by default
    assert main(["train", "jointdiffusion", "--data", str(tmp_path / "gt.npz"), "--context", "object",
                 "--out", str(tmp_path / "nc"), "--steps", "1", "--val-every", "1", "--batch-size", "2",
                 "--num-points", "256", "--quiet", "--no-cache"]) == 0
    assert (tmp_path / "nc" / "best.pt").is_file() and not list((tmp_path / "nc").glob("*_object.npz"))
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["spec"]["context"] == "object" and cfg["spec"]["model"]["context_channels"] == 1
    from contactkit.diffusion.checkpoint import load_diffusion

    ck = load_diffusion(tmp_path / "run" / "best.pt")
    split = ck.training["split"]
    assert len(split["val"]) == 1 and not set(split["val"]) & set(split["train"])
    assert main(["train", "jointdiffusion", "--data", str(tmp_path / "gt.npz"), "--out", str(tmp_path / "r2")]) == 2
    assert "--context" in capsys.readouterr().err


def test_cli_assignment_is_used_for_the_examples_recorded_and_kept_by_init(tmp_path, gt_grasps, capsys):
    """--assignment shuffled: the cached examples are the shuffled encoding of the training split (equal to
    build_examples'), the weights record it, --init without --assignment keeps it and --init with another is refused
    with a clear error."""
    from contactkit.cli._jointdiffusion import _split_objects
    from contactkit.cli.main import main
    from contactkit.diffusion.checkpoint import load_diffusion
    from contactkit.diffusion.representation import build_examples
    from contactkit.hands import load_hand
    from contactkit.io.grasps import save_grasps

    save_grasps(tmp_path / "gt.npz", gt_grasps)
    common = ["train", "jointdiffusion", "--data", str(tmp_path / "gt.npz"), "--context", "object", "--steps", "1",
              "--val-every", "1", "--batch-size", "2", "--num-points", "256", "--base-channels", "8",
              "--attn-resolutions", "4", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "s"), "--assignment", "shuffled"]) == 0
    ck = load_diffusion(tmp_path / "s" / "best.pt")
    assert ck.spec.assignment == "shuffled"
    cached = ChoirExamples.load(tmp_path / "s" / "train_object.npz")
    train_set = _split_objects(gt_grasps, 0)[0]
    hand = load_hand("openhand")
    expect = {a: build_examples(train_set, hand, "object", num_points=256, assignment=a)
              for a in ("ordered", "shuffled")}
    assert cached.assignment == "shuffled" and torch.equal(cached.volume, expect["shuffled"].volume)
    assert not torch.allclose(cached.volume, expect["ordered"].volume)
    init = ["--init", str(tmp_path / "s" / "best.pt")]
    assert main([*common, "--out", str(tmp_path / "t"), *init]) == 0
    assert load_diffusion(tmp_path / "t" / "best.pt").spec.assignment == "shuffled"
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "u"), *init, "--assignment", "ordered"]) == 2
    assert "trained with the 'shuffled' anchor assignment, not 'ordered'" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()
    # the same run folder with the other scheme: the cache is rebuilt, then resuming the run is refused
    assert main([*common, "--out", str(tmp_path / "s")]) == 2
    assert "other settings" in capsys.readouterr().err
    assert ChoirExamples.load(tmp_path / "s" / "train_object.npz").assignment == "ordered"
