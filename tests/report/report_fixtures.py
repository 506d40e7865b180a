"""Helpers of the report tests (imported by conftest.py, the tests and benchmarks/bm_report.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from contactkit.report.data import MeshLayer, ReportSample
from contactkit.report.results import MethodResult, MetricSummary, Results


def make_samples(n: int = 2) -> list[ReportSample]:
    """A sphere object and an ellipsoid "hand" pushed 2.2 cm into it, with distance-based contact."""
    obj = trimesh.creation.icosphere(subdivisions=3, radius=0.04)
    hand = trimesh.creation.icosphere(subdivisions=2, radius=0.02)
    samples = []
    for i in range(n):
        hv = hand.vertices * np.array([1.6, 0.6, 0.6]) + np.array([0.05 + 0.002 * i, 0.0, 0.0])
        dist = np.linalg.norm(hv, axis=1) - 0.04
        contact = np.clip(2.0 - np.abs(dist) / 0.004, 0.0, 1.0)
        layers = [
            MeshLayer("object", "object", obj.vertices, obj.faces),
            MeshLayer("ground truth", "ground_truth", hv + [0.01, 0.0, 0.0], hand.faces, visible=False),
            MeshLayer("noisy", "noisy", hv + [0.0, 0.02, 0.0], hand.faces),
            MeshLayer("contactopt", "refined", hv, hand.faces, contact=contact, penetrating=dist < 0),
        ]
        samples.append(ReportSample(f"sphere #{i}", layers, metrics={"contactopt": {"mpjpe_mm": 3.25 + i}},
                                    units={"mpjpe_mm": "mm"}))
    return samples


def make_results() -> Results:
    """A perturbed baseline, one in-the-wild method, one that is not available, and one oracle row."""
    rng = np.random.default_rng(0)
    rows = [MethodResult("perturbed", {"mpjpe_mm": MetricSummary.from_values(rng.uniform(20, 40, 4), "mm"),
                                       "contact_f1_pct": MetricSummary.from_values([10, 20, 30, 40], "%")},
                         num_grasps=4),
            MethodResult("contactopt",
                         {"mpjpe_mm": MetricSummary.from_values(rng.uniform(5, 9, 4), "mm"),
                          "contact_f1_pct": MetricSummary.from_values([60, 70, np.nan, 90], "%")},
                         time_per_grasp_s=0.123456, num_grasps=4, targets="learned (DeepContactEstimator)"),
            MethodResult("cpf", error="no estimator for this hand"),
            MethodResult("contactopt (oracle)",
                         {"mpjpe_mm": MetricSummary.from_values(rng.uniform(2, 4, 4), "mm"),
                          "contact_f1_pct": MetricSummary.from_values([80, 85, 90, 95], "%")},
                         time_per_grasp_s=0.2, num_grasps=4, targets="oracle (reference grasps)", oracle=True)]
    return Results(kind="demo", metric_names=["mpjpe_mm", "contact_f1_pct"],
                   units={"mpjpe_mm": "mm", "contact_f1_pct": "%"}, rows=rows, config={"quick": True})


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageRun:
    """What headless Chromium saw: the screenshot, the DOM after scripts ran, and console lines."""

    screenshot: np.ndarray  # (H, W, 3) uint8
    dom: str
    console: list[str]

    def attr(self, element_id: str, name: str) -> str | None:
        tag = re.search(r"<[^>]*\bid=\"" + re.escape(element_id) + r"\"[^>]*>", self.dom)
        if tag is None:
            return None
        m = re.search(r"\b" + re.escape(name) + r"=\"([^\"]*)\"", tag.group(0))
        return None if m is None else m.group(1)

    def uncaught(self) -> list[str]:
        return [line for line in self.console if "Uncaught" in line]


class Browser:
    """Headless Chromium with WebGL through SwiftShader; no network, no GPU."""

    WIDTH, HEIGHT = 1200, 900

    def __init__(self, exe: str, tmp: Path):
        self.exe = exe
        self.tmp = tmp

    def _run(self, page: Path, extra: list[str], tag: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            self.exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--enable-logging=stderr", "--v=0",
            f"--user-data-dir={self.tmp / ('profile-' + tag)}", f"--window-size={self.WIDTH},{self.HEIGHT}",
            *extra, page.resolve().as_uri(),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)

    def open(self, page: Path) -> PageRun:
        from PIL import Image

        shot = self.tmp / f"{page.stem}.png"
        r1 = self._run(page, [f"--screenshot={shot}"], "shot")
        if not shot.exists():
            raise RuntimeError(f"chromium wrote no screenshot (rc {r1.returncode}): {r1.stderr[-2000:]}")
        r2 = self._run(page, ["--dump-dom", "--virtual-time-budget=2000"], "dom")
        console = [ln for ln in (r1.stderr + r2.stderr).splitlines() if ":CONSOLE" in ln]
        img = np.asarray(Image.open(shot).convert("RGB"))
        return PageRun(screenshot=img, dom=r2.stdout, console=console)


def make_ground_truth(n: int = 2):
    """Small constructed ground truth: the half-closed OpenHand, a 3.5 cm sphere pressed 1 mm into its palm.

    Not a synthesised grasp, but a real hand-object contact, enough to exercise the pipeline's plumbing.
    """
    import torch

    from contactkit.geometry.normals import vertex_normals
    from contactkit.hands import load_hand
    from contactkit.io.grasps import GraspSet
    from contactkit.objects import load_object

    hand = load_hand("openhand")
    pose = np.tile(hand.pca_mean.numpy()[None].astype(np.float64) * 0.6, (n, 1))
    go = np.zeros((n, 3))
    go[:, 2] = np.linspace(0.0, 0.3, n)  # different wrist rolls
    with torch.no_grad():
        v = hand(torch.as_tensor(go, dtype=torch.float32),
                 torch.as_tensor(pose, dtype=torch.float32)).vertices
    vn = vertex_normals(v.double(), hand.faces).numpy()
    palm = np.asarray(hand.annotations.contact_zones["palm"])
    centre = v.double().numpy()[:, palm].mean(axis=1)
    normal = vn[:, palm].mean(axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    obj = load_object("sphere:radius=0.035")
    return GraspSet.from_arrays(
        hand_model="openhand", side="right", global_orient=go, hand_pose=pose, objects=obj,
        betas=np.zeros((n, hand.num_betas)), transl=np.zeros((n, 3)),
        object_translation=centre + 0.034 * normal,
        num_betas=hand.num_betas,
    )


def parse_text_table(text: str) -> dict[str, dict[str, str]]:
    """Cells of :func:`~contactkit.report.tables.format_text_table` output: {row label: {header: cell}}, over
    every block (a row repeated in two blocks must have the same cells; checked)."""
    import re

    out: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for ln in text.splitlines():
        if not ln.strip() or set(ln.strip()) == {"-"} or ": not available: " in ln or "is better" in ln:
            continue
        cells = [c.strip() for c in re.split(r"\s{2,}", ln.strip())]
        if cells[0] == "method":
            header = cells
            continue
        assert header is not None, f"row before a header: {ln!r}"
        row = dict(zip(header[1:], cells[1:], strict=True))
        assert out.setdefault(cells[0], row) == row, f"row {cells[0]!r} differs between blocks"
    return out
