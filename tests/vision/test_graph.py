"""Graph convolutions: adjacency of the hand and box graphs, message passing on known graphs, equivariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contactkit.errors import ShapeError
from contactkit.vision.graph import GraphConv, GraphNet, edges_to_adjacency, normalized_adjacency
from contactkit.vision.keypoints import BOX_EDGES, HAND_EDGES, HAND_PARENTS, box_corner_signs


def test_hand_graph_is_the_kinematic_tree():
    adj = edges_to_adjacency(21, HAND_EDGES)
    assert adj.sum() == 2 * 20  # 20 bones
    degree = adj.sum(1)
    assert degree[0] == 5  # the wrist joins the five fingers
    tips = [4, 8, 12, 16, 20]
    assert degree[tips].tolist() == [1.0] * 5
    assert HAND_PARENTS[1:5] == (0, 1, 2, 3) and HAND_PARENTS[17:21] == (0, 17, 18, 19)
    # a tree: connected with N - 1 edges (walking up the parents from every node reaches the wrist)
    for node in range(21):
        steps = 0
        while node != 0:
            node, steps = HAND_PARENTS[node], steps + 1
        assert steps <= 4


def test_box_graph_joins_corners_one_side_apart():
    adj = edges_to_adjacency(8, BOX_EDGES)
    assert len(BOX_EDGES) == 12 and (adj.sum(1) == 3).all()
    signs = box_corner_signs()
    for a, b in BOX_EDGES:
        assert np.abs(signs[a] - signs[b]).sum() == 2  # differ along exactly one axis
    # the 12 edges of a cube are all the pairs at Hamming distance 1
    pairs = {(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1}
    assert {tuple(sorted(e)) for e in BOX_EDGES} == pairs


def test_normalized_adjacency_on_a_path_graph():
    # path 0 - 1 - 2: degrees with self loops (2, 3, 2); entries 1 / sqrt(d_i d_j)
    adj = edges_to_adjacency(3, [(0, 1), (1, 2)])
    expected = torch.tensor([[1 / 2, 1 / 6 ** 0.5, 0], [1 / 6 ** 0.5, 1 / 3, 1 / 6 ** 0.5], [0, 1 / 6 ** 0.5, 1 / 2]])
    torch.testing.assert_close(normalized_adjacency(adj), expected)
    # no edges: the identity; a diagonal in the input is ignored (self-loops always weigh 1)
    torch.testing.assert_close(normalized_adjacency(torch.zeros(4, 4)), torch.eye(4))
    torch.testing.assert_close(normalized_adjacency(adj + 5 * torch.eye(3)), expected)


def test_message_passing_reaches_neighbours_only():
    # a one-hot signal on node 0 of the path 0-1-2-3 spreads one hop per layer
    adj_n = normalized_adjacency(edges_to_adjacency(4, [(0, 1), (1, 2), (2, 3)]))
    conv = GraphConv(1, 1)
    with torch.no_grad():
        conv.linear.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.tensor([[[1.0], [0.0], [0.0], [0.0]]])
    y1 = conv(x, adj_n)
    assert y1[0, :, 0].ne(0).tolist() == [True, True, False, False]
    y2 = conv(y1, adj_n)
    assert y2[0, :, 0].ne(0).tolist() == [True, True, True, False]
    # the value is the naive re-normalised sum: sum_j x_j / sqrt(d_i d_j)
    assert y1[0, 1, 0].item() == pytest.approx(1 / (3 * 2) ** 0.5)


def test_graph_conv_matches_naive_loop():
    gen = torch.Generator().manual_seed(0)
    adj_n = normalized_adjacency(edges_to_adjacency(21, HAND_EDGES))
    conv = GraphConv(5, 7)
    x = torch.randn(2, 21, 5, generator=gen)
    naive = torch.zeros(2, 21, 7)
    for b in range(2):
        for i in range(21):
            agg = sum(adj_n[i, j] * x[b, j] for j in range(21))
            naive[b, i] = conv.linear.weight @ agg + conv.bias
    torch.testing.assert_close(conv(x, adj_n), naive)


@pytest.mark.parametrize("edges,n", [(HAND_EDGES, 21), (BOX_EDGES, 8)])
def test_graph_net_is_permutation_equivariant(edges, n):
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    net = GraphNet(4, 16, 3, num_layers=3)
    adj = edges_to_adjacency(n, edges)
    x = torch.randn(3, n, 4, generator=gen)
    perm = torch.randperm(n, generator=gen)
    out = net(x, normalized_adjacency(adj))
    out_perm = net(x[:, perm], normalized_adjacency(adj[perm][:, perm]))
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-5, rtol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ShapeError, match="edge"):
        edges_to_adjacency(3, [(0, 3)])
    with pytest.raises(ShapeError, match="adj"):
        normalized_adjacency(torch.zeros(3, 4))
    with pytest.raises(ShapeError, match="num_layers"):
        GraphNet(2, 4, 3, num_layers=1)


def test_modulated_graph_net_relabels_with_its_modulation_rows():
    gen = torch.Generator().manual_seed(4)
    torch.manual_seed(0)
    net = GraphNet(4, 8, 3, num_layers=3, num_nodes=8)
    with torch.no_grad():
        for layer in [net.inp, *net.hidden, net.out]:
            layer.modulation.copy_(torch.rand(8, layer.modulation.shape[1], generator=gen) + 0.5)
    adj = edges_to_adjacency(8, BOX_EDGES)
    x = torch.randn(2, 8, 4, generator=gen)
    out = net(x, normalized_adjacency(adj))
    perm = torch.randperm(8, generator=gen)
    with torch.no_grad():
        for layer in [net.inp, *net.hidden, net.out]:
            layer.modulation.copy_(layer.modulation[perm])
    out_perm = net(x[:, perm], normalized_adjacency(adj[perm][:, perm]))
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-5, rtol=1e-5)
