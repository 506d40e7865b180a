"""Inside/outside tests and exact signed distances to triangle meshes.

Sign convention (everywhere in contactkit): **negative inside the object, positive outside.**

Two ways to decide inside/outside:

- **Generalised winding number** (Jacobson et al. 2013, libigl's fast winding number): ``w(p)`` is 1 inside
  and 0 outside a closed, outward-oriented mesh and degrades gracefully on open meshes (holes, missing
  caps); a point is inside when ``w > 0.5``. Robust on non-watertight meshes; about 30 ms for 778 points on
  a 16k-face mesh.
- **Closed fast path**: for a watertight, consistently oriented mesh the sign of ``(p - c) . n`` with ``c``
  the closest surface point and ``n`` the angle-weighted pseudonormal of the closest feature (face, edge or
  vertex; Bærentzen & Aanæs 2005) is exact, and it reuses the closest-point search.

``closed=None`` (the default) checks the topology (every edge shared by exactly two faces with opposite
orientation) and picks the fast path only for closed meshes. Passing ``closed=True`` for an open mesh gives
wrong signs near the holes. Both tests run on the CPU (libigl); results are returned on the input device.
"""

from __future__ import annotations

from typing import Literal

import igl
import numpy as np
import torch

from contactkit.errors import ShapeError
from contactkit.geometry._checks import (
    check_faces,
    check_finite,
    check_tensor,
    check_verts,
    faces_tensor,
    shape_str,
    verts_numpy,
)
from contactkit.geometry.mesh_distance import MeshClosest, MeshIndex, closest_points_on_mesh, mesh_index
from contactkit.geometry.normals import angle_weighted_vertex_normals, face_normals

__all__ = [
    "boundary_chain",
    "grid_ray_winding",
    "ray_winding_error_bound",
    "winding_number",
    "contains",
    "signed_distance",
    "is_closed",
    "face_adjacency",
    "pseudonormal_sign",
]


def face_adjacency(faces: np.ndarray, num_verts: int) -> np.ndarray:
    """Neighbour across each edge: ``adj[f, k]`` is the other face on the edge opposite corner ``k``.

    Args:
        faces: (F, 3) int64; num_verts: number of vertices.

    Returns:
        (F, 3) int64, ``-1`` where the edge is a boundary or shared by more than two faces.
    """
    f = np.asarray(faces, dtype=np.int64)
    num_faces = f.shape[0]
    u = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])  # edge opposite corner k: (f[k+1], f[k+2])
    v = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])
    key = np.minimum(u, v) * num_verts + np.maximum(u, v)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    counts = np.diff(np.r_[starts, ks.size])
    adj = np.full(3 * num_faces, -1, dtype=np.int64)
    pairs = starts[counts == 2]
    h0, h1 = order[pairs], order[pairs + 1]
    adj[h0] = h1 % num_faces
    adj[h1] = h0 % num_faces
    return adj.reshape(3, num_faces).T.copy()


def is_closed(faces: np.ndarray | torch.Tensor, num_verts: int) -> bool:
    """True when every edge is shared by exactly two faces with opposite orientations (watertight, oriented).

    Args:
        faces: (F, 3) int; num_verts: number of vertices.
    """
    f = check_faces(faces, num_verts)
    u = f[:, [0, 1, 2]].ravel()
    v = f[:, [1, 2, 0]].ravel()
    directed = u * num_verts + v
    if np.unique(directed).size != directed.size:
        return False
    reverse = v * num_verts + u
    return bool(np.isin(reverse, directed).all())


def _topology(index: MeshIndex | None, faces_np: np.ndarray, num_verts: int) -> tuple[bool, np.ndarray]:
    """(closed, adjacency) for a mesh, cached in ``index.extras`` when an index is given."""
    if index is not None and "closed" in index.extras:
        return index.extras["closed"], index.extras["adjacency"]
    closed = is_closed(faces_np, num_verts)
    adj = face_adjacency(faces_np, num_verts)
    if index is not None:
        index.extras["closed"] = closed
        index.extras["adjacency"] = adj
    return closed, adj


