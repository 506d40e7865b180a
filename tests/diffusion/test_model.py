"""JointDiffusion network, schedules and checkpoints: shapes, config round trip, scheduler round trip, overfitting,
save/load."""

from __future__ import annotations

import pytest
import torch

from contactkit.diffusion.checkpoint import DiffusionCheckpoint, DiffusionSpec, load_diffusion, save_diffusion
from contactkit.diffusion.model import JointDiffusion, JointDiffusionConfig, timestep_embedding
from contactkit.diffusion.representation import ChoirScaler
from contactkit.diffusion.schedule import add_noise, sample, sampling_scheduler, training_scheduler
from contactkit.errors import ContactkitError, ShapeError


def _inputs(cfg: JointDiffusionConfig, b: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    r = cfg.resolution
    return (torch.randn(b, 1, r, r, r, generator=g), torch.randn(b, cfg.num_anchors, cfg.contact_dim, generator=g),
            torch.randint(0, 1000, (b,), generator=g), torch.randn(b, cfg.context_channels, r, r, r, generator=g))


def test_output_shapes_and_default_attention_levels(tiny_config):
    torch.manual_seed(0)
    net = JointDiffusion(tiny_config)
    out = net(*_inputs(tiny_config))
    assert out.eps_d.shape == (3, 1, 16, 16, 16)
    assert out.eps_c.shape == (3, 32, 9)
    assert torch.isfinite(out.eps_d).all() and torch.isfinite(out.eps_c).all()
    # the default model: self- and cross-attention at 8^3 and 4^3, none at 16^3
    default = JointDiffusion(JointDiffusionConfig())
    attn_res = sorted({m.self_attn.embed_dim for m in default.modules() if type(m).__name__ == "AttnBlock3d"})
    assert attn_res == [32, 64]  # channels of the 8^3 and 4^3 levels (base 16, mult 1, 2, 4)
    assert all(m.cross_attn is not None for m in default.encoder.modules() if type(m).__name__ == "AttnBlock3d")


def test_contact_branch_reads_the_bottleneck_and_z_t(tiny_config):
    torch.manual_seed(0)
    net = JointDiffusion(tiny_config).eval()
    x_d, x_c, t, ctx = _inputs(tiny_config, b=2)
    base = net(x_d, x_c, t, ctx)
    moved_z = net(x_d, x_c + 1.0, t, ctx)
    moved_vol = net(x_d + 1.0, x_c, t, ctx)
    assert not torch.allclose(base.eps_c, moved_z.eps_c)
    assert torch.equal(base.eps_d, moved_z.eps_d)  # z_t (contacts) does not feed the U-Net
    assert not torch.allclose(base.eps_c, moved_vol.eps_c)  # the bottleneck feeds the contact branch
    moved_ctx = net(x_d, x_c, t, ctx + 1.0)
    assert not torch.allclose(base.eps_d, moved_ctx.eps_d)  # cross-attention reads the context


def test_bad_shapes_and_config_raise(tiny_config):
    net = JointDiffusion(tiny_config)
    x_d, x_c, t, ctx = _inputs(tiny_config)
    with pytest.raises(ShapeError, match="x_c"):
        net(x_d, x_c[:, :31], t, ctx)
    with pytest.raises(ShapeError, match="context"):
        net(x_d, x_c, t, ctx[:, :1])
    with pytest.raises(ContactkitError, match="divisible"):
        JointDiffusionConfig(resolution=10)
    with pytest.raises(ContactkitError, match="unknown JointDiffusionConfig keys"):
        JointDiffusionConfig.from_dict({"resolution": 16, "depth": 3})


def test_config_round_trip(tiny_config):
    assert JointDiffusionConfig.from_dict(tiny_config.to_dict()) == tiny_config


def test_timestep_embedding_is_distinct_per_step():
    emb = timestep_embedding(torch.tensor([0, 1, 500, 999]), 16)
    assert emb.shape == (4, 16)
    assert torch.cdist(emb, emb).fill_diagonal_(1.0).min() > 1e-3


@pytest.mark.parametrize("kind", ["ddim", "dpm"])
def test_scheduler_round_trip_with_true_noise_recovers_x0(kind):
    """Noising x0 and then running the sampler whose noise prediction is the true noise gives back x0."""
    train = training_scheduler()
    abar = train.alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 37, generator=g, dtype=torch.float64)

    def true_eps(x_t, t):
        a = abar[t].to(x_t.dtype).view(-1, 1)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    out = sample(true_eps, (4, 37), sampling_scheduler(kind), 25, generator=g, dtype=torch.float64)
    assert torch.allclose(out, x0, atol=1e-5)
    # one step: x_t from add_noise, the scheduler's x0 estimate with the true noise is x0
    noise = torch.randn(4, 37, generator=g, dtype=torch.float64)
    t = torch.tensor([3, 250, 700, 990])
    x_t = add_noise(train, x0, noise, t)
    ddim = sampling_scheduler("ddim")
    ddim.set_timesteps(50)
    for i in range(4):
        est = ddim.step(noise[i:i + 1], int(t[i]), x_t[i:i + 1]).pred_original_sample
        assert torch.allclose(est, x0[i:i + 1], atol=1e-4)  # float32 alphas, divided by sqrt(abar) ~ 0.01


