"""AtlasNet-style object decoder: a template sphere deformed by an MLP conditioned on an image feature.

ObMan (paper 001 §3.2) decodes the object as an icosphere of subdivision level 3 (642 vertices): every template
vertex, concatenated with the image feature, goes through a fully connected network that outputs its new
position (Groueix et al., AtlasNet, CVPR 2018, sphere variant). The mesh keeps the template's faces, so the
prediction is a closed genus-0 triangle mesh that inside tests and the contact loss can use.

Regularisers (paper 001 §3.2, weights ``mu_E = 2``, ``mu_L = 0.1``):

- :func:`edge_loss` ``L_E``: mean squared deviation of each edge length from the mesh's mean edge length.
- :func:`laplacian_loss` ``L_L``: mean squared difference between the uniform Laplacian (vertex minus the mean
  of its neighbours) of the prediction and that of the template sphere scaled by ``scale`` — the curvature of
  the prediction is pulled towards that of a sphere of the object's size. It is exactly 0 for ``scale x
  template + t`` (any translation ``t``).

Neither keeps the decoded sphere from crumpling and folding through itself (session 8's base on v4 did: ~110 of
the 1,920 pairs of adjacent faces bent back, ``cos < 0``, on every reconstruction; ``docs/obman_net.md``). The
optional :func:`normal_consistency` ``L_N`` (not in paper 001; the mesh regulariser of Pixel2Mesh and
pytorch3d's ``mesh_normal_consistency``) penalises the bend between adjacent faces: mean ``1 - cos`` of their
normals, a constant ``1 - cos(angle)`` on the template (level 0: ``1 - sqrt(5)/3``), up to 2 for a face folded
back onto its neighbour. :func:`overlap_fraction` measures how much of a prediction's box lies in a self-overlap
(winding number neither 0 nor 1), where inside tests disagree.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

from contactkit.errors import ShapeError
from contactkit.geometry.inside import face_adjacency as mesh_face_adjacency
from contactkit.geometry.inside import winding_number

__all__ = ["AtlasNetDecoder", "edge_loss", "face_adjacency", "icosphere", "laplacian_loss", "mesh_edges",
           "normal_consistency", "overlap_fraction", "uniform_laplacian"]


@lru_cache(maxsize=8)
def icosphere(level: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: ``(V, 3)`` float64 vertices on the unit sphere and ``(F, 3)`` int64 outward faces.

    Level ``l`` has ``10 * 4**l + 2`` vertices (level 3: 642, ObMan's template). Deterministic.
    """
    if level < 0:
        raise ShapeError(f"level must be >= 0, got {level}")
    p = (1.0 + math.sqrt(5.0)) / 2.0
    verts = [(-1, p, 0), (1, p, 0), (-1, -p, 0), (1, -p, 0), (0, -1, p), (0, 1, p), (0, -1, -p), (0, 1, -p),
             (p, 0, -1), (p, 0, 1), (-p, 0, -1), (-p, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
             (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.array(x, dtype=np.float64) / np.linalg.norm(x) for x in verts]

    def mid(a: int, b: int, cache: dict[tuple[int, int], int]) -> int:
        key = (min(a, b), max(a, b))
        if key not in cache:
            m = v[a] + v[b]
            v.append(m / np.linalg.norm(m))
            cache[key] = len(v) - 1
        return cache[key]

    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}
        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b, cache), mid(b, c, cache), mid(c, a, cache)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    vv, ff = np.stack(v), np.array(faces, dtype=np.int64)
    vv.setflags(write=False)
    ff.setflags(write=False)
    return vv, ff


def overlap_fraction(verts: np.ndarray, faces: np.ndarray, resolution: int = 16) -> float:
    """Fraction of a ``resolution``^3 grid over the mesh's bounding box where the generalised winding number is
    not 0 or 1 (``w < -0.5`` or ``w > 1.5``): 0 for an embedded, outward-oriented closed mesh; > 0 where the mesh
    folds through itself (inside-out pockets have ``w = -1``, doubled layers ``w = 2``). The signed-distance sign
    of such a mesh depends on the test (pseudonormals, winding number, ray parity), so its penetration and
    intersection metrics are not defined; a fold thinner than the grid pitch can be missed.

    Args:
        verts: (V, 3) float, any length unit.
        faces: (F, 3) int.
    """
    v = np.asarray(verts, dtype=np.float64)
    lo, hi = v.min(0), v.max(0)
    axes = [np.linspace(lo[a], hi[a], resolution + 2)[1:-1] for a in range(3)]  # interior nodes only
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    w = winding_number(torch.from_numpy(grid), v, np.asarray(faces, dtype=np.int64))
    return float(((w < -0.5) | (w > 1.5)).double().mean())