def _rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather rows: ``table`` (R, 3) or (B, R, 3), ``idx`` (B, N) -> (B, N, 3)."""
    if table.dim() == 2:
        return table[idx]
    return torch.gather(table, 1, idx[..., None].expand(-1, -1, 3))


def pseudonormal_sign(
    points: torch.Tensor,
    closest: MeshClosest,
    verts: torch.Tensor,
    faces: torch.Tensor,
    adjacency: torch.Tensor,
    normals: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Sign of ``(p - c) . n`` with ``n`` the angle-weighted pseudonormal of the closest feature.

    Exact for closed, consistently oriented meshes (Bærentzen & Aanæs 2005).

    Args:
        points: (B, N, 3) float query points.
        closest: :class:`MeshClosest` of ``points`` on the mesh.
        verts: (V, 3) or (B, V, 3) float; faces: (F, 3) int64; adjacency: (F, 3) int64 from
            :func:`face_adjacency`.
        normals: optional precomputed ``(face_normals, angle_weighted_vertex_normals)`` of the mesh, same
            dtype/device as ``points``.

    Returns:
        (B, N) float in {-1, 0, +1} (negative inside), no gradient.
    """
    with torch.no_grad():
        if normals is None:
            fn = face_normals(verts, faces)
            vn = angle_weighted_vertex_normals(verts, faces)
        else:
            fn, vn = normals
        fid = closest.face_idx
        bary = closest.bary
        n_face = _rows(fn, fid)
        zeros = bary == 0
        num_zero = zeros.sum(-1)
        # vertex feature: the corner with weight one
        corner = bary.argmax(-1)
        vid = faces[fid, corner]
        n_vert = _rows(vn, vid)
        # edge feature: the edge opposite the single zero weight
        k = zeros.to(torch.int64).argmax(-1)
        nb = adjacency[fid, k]
        n_nb = _rows(fn, nb.clamp_min(0))
        n_edge = torch.where((nb >= 0)[..., None], n_face + n_nb, n_face)
        n = torch.where((num_zero == 1)[..., None], n_edge, n_face)
        n = torch.where((num_zero >= 2)[..., None], n_vert, n)
        dot = ((points - closest.closest) * n).sum(-1)
        return torch.sign(dot)


