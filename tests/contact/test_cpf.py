"""CPF springs (paper 004)."""

import math

import pytest
import torch

from contactkit.contact.cpf import attractive_energy, oracle_springs, repulsive_energy, spring_elasticity
from contactkit.errors import ShapeError


def test_cosine_elasticity():
    d = torch.tensor([0.0, 0.005, 0.010, 0.0199, 0.020, 0.05], dtype=torch.float64)
    k = spring_elasticity(d)
    assert k[0].item() == pytest.approx(1.0)
    assert k[1].item() == pytest.approx(0.5 * math.cos(math.pi / 4) + 0.5)
    assert k[2].item() == pytest.approx(0.5)
    assert 0 < k[3].item() < 1e-3
    assert k[4].item() == 0.0 and k[5].item() == 0.0


def test_attractive_energy_matches_loop_in_mm():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 4, 3, generator=g, dtype=torch.float64) * 0.01
    p = torch.randn(2, 5, 3, generator=g, dtype=torch.float64) * 0.01
    k = torch.rand(2, 4, 5, generator=g, dtype=torch.float64)
    got = attractive_energy(a, p, k)
    naive = torch.zeros(2, dtype=torch.float64)
    for b in range(2):
        for i in range(4):
            for j in range(5):
                naive[b] += 0.5 * k[b, i, j] * (((a[b, i] - p[b, j]) * 1000) ** 2).sum()
    torch.testing.assert_close(got, naive)
    with pytest.raises(ShapeError, match=r"k_atr must have shape \(B, A, P\)"):
        attractive_energy(a, p, k[:, :, :2])


def test_repulsive_energy_values():
    sdf = torch.tensor([[0.001, -0.001, 0.025]], dtype=torch.float64)
    got = repulsive_energy(sdf)
    expected = 0.5e-3 * (math.exp(-2.0) + math.exp(2.0))  # the 25 mm vertex is out of range
    assert got.item() == pytest.approx(expected)


def test_gradcheck_springs():
    g = torch.Generator().manual_seed(1)
    a = (torch.randn(1, 3, 3, generator=g, dtype=torch.float64) * 0.01).requires_grad_(True)
    p = torch.randn(1, 4, 3, generator=g, dtype=torch.float64) * 0.01
    k = torch.rand(1, 3, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: attractive_energy(x, p, k), (a,), eps=1e-8, atol=1e-4)
    sdf = torch.tensor([[0.0011, -0.0007, 0.004]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(repulsive_energy, (sdf,), eps=1e-9, atol=1e-6)


def test_oracle_springs_pair_regions_and_invariance():
    # two anchors in regions 0 and 1; two hand vertices (regions 0, 1) touching two object points
    anchors = torch.tensor([[[0.0, 0.0, 0.002], [0.05, 0.0, 0.002]]], dtype=torch.float64)
    verts = torch.tensor([[[0.0, 0.0, 0.001], [0.05, 0.0, 0.001]]], dtype=torch.float64)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.3, 0.0]]], dtype=torch.float64)
    k = oracle_springs(anchors, verts, pts, torch.tensor([0, 1]), torch.tensor([0, 1]))
    expected = spring_elasticity(torch.tensor(0.002, dtype=torch.float64)).item()
    assert k[0, 0, 0].item() == pytest.approx(expected)
    assert k[0, 1, 1].item() == pytest.approx(expected)
    assert k[0, 0, 1].item() == 0.0 and k[0, 1, 0].item() == 0.0  # other region
    assert k[0, :, 2].abs().sum().item() == 0.0  # not in contact
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    t = torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64)
    k2 = oracle_springs(anchors @ q.T + t, verts @ q.T + t, pts @ q.T + t, torch.tensor([0, 1]), torch.tensor([0, 1]))
    torch.testing.assert_close(k, k2)