@pytest.mark.parametrize("kind", ["ddim", "dpm"])
def test_clipped_sampling_keeps_x0_within_bounds_and_leaves_exact_noise_unchanged(kind):
    """clip bounds the samples of a diverging denoiser and does not change an exact one whose x0 is in bounds."""
    abar = training_scheduler().alphas_cumprod
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 37, generator=g, dtype=torch.float64).clamp(-2.5, 2.5)

    def true_eps(x_t, t):
        a = abar[t].to(x_t.dtype).view(-1, 1)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    out = sample(true_eps, (4, 37), sampling_scheduler(kind), 25, generator=g, dtype=torch.float64, clip=3.0)
    assert torch.allclose(out, x0, atol=1e-5)

    def wild_eps(x_t, t):  # a denoiser whose implied x0 is ~ -40 / sqrt(abar): diverges without clipping
        return x_t + 40.0

    free = sample(wild_eps, (4, 37), sampling_scheduler(kind), 25, generator=g, dtype=torch.float64)
    clipped = sample(wild_eps, (4, 37), sampling_scheduler(kind), 25, generator=g, dtype=torch.float64, clip=3.0)
    assert free.abs().max() > 30.0
    assert clipped.abs().max() <= 3.0 + 1e-6
    with pytest.raises(ContactkitError):
        sample(true_eps, (4, 37), sampling_scheduler(kind), 5, clip=0.0)


def test_sampler_with_a_wrong_noise_prediction_does_not_recover_x0():
    x0 = torch.ones(2, 5)
    out = sample(lambda x, t: torch.zeros_like(x), (2, 5), sampling_scheduler("ddim"), 10,
                 generator=torch.Generator().manual_seed(0))
    assert (out - x0).abs().max() > 0.1


def test_tiny_model_overfits_a_handful_of_choirs(openhand, gt_grasps, tiny_config):
    """Fixed (x0, noise, t) for three CHOIRs: the loss must fall at least 10x."""
    from contactkit.diffusion.representation import build_examples
    from contactkit.diffusion.train import NormalisedBatch, diffusion_loss, normalise

    ex = build_examples(gt_grasps, openhand, "noisy", copies=1, num_points=512)
    scaler = ChoirScaler.fit(ex.volume, ex.context, ex.contact)
    batch: NormalisedBatch = normalise(ex, scaler)
    g = torch.Generator().manual_seed(0)
    nd, nc = torch.randn(batch.volume.shape, generator=g), torch.randn(batch.contact.shape, generator=g)
    t = torch.tensor([50, 300, 600])
    sched = training_scheduler()
    torch.manual_seed(0)
    net = JointDiffusion(tiny_config)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = last = None
    for _ in range(40):
        loss, _ = diffusion_loss(net, sched, batch, t, nd, nc)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
        last = float(loss.detach())
    assert first is not None and last is not None
    assert last < first / 10, (first, last)


def test_save_load_round_trip(tmp_path, tiny_config):
    torch.manual_seed(1)
    net = JointDiffusion(tiny_config).eval()
    scaler = ChoirScaler(1.0, 0.5, [0.5, 1.5], [0.2, 0.3], [[0.0] * 9] * 32, [[1.0] * 9] * 32)
    spec = DiffusionSpec(tiny_config, "noisy", scaler)
    assert DiffusionSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()
    save_diffusion(tmp_path / "m.pt", DiffusionCheckpoint(spec, net.state_dict(), {"step": 3}))
    ck = load_diffusion(tmp_path / "m.pt")
    assert ck.spec.model == tiny_config and ck.spec.context == "noisy" and ck.training == {"step": 3}
    x = _inputs(tiny_config, b=2, seed=5)
    with torch.no_grad():
        a, b = net(*x), ck.build()(*x)
    assert torch.equal(a.eps_d, b.eps_d) and torch.equal(a.eps_c, b.eps_c)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ContactkitError, match="not a JointDiffusion checkpoint"):
        load_diffusion(tmp_path / "other.pt")
    with pytest.raises(ContactkitError, match="context channels"):
        DiffusionSpec(tiny_config, "object", scaler)


def test_spec_records_the_anchor_assignment_and_older_specs_read_as_ordered(tmp_path, tiny_config):
    """The anchor-assignment scheme is part of the model's contract: saved and loaded with the weights; a spec
    written before the key existed (the shipped weights') reads as "ordered"; anything else is refused."""
    scaler = ChoirScaler(1.0, 0.5, [0.5, 1.5], [0.2, 0.3], [[0.0] * 9] * 32, [[1.0] * 9] * 32)
    spec = DiffusionSpec(tiny_config, "noisy", scaler, assignment="shuffled")
    assert spec.to_dict()["assignment"] == "shuffled"
    save_diffusion(tmp_path / "m.pt", DiffusionCheckpoint(spec, JointDiffusion(tiny_config).state_dict(), {}))
    assert load_diffusion(tmp_path / "m.pt").spec.assignment == "shuffled"
    old = spec.to_dict()
    del old["assignment"]
    assert DiffusionSpec.from_dict(old).assignment == "ordered"
    assert DiffusionSpec(tiny_config, "noisy", scaler).assignment == "ordered"
    with pytest.raises(ContactkitError, match="assignment must be one of"):
        DiffusionSpec.from_dict({**old, "assignment": "random"})
    with pytest.raises(ContactkitError, match="spec keys must be"):
        DiffusionSpec.from_dict({**old, "extra": 1})