def winding_number(
    points: torch.Tensor, verts: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """Generalised winding number of a triangle mesh at query points (libigl fast winding number).

    Args:
        points: (..., 3) float query points, e.g. (N, 3) or (B, N, 3), metres.
        verts: (V, 3) float mesh vertices; faces: (F, 3) int64.

    Returns:
        (...) winding numbers, ``points``' dtype and device: ~1 inside, ~0 outside an outward-oriented closed
        mesh; no gradient.
    """
    check_tensor(points, "points")
    if points.dim() < 1 or points.shape[-1] != 3:
        raise ShapeError(f"points must have shape (..., 3), got {shape_str(points)}")
    check_finite(points, "points")
    v = verts_numpy(check_verts(verts, allow_batch=False))
    f = check_faces(faces, v.shape[0])
    q = points.detach().cpu().numpy().astype(np.float64, copy=False).reshape(-1, 3)
    w = igl.fast_winding_number(v, f, np.ascontiguousarray(q)) if q.shape[0] else np.zeros(0)
    return torch.from_numpy(np.asarray(w)).reshape(points.shape[:-1]).to(points.device, points.dtype)


def _signs(
    points: torch.Tensor,
    verts: torch.Tensor,
    faces_np: np.ndarray,
    closed: bool | None,
    index: MeshIndex | None,
    result: MeshClosest | None,
) -> torch.Tensor:
    """(B, N) signs (-1 inside, +1 outside or on the surface) for ``points (B, N, 3)``."""
    num_verts = verts.shape[-2]
    if closed is None or closed:
        if index is None and verts.dim() == 2 and verts.device.type == "cpu":
            index = mesh_index(verts, faces_np)
        is_cl, adj = _topology(index, faces_np, num_verts)
        if closed is None:
            closed = is_cl
    if closed:
        faces_t = faces_tensor(faces_np, points.device)
        if result is None:
            with torch.no_grad():
                result = closest_points_on_mesh(points.detach(), verts.detach(), faces_np, index=index)
        adj_t = torch.as_tensor(adj, device=points.device)
        normals = None
        if index is not None and verts.dim() == 2:
            if "pseudonormals" not in index.extras:
                v64 = torch.tensor(index.verts)  # copies: the index may hold read-only arrays
                f64 = torch.tensor(index.faces)
                index.extras["pseudonormals"] = (
                    face_normals(v64, f64),
                    angle_weighted_vertex_normals(v64, f64),
                )
            fn, vn = index.extras["pseudonormals"]
            normals = (fn.to(points.device, points.dtype), vn.to(points.device, points.dtype))
        s = pseudonormal_sign(points.detach(), result, verts.detach(), faces_t, adj_t, normals)
        return torch.where(s < 0, -torch.ones_like(s), torch.ones_like(s))
    if verts.dim() == 2:
        w = winding_number(points, verts, faces_np)
    else:
        w = torch.stack([winding_number(points[i], verts[i], faces_np) for i in range(points.shape[0])])
    return torch.where(w > 0.5, -torch.ones_like(w), torch.ones_like(w))


def _check_query(points: torch.Tensor, verts: torch.Tensor) -> None:
    if verts.dtype != points.dtype or verts.device != points.device:
        raise ShapeError(
            f"points and verts must share dtype and device, got {points.dtype}/{points.device} "
            f"and {verts.dtype}/{verts.device}"
        )
    if verts.dim() == 3 and (points.dim() != 3 or points.shape[0] != verts.shape[0]):
        raise ShapeError(
            f"with batched verts {shape_str(verts)} points must have shape (B, N, 3) with the same B, "
            f"got {shape_str(points)}"
        )


def contains(
    points: torch.Tensor,
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    *,
    closed: bool | None = None,
    index: MeshIndex | None = None,
) -> torch.Tensor:
    """Whether points lie strictly inside a triangle mesh.

    Args:
        points: (N, 3) or (B, N, 3) float query points, metres.
        verts: (V, 3) float mesh (or (B, V, 3) with (B, N, 3) points); numpy arrays are accepted.
        faces: (F, 3) int64.
        closed: ``True``: pseudonormal fast path (mesh must be watertight and oriented); ``False``:
            generalised winding number ``> 0.5`` (right on open meshes away from the holes); ``None``:
            detect from the topology.
        index: optional :class:`MeshIndex` of the mesh (reuses its AABB tree and topology).

    Returns:
        (N,) or (B, N) bool on ``points``' device.
    """
    check_tensor(points, "points")
    if points.dim() not in (2, 3) or points.shape[-1] != 3:
        raise ShapeError(f"points must have shape (N, 3) or (B, N, 3), got {shape_str(points)}")
    check_finite(points, "points")
    v = check_verts(verts)
    if isinstance(verts, np.ndarray):
        v = v.to(points.device, points.dtype)
    _check_query(points, v)
    faces_np = check_faces(faces, v.shape[-2])
    p3 = points if points.dim() == 3 else points.unsqueeze(0)
    s = _signs(p3, v, faces_np, closed, index, None)
    inside = s < 0
    return inside if points.dim() == 3 else inside[0]


def signed_distance(
    points: torch.Tensor,
    verts: torch.Tensor,
    faces: torch.Tensor | np.ndarray,
    *,
    closed: bool | None = None,
    index: MeshIndex | None = None,
    backend: Literal["auto", "igl", "torch"] = "auto",
) -> torch.Tensor:
    """Exact signed distance to a triangle mesh, **negative inside**, differentiable in magnitude.

    The unsigned distance comes from :func:`closest_points_on_mesh` (gradients w.r.t. points and vertices);
    the sign is piecewise constant (see :func:`contains` for ``closed``).

    Args:
        points: (B, N, 3) float, metres.
        verts: (V, 3) or (B, V, 3) float, same dtype/device as ``points``; faces: (F, 3) int64.
        closed, index: see :func:`contains`; backend: see :func:`closest_points_on_mesh`.

    Returns:
        (B, N) float signed distances, metres.
    """
    res = closest_points_on_mesh(points, verts, faces, index=index, backend=backend)
    v = check_verts(verts)
    faces_np = index.faces if (index is not None and v.dim() == 2) else check_faces(faces, v.shape[-2])
    s = _signs(points, v, faces_np, closed, index, res)
    return s * res.dist


def grid_ray_winding(
    verts: np.ndarray, faces: np.ndarray, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, *, eps: float = 1e-12
) -> tuple[np.ndarray, np.ndarray]:
    """Ray-crossing winding number ``X`` of a mesh at the nodes of a regular grid (rays along +z).

    Each grid column ``(x_i, y_j)`` is a ray along +z; the mesh is rasterised onto the columns (which triangles
    cover which column, and at which height), and ``X`` at node ``(x_i, y_j, z_k)`` is the sum over the
    crossings above it of the sign of the triangle's normal z-component. For a closed, consistently oriented mesh
    ``X`` is the winding number (the generalised winding number's value off the surface); for a mesh with
    holes it differs from the generalised winding number by at most :func:`ray_winding_error_bound`.
    Nodes the crossings cannot decide are flagged: every node of a column that passes within ``eps`` (m^2, an
    edge function) of a projected triangle edge or vertex, and every node within ``1e-9`` m of a crossing.

    Args:
        verts: (V, 3) float64, metres, in the grid's frame; faces: (F, 3) int64.
        xs, ys, zs: (nx,), (ny,), (nz,) increasing node coordinates, metres.
        eps: tolerance of the edge test.

    Returns:
        ``(winding (nx, ny, nz) int64, ambiguous (nx, ny, nz) bool)``.
    """
    nx, ny, nz = len(xs), len(ys), len(zs)
    winding = np.zeros((nx, ny, nz), dtype=np.int64)
    ambiguous = np.zeros((nx, ny, nz), dtype=bool)
    if min(nx, ny, nz) == 0 or len(faces) == 0:
        return winding, ambiguous
    tri = np.asarray(verts, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]  # (F, 3, 3)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = area != 0.0  # triangles seen edge-on add no crossing (their neighbours' edges flag the column)
    a, b, c, area = a[keep], b[keep], c[keep], area[keep]
    sign = np.where(area > 0, 1, -1)
    b, c = np.where((area > 0)[:, None], b, c), np.where((area > 0)[:, None], c, b)  # counter-clockwise in xy
    lo, hi = np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)
    i0, i1 = np.searchsorted(xs, lo[:, 0] - 1e-9, "left"), np.searchsorted(xs, hi[:, 0] + 1e-9, "right")
    j0, j1 = np.searchsorted(ys, lo[:, 1] - 1e-9, "left"), np.searchsorted(ys, hi[:, 1] + 1e-9, "right")
    ni, nj = np.maximum(i1 - i0, 0), np.maximum(j1 - j0, 0)
    count = ni * nj
    t = np.repeat(np.arange(len(a)), count)  # one row per (triangle, candidate column)
    if t.size == 0:
        return winding, ambiguous
    local = np.arange(t.size) - np.repeat(np.cumsum(count) - count, count)
    ii = i0[t] + local // nj[t]
    jj = j0[t] + local % nj[t]
    qx, qy = xs[ii], ys[jj]
    at, bt, ct = a[t], b[t], c[t]

    def edge(p: np.ndarray, q: np.ndarray) -> np.ndarray:  # 2D cross (q - p) x (point - p)
        return (q[:, 0] - p[:, 0]) * (qy - p[:, 1]) - (q[:, 1] - p[:, 1]) * (qx - p[:, 0])

    emin = np.minimum(np.minimum(edge(at, bt), edge(bt, ct)), edge(ct, at))
    hit = emin > eps
    edge_case = (emin > -eps) & ~hit
    if edge_case.any():
        ambiguous[ii[edge_case], jj[edge_case], :] = True
    t, ii, jj, at, bt, ct = t[hit], ii[hit], jj[hit], at[hit], bt[hit], ct[hit]
    n = np.cross(bt - at, ct - at)
    z = at[:, 2] - (n[:, 0] * (xs[ii] - at[:, 0]) + n[:, 1] * (ys[jj] - at[:, 1])) / n[:, 2]
    below = np.searchsorted(zs, z, "left")  # number of nodes strictly below the crossing
    col = ii * ny + jj
    diff = np.zeros((nx * ny, nz + 1), dtype=np.int64)
    np.add.at(diff, (col, below), sign[t])
    # winding at node k = sum of the signs of the crossings above it = sum of diff[col, m] for m > k
    suffix = np.cumsum(diff[:, ::-1], axis=1)[:, ::-1]
    winding = suffix[:, 1:].reshape(nx, ny, nz)
    near = np.abs(zs[np.clip(below, 0, nz - 1)] - z) < 1e-9
    near_below = np.abs(zs[np.clip(below - 1, 0, nz - 1)] - z) < 1e-9
    amb = ambiguous.reshape(nx * ny, nz)
    amb[col[near], np.clip(below, 0, nz - 1)[near]] = True
    amb[col[near_below], np.clip(below - 1, 0, nz - 1)[near_below]] = True
    return winding, amb.reshape(nx, ny, nz)