def mesh_edges(faces: Tensor) -> Tensor:
    """Unique undirected edges ``(E, 2)`` int64 (sorted pairs) of triangles ``(F, 3)``."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(dim=1).values
    return torch.unique(e, dim=0)


def face_adjacency(faces: Tensor) -> Tensor:
    """Pairs ``(P, 2)`` int64 of the faces of a closed manifold mesh ``(F, 3)`` that share an edge (one row per
    edge, sorted by edge; the neighbours of :func:`contactkit.geometry.inside.face_adjacency`); raises
    ``ShapeError`` if an edge does not have exactly two faces."""
    f = faces.cpu().numpy().astype(np.int64)
    num_verts = int(f.max()) + 1
    across = mesh_face_adjacency(f, num_verts)  # (F, 3): the face across the edge opposite each corner
    if (across < 0).any():
        raise ShapeError("faces must form a closed manifold mesh (every edge in exactly two faces)")
    u, v = f[:, [1, 2, 0]], f[:, [2, 0, 1]]  # the edge opposite corner k
    own = np.broadcast_to(np.arange(len(f))[:, None], across.shape)
    once = own < across  # each edge from its lower-numbered face
    key = (np.minimum(u, v) * num_verts + np.maximum(u, v))[once]
    pairs = np.stack([own[once], across[once]], axis=1)[np.argsort(key, kind="stable")]
    return torch.from_numpy(pairs).to(faces.device)


def normal_consistency(verts: Tensor, faces: Tensor, pairs: Tensor) -> Tensor:
    """``L_N`` per mesh (B,), unitless: mean over adjacent face pairs of ``1 - cos`` of their unit normals.

    0 for a plane; ``1 - sqrt(5)/3`` on the regular icosahedron; 2 for a face folded flat back onto its
    neighbour. Degenerate (zero-area) faces get a zero normal (their pairs count ``1``).

    Args:
        verts: (B, V, 3) float, any length unit; faces: (F, 3) int64; pairs: (P, 2) of :func:`face_adjacency`.
    """
    a, b, c = verts[:, faces[:, 0]], verts[:, faces[:, 1]], verts[:, faces[:, 2]]
    n = torch.cross(b - a, c - a, dim=-1)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return 1.0 - (n[:, pairs[:, 0]] * n[:, pairs[:, 1]]).sum(-1).mean(dim=1)


def uniform_laplacian(verts: Tensor, edges: Tensor) -> Tensor:
    """Uniform Laplacian ``v_i - mean_{j in N(i)} v_j`` of ``verts (B, V, 3)`` over ``edges (E, 2)``; (B, V, 3)."""
    b, n, _ = verts.shape
    i, j = edges[:, 0], edges[:, 1]
    sums = torch.zeros_like(verts)
    sums = sums.index_add(1, i, verts[:, j]).index_add(1, j, verts[:, i])
    deg = torch.zeros(n, dtype=verts.dtype, device=verts.device)
    deg = deg.index_add(0, i, torch.ones_like(i, dtype=verts.dtype)).index_add(
        0, j, torch.ones_like(j, dtype=verts.dtype))
    return verts - sums / deg.clamp_min(1.0)[None, :, None]


def edge_loss(verts: Tensor, edges: Tensor) -> Tensor:
    """ObMan's ``L_E`` per mesh: ``mean_e (|e| - mean_e' |e'|)^2``; ``verts (B, V, 3)`` -> (B,), length^2."""
    length = (verts[:, edges[:, 0]] - verts[:, edges[:, 1]]).norm(dim=-1)
    return (length - length.mean(dim=1, keepdim=True)).pow(2).mean(dim=1)


def laplacian_loss(verts: Tensor, template: Tensor, edges: Tensor, scale: Tensor | float = 1.0) -> Tensor:
    """ObMan's ``L_L`` per mesh: ``mean_v |lap(V)_v - scale * lap(template)_v|^2``; (B,), length^2.

    Args:
        verts: (B, V, 3) predicted vertices; template: (V, 3) unit sphere; edges: (E, 2).
        scale: (B,) or a float, the sphere's radius the curvature is compared with.
    """
    s = torch.as_tensor(scale, dtype=verts.dtype, device=verts.device).reshape(-1, 1, 1)
    ref = uniform_laplacian(template.unsqueeze(0), edges)
    return (uniform_laplacian(verts, edges) - s * ref).pow(2).sum(-1).mean(dim=1)


class AtlasNetDecoder(nn.Module):
    """Deforms the unit icosphere with an MLP of ``[template vertex, feature]`` (AtlasNet, sphere variant).

    Args:
        feature_dim: size of the conditioning feature.
        hidden: width of the MLP's hidden layers (AtlasNet: 1024, 512, 256; here ``hidden, hidden/2, hidden/4``).
        level: icosphere subdivision level (ObMan: 3, 642 vertices).

    ``forward(feature (B, D))`` returns ``(B, V, 3)`` vertices in the normalised frame (the template's scale:
    about unit radius); the faces are ``self.faces``. The last layer starts at zero and adds the template, so an
    untrained decoder outputs the sphere itself.
    """

    template: Tensor
    faces: Tensor
    edges: Tensor
    face_pairs: Tensor

    def __init__(self, feature_dim: int, hidden: int = 256, level: int = 3) -> None:
        super().__init__()
        v, f = icosphere(level)
        self.register_buffer("template", torch.tensor(v, dtype=torch.float32))
        self.register_buffer("faces", torch.tensor(f))
        self.register_buffer("edges", mesh_edges(torch.tensor(f)))
        self.register_buffer("face_pairs", face_adjacency(torch.tensor(f)), persistent=False)
        h = int(hidden)
        self.mlp = nn.Sequential(nn.Linear(3 + feature_dim, h), nn.ReLU(), nn.Linear(h, h // 2), nn.ReLU(),
                                 nn.Linear(h // 2, h // 4), nn.ReLU())
        self.out = nn.Linear(h // 4, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, feature: Tensor) -> Tensor:
        if feature.ndim != 2:
            raise ShapeError(f"feature must have shape (B, D), got {tuple(feature.shape)}")
        b, n = feature.shape[0], self.template.shape[0]
        tpl = self.template.to(feature.dtype).unsqueeze(0).expand(b, n, 3)
        x = torch.cat([tpl, feature.unsqueeze(1).expand(b, n, feature.shape[1])], dim=-1)
        return tpl + self.out(self.mlp(x))
