"""Throughput of the hand layers: forward and forward+backward, batch 1/64/1024, CPU (and CUDA if present).

Models: OpenHand (1159 vertices, no pose correctives) and a MANO-format model built in memory from random
arrays of MANO's real shapes (778 vertices, 135 pose correctives, 10 shape coefficients);
no MANO file needed.

    python benchmarks/bm_hands.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from contactkit.hands import HandModel, HandModelData, load_hand
from contactkit.hands.base import MANO_PARENTS


def random_mano_format(seed: int = 0) -> HandModelData:
    rng = np.random.default_rng(seed)
    v = 778
    jreg = np.zeros((16, v))
    for j in range(16):
        idx = rng.choice(v, 20, replace=False)
        jreg[j, idx] = rng.random(20)
    jreg /= jreg.sum(1, keepdims=True)
    w = rng.random((v, 16)) ** 4
    w /= w.sum(1, keepdims=True)
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    faces = rng.integers(0, v, size=(1538, 3))
    return HandModelData(
        name="mano", side="right", v_template=rng.normal(size=(v, 3)) * 0.05, faces=faces, closed_faces=faces,
        j_regressor=jreg, weights=w, posedirs=rng.normal(size=(v, 3, 135)) * 1e-3,
        shapedirs=rng.normal(size=(v, 3, 10)) * 1e-2, parents=np.asarray(MANO_PARENTS),
        fingertips=np.asarray([745, 317, 444, 556, 673]), pca_components=q,
        pca_mean=rng.normal(size=45) * 0.1,
    )  # fmt: skip


def per_joint_lbs(model: HandModel):
    """Textbook LBS (per-joint 4x4 chain, per-vertex 4x4 product), the usual layer design, to compare."""
    v_t, w, par = model.v_template, model.lbs_weights, model.parents.tolist()
    n_v, n_b = model.num_verts, model.num_betas
    sd = model.shapedirs_flat.T.reshape(n_v, 3, n_b)
    jreg, pdirs = model.j_regressor, model.posedirs_flat

    def forward(go, hp, be, tr):
        b = go.shape[0]
        pose = torch.cat([go, hp], 1).reshape(b * 16, 3)
        angle = (pose + 1e-8).norm(dim=1, keepdim=True)
        x, y, z = (pose / angle).unbind(1)
        zero = torch.zeros_like(x)
        k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], 1).reshape(-1, 3, 3)
        eye = torch.eye(3, dtype=v_t.dtype, device=v_t.device)
        rot = eye + torch.sin(angle)[:, :, None] * k + (1 - torch.cos(angle))[:, :, None] * (k @ k)
        rot = rot.reshape(b, 16, 3, 3)
        v_shaped = v_t + torch.einsum("bl,vkl->bvk", be, sd)
        joints = torch.einsum("bvk,jv->bjk", v_shaped, jreg)
        v_posed = v_shaped + ((rot[:, 1:] - eye).reshape(b, -1) @ pdirs).reshape(b, n_v, 3)
        chain = []
        for j in range(16):
            top = torch.cat([rot[:, j], (joints[:, j] - (joints[:, par[j]] if j else 0))[..., None]], -1)
            local = torch.cat([top, torch.tensor([0.0, 0, 0, 1], dtype=v_t.dtype).expand(b, 1, 4)], 1)
            chain.append(local if j == 0 else chain[par[j]] @ local)
        g = torch.stack(chain, 1)
        corr = g[..., :3, :3] @ joints[..., None]
        a = torch.cat([g[..., :3, :3], g[..., :3, 3:] - corr], -1)
        t = torch.einsum("vj,bjrc->bvrc", w, a)
        vh = torch.cat([v_posed, torch.ones_like(v_posed[..., :1])], -1)
        return (t @ vh[..., None])[..., 0] + tr[:, None]

    return forward


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bench(model: HandModel, batch: int, backward: bool, repeats: int, fn=None) -> float:
    dev, dt = model.device, model.dtype
    g = torch.Generator(device="cpu").manual_seed(0)
    go = (torch.randn(batch, 3, generator=g) * 0.5).to(dev, dt).requires_grad_(backward)
    hp = (torch.randn(batch, 45, generator=g) * 0.3).to(dev, dt).requires_grad_(backward)
    be = torch.randn(batch, model.num_betas, generator=g).to(dev, dt).requires_grad_(backward)
    tr = torch.randn(batch, 3, generator=g).to(dev, dt).requires_grad_(backward)

    def step() -> None:
        if fn is not None:
            if backward:
                fn(go, hp, be, tr).square().sum().backward()
            else:
                with torch.no_grad():
                    fn(go, hp, be, tr)
        elif backward:
            out = model(go, hp, be, tr)
            (out.vertices.square().sum() + out.keypoints.sum()).backward()
        else:
            with torch.no_grad():
                model(go, hp, be, tr)

    for _ in range(3):
        step()
    _sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; median ms per call (float32)")
    print(f"{'model':<10} {'device':<6} {'batch':>6} {'fwd ms':>9} {'fwd+bwd ms':>11} {'hands/s (f+b)':>14}")
    for dev in devices:
        for name, model in (
            ("openhand", load_hand("openhand")),
            ("mano-fmt", HandModel(random_mano_format())),
        ):
            model = model.to(dev)
            for batch in (1, 64, 1024):
                reps = args.repeats if batch < 1024 or dev.type == "cuda" else max(3, args.repeats // 4)
                f = bench(model, batch, False, reps)
                fb = bench(model, batch, True, reps)
                print(f"{name:<10} {dev.type:<6} {batch:>6} {f:>9.2f} {fb:>11.2f} {batch / fb * 1e3:>14.0f}")
                if name == "mano-fmt" and batch == 64:
                    ref = per_joint_lbs(model)
                    rf = bench(model, batch, False, reps, ref)
                    rfb = bench(model, batch, True, reps, ref)
                    label = "  per-joint ref"
                    print(f"{label:<17} {batch:>6} {rf:>9.2f} {rfb:>11.2f} {batch / rfb * 1e3:>14.0f}")


if __name__ == "__main__":
    main()