def boundary_chain(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boundary of a triangle mesh as an oriented edge chain: edges whose half-edges do not cancel.

    Args:
        faces: (F, 3) int64.

    Returns:
        ``(edges (K, 2) int64, multiplicity (K,) int64 > 0)``: edge ``(u, v)`` appears ``multiplicity`` more
        times as ``u -> v`` than as ``v -> u`` among the faces' half-edges (holes' rims and non-manifold edges);
        empty for a closed, consistently oriented mesh.
    """
    f = np.asarray(faces, dtype=np.int64)
    u = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    v = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    n = int(f.max(initial=0)) + 1
    keys, inverse = np.unique(lo * n + hi, return_inverse=True)
    net = np.zeros(len(keys), dtype=np.int64)
    np.add.at(net, inverse.reshape(-1), np.where(u < v, 1, -1))
    nz = net != 0
    a, b = keys[nz] // n, keys[nz] % n
    m = net[nz]
    edges = np.where((m > 0)[:, None], np.stack([a, b], 1), np.stack([b, a], 1))
    return edges, np.abs(m)


def ray_winding_error_bound(
    points: np.ndarray,
    verts: np.ndarray,
    edges: np.ndarray,
    multiplicity: np.ndarray,
    *,
    exact_above: float | np.ndarray = 0.0,
) -> np.ndarray:
    """``|w(p) - X(p)|``: generalised winding number against the +z ray-crossing count of a mesh with boundary.

    ``w - X`` is continuous across the mesh (both jump by the same integer there) and jumps only where the +z
    ray sweeps over the mesh's boundary, i.e. across the ribbon the boundary chain sweeps down to ``z = -inf``;
    it is (up to sign) that ribbon's generalised winding number. Seen from ``p``, the ribbon of a boundary edge
    ``(a, b)`` is the spherical triangle ``(a - p, b - p, -z)``, whose signed solid angle is Van Oosterom and
    Strackee's ``2 atan2(A.(B x C), |A||B| + A.B + (A.C)|B| + (B.C)|A|)``; the sum over the chain (times the
    multiplicities) over 4 pi is returned. 0 for a closed mesh; ``inf`` where ``p`` lies within 1e-9 m
    (horizontally) of a boundary edge, where the ray grazes the ribbon.

    Far field (cheap, an upper bound): when the +z ray from ``p`` misses the box of the chain and everything
    below it, the ribbon and the cone of triangles ``(q, a, b)`` from the chain's centroid ``q`` bound a closed
    surface the ray does not cross, so their winding numbers agree, and the cone's is at most its total area
    ``A`` over ``4 pi (|p - q| - r)^2`` (``r``: the chain's radius about ``q``). That bound is returned where it
    is at most ``exact_above``; the exact value elsewhere.

    Args:
        points: (N, 3) float64, metres; verts: (V, 3) float64 in the same frame.
        edges, multiplicity: the mesh's :func:`boundary_chain`.
        exact_above: largest far-field bound accepted instead of the exact value (0: exact everywhere); a
            scalar or one value per point.

    Returns:
        (N,) float64 >= 0.
    """
    out = np.zeros(points.shape[0])
    if len(edges) == 0 or points.shape[0] == 0:
        return out
    va, vb = verts[edges[:, 0]], verts[edges[:, 1]]
    chain = np.concatenate([va, vb])
    q = chain.mean(0)
    r = float(np.linalg.norm(chain - q, axis=1).max())
    area = float((0.5 * np.linalg.norm(np.cross(va - q, vb - q), axis=1) * multiplicity).sum())
    lo, hi = chain.min(0), chain.max(0)
    clear = ~np.all((points[:, :2] >= lo[:2]) & (points[:, :2] <= hi[:2]), axis=1) | (points[:, 2] > hi[2])
    d = np.linalg.norm(points - q, axis=1)
    far = clear & (d > r)
    out[far] = area / (4.0 * np.pi * np.maximum(d[far] - r, 1e-300) ** 2)
    todo = np.nonzero(~(far & (out <= exact_above)))[0]
    out[todo] = _ribbon_winding(points[todo], va, vb, multiplicity)
    return out


def ray_winding_ball_bound(
    centres: np.ndarray,
    radius: np.ndarray,
    verts: np.ndarray,
    edges: np.ndarray,
    multiplicity: np.ndarray,
    *,
    exact_above: float = 0.0,
) -> np.ndarray:
    """An upper bound of :func:`ray_winding_error_bound` over whole balls, from one exact value per ball.

    Off its ribbon, ``e = w - X`` is the ribbon's generalised winding number, a harmonic function whose gradient
    is the Biot-Savart field of the ribbon's boundary (the solid angle of a surface is the magnetic scalar
    potential of a current along its boundary): the boundary chain itself, as the ribbon's vertical sides cancel
    between consecutive edges (every chain vertex has as many edges in as out) and its bottom lies at infinity.
    So ``|grad e|(x) <= sum_k m_k len_k / (4 pi dist(x, edge_k)^2)``, and along the segment from the centre ``c``
    to any point ``p`` of a ball of radius ``r`` the ribbon does not meet, ``dist(x, edge_k) >= D_k - r``
    (``D_k``: the distance of ``c`` from edge ``k``), so

        ``|e(p)| <= |e(c)| + r * sum_k m_k len_k / (4 pi (D_k - r)^2)``.

    A ball is taken as clear of the ribbon (which lies below the chain, inside its box in xy) when it lies above
    the chain's top or its disc misses that box in xy; other balls, and balls reaching an edge (``D_k <= r``),
    get ``inf``. ``|e(c)|`` is :func:`ray_winding_error_bound`'s (its far-field bound where the ball's total
    stays at most ``exact_above`` with it).

    Args:
        centres: (N, 3) float64, metres; radius: (N,) float64 >= 0; verts: (V, 3) float64 in the same frame.
        edges, multiplicity: the mesh's :func:`boundary_chain`.
        exact_above: largest total accepted with the centre's far-field bound (0: the exact centre values).

    Returns:
        (N,) float64 >= 0: at least ``|w - X|`` at every point of each ball.
    """
    out = np.zeros(centres.shape[0])
    if len(edges) == 0 or centres.shape[0] == 0:
        return out
    va, vb = verts[edges[:, 0]], verts[edges[:, 1]]
    chain = np.concatenate([va, vb])
    lo, hi = chain.min(0), chain.max(0)
    gap_xy = np.linalg.norm(np.maximum(np.maximum(lo[:2] - centres[:, :2], centres[:, :2] - hi[:2]), 0.0), axis=1)
    clear = (centres[:, 2] - radius > hi[2]) | (gap_xy > radius)
    out[~clear] = np.inf
    todo = np.nonzero(clear)[0]
    if not todo.size:
        return out
    c, r = centres[todo], radius[todo]
    seg = vb - va
    length = np.linalg.norm(seg, axis=1)
    # distance of each centre from each edge, per coordinate on (n, K) arrays
    px, py, pz = c[:, 0:1] - va[None, :, 0], c[:, 1:2] - va[None, :, 1], c[:, 2:3] - va[None, :, 2]
    t = np.clip((px * seg[:, 0] + py * seg[:, 1] + pz * seg[:, 2]) / np.maximum(length**2, 1e-300), 0.0, 1.0)
    px, py, pz = px - t * seg[:, 0], py - t * seg[:, 1], pz - t * seg[:, 2]
    gap = np.sqrt(px * px + py * py + pz * pz) - r[:, None]
    change = r * ((multiplicity * length)[None] / (4.0 * np.pi * np.maximum(gap, 1e-300) ** 2)).sum(-1)
    change = np.where((gap > 0.0).all(-1), change, np.inf)
    ok = np.isfinite(change)
    out[todo[~ok]] = np.inf
    centre = ray_winding_error_bound(c[ok], verts, edges, multiplicity, exact_above=exact_above - change[ok])
    out[todo[ok]] = centre + change[ok]
    return out


def _ribbon_winding(points: np.ndarray, va: np.ndarray, vb: np.ndarray, multiplicity: np.ndarray) -> np.ndarray:
    """Exact ``|ribbon winding number|`` of :func:`ray_winding_error_bound` at ``points (N, 3)``.

    Written per coordinate on ``(n, K)`` arrays (numpy is slow on a trailing axis of 3), in the order of the
    vector formulas (:func:`_ribbon_winding_naive`, its twin in the tests).
    """
    out = np.zeros(points.shape[0])
    sx, sy = vb[:, 0] - va[:, 0], vb[:, 1] - va[:, 1]
    seg_sq = np.maximum(sx * sx + sy * sy, 1e-300)
    step = max(1, 8192 // len(va))  # small chunks: the temporaries stay in cache
    for s in range(0, points.shape[0], step):
        p = points[s : s + step]
        ax, ay, az = va[None, :, 0] - p[:, 0:1], va[None, :, 1] - p[:, 1:2], va[None, :, 2] - p[:, 2:3]
        bx, by, bz = vb[None, :, 0] - p[:, 0:1], vb[None, :, 1] - p[:, 1:2], vb[None, :, 2] - p[:, 2:3]
        la, lb = np.sqrt(ax * ax + ay * ay + az * az), np.sqrt(bx * bx + by * by + bz * bz)
        # C = (0, 0, -1): A.(B x C) = -(a_x b_y - a_y b_x); A.C = -a_z
        num = -(ax * by - ay * bx)
        den = la * lb + (ax * bx + ay * by + az * bz) - az * lb - bz * la
        omega = 2.0 * np.arctan2(num, den)
        total = np.abs((omega * multiplicity[None]).sum(-1)) / (4.0 * np.pi)
        # horizontal distance to each edge's projection: the formula is singular on the ribbon itself
        t = np.clip(((-ax) * sx + (-ay) * sy) / seg_sq, 0.0, 1.0)
        ox, oy = -ax - t * sx, -ay - t * sy
        graze = (ox * ox + oy * oy < 1e-18).any(-1)
        out[s : s + step] = np.where(graze, np.inf, total)
    return out


def _ribbon_winding_naive(points: np.ndarray, va: np.ndarray, vb: np.ndarray, multiplicity: np.ndarray) -> np.ndarray:
    """:func:`_ribbon_winding` with (n, K, 3) vectors (the previous implementation; the tests' naive twin)."""
    out = np.zeros(points.shape[0])
    seg = vb[:, :2] - va[:, :2]
    seg_sq = np.maximum((seg * seg).sum(-1), 1e-300)
    for i in range(points.shape[0]):
        a, b = va - points[i], vb - points[i]  # (K, 3)
        la, lb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
        num = -(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
        den = la * lb + (a * b).sum(-1) - a[:, 2] * lb - b[:, 2] * la
        omega = 2.0 * np.arctan2(num, den)
        total = np.abs((omega * multiplicity).sum()) / (4.0 * np.pi)
        t = np.clip(((-a[:, :2]) * seg).sum(-1) / seg_sq, 0.0, 1.0)
        off = -a[:, :2] - t[:, None] * seg
        out[i] = np.inf if ((off * off).sum(-1) < 1e-18).any() else total
    return out
