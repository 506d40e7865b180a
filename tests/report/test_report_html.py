"""The report page: self-contained (no network loads), payload faithful to the samples, clear errors."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from contactkit.errors import ShapeError
from contactkit.report.colors import to_uint8, vertex_colors
from contactkit.report.data import MeshLayer, ReportSample
from contactkit.report.html import build_payload, render_report, render_report_html
from contactkit.report.plots import standard_plots


def _payload(html_text: str) -> dict:
    m = re.search(r"<script type='application/json' id='ck-data'>(.*?)</script>", html_text, re.S)
    assert m is not None
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_report_loads_nothing_from_the_network(samples, results, tmp_path: Path):
    page = render_report(samples, results, standard_plots(results), tmp_path / "r.html")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text
    assert "//cdn" not in text
    # every src/href is inline (data URI) or absent
    for attr in re.findall(r"\b(?:src|href)\s*=\s*['\"]([^'\"]*)", text):
        assert attr.startswith("data:"), attr
    assert "<script src" not in text
    assert text.count("data:image/svg+xml;base64,") == 3


def test_payload_round_trips_geometry_and_maps(samples):
    p = build_payload(samples)
    assert len(p["samples"]) == len(samples)
    # the hand topology is shared by three layers and two samples, the object's by two: two face arrays
    assert len(p["faces"]) == 2
    for s_in, s_out in zip(samples, p["samples"], strict=True):
        for layer, entry in zip(s_in.layers, s_out["layers"], strict=True):
            v = np.frombuffer(base64.b64decode(entry["vertices"]), dtype="<f4").reshape(-1, 3)
            np.testing.assert_allclose(v, layer.vertices, atol=1e-7)
            f = np.frombuffer(base64.b64decode(p["faces"][entry["faces"]]), dtype="<u4").reshape(-1, 3)
            np.testing.assert_array_equal(f, layer.faces)
            cols = np.frombuffer(base64.b64decode(entry["colors"]), dtype=np.uint8).reshape(-1, 3)
            np.testing.assert_array_equal(cols, to_uint8(vertex_colors(len(v), layer.base_color)))
            if layer.penetrating is not None:
                pen = np.frombuffer(base64.b64decode(entry["penetrating"]), dtype="<u4")
                np.testing.assert_array_equal(pen, np.flatnonzero(layer.penetrating))
                assert pen.size > 0
            else:
                assert "penetrating" not in entry
            assert ("contact_colors" in entry) == (layer.contact is not None)
            assert entry["visible"] == layer.visible


def test_contact_colours_follow_the_contact_map(samples):
    layer = samples[0].layers[3]
    assert layer.contact is not None
    entry = build_payload(samples)["samples"][0]["layers"][3]
    cols = np.frombuffer(base64.b64decode(entry["contact_colors"]), dtype=np.uint8).reshape(-1, 3)
    plain = np.frombuffer(base64.b64decode(entry["colors"]), dtype=np.uint8).reshape(-1, 3)
    no_contact = layer.contact < 0.02
    full = layer.contact > 0.99
    assert no_contact.any() and full.any()
    np.testing.assert_array_equal(cols[no_contact], plain[no_contact])
    # full contact is the dark red end of the heat map
    assert np.all(cols[full][:, 0] > 150) and np.all(cols[full][:, 1] < 30)


def test_script_and_payload_cannot_close_the_script_element(tmp_path: Path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float) * 0.01
    s = ReportSample("</script><b>x", [MeshLayer("</script>", "object", v, [[0, 1, 2]])])
    text = render_report_html([s])
    assert text.count("</script>") == 2  # the JSON block and the viewer script, nothing else
    assert _payload(text)["samples"][0]["title"] == "</script><b>x"


def test_results_table_in_page(samples, results):
    from contactkit.report.colors import css_rgb, row_colors
    from contactkit.report.tables import format_value, metric_decimals

    text = render_report_html(samples, results)
    assert "cpf — not available" in text and "cpf: not available: no estimator for this hand" in text
    row = results.row("contactopt")
    mean = format_value(row.metrics["mpjpe_mm"].mean, metric_decimals(results)["mpjpe_mm"])
    assert f">{mean} ± " in text
    assert "0.123" in text  # time per grasp
    # two blocks, in-the-wild first; every row says where its targets came from
    wild = text.index("data-block='in the wild'")
    oracle = text.index("data-block='oracle'")
    assert wild < oracle < text.index("contactopt (oracle)")
    assert "learned (DeepContactEstimator)" in text and "oracle (reference grasps)" in text
    # the table's swatches are the rows' colours (the ones the plots and the 3D view use)
    colors = row_colors([r.method for r in results.rows if not r.error])
    for method, rgb in colors.items():
        assert f"data-method='{method}' style='background: {css_rgb(rgb)}'" in text
    # a "how to read this" line opens every section
    assert text.count("class='ck-how'") >= 5


def test_bad_input_is_named():
    v = np.zeros((3, 3))
    with pytest.raises(ShapeError, match=r"vertices of layer 'h': expected shape \(V, 3\)"):
        MeshLayer("h", "hand", np.zeros((3, 2)), [[0, 1, 2]])
    with pytest.raises(ShapeError, match=r"faces of layer 'h': expected indices in \[0, 3\)"):
        MeshLayer("h", "hand", v, [[0, 1, 3]])
    with pytest.raises(ShapeError, match=r"contact of layer 'h': expected shape \(3,\)"):
        MeshLayer("h", "hand", v, [[0, 1, 2]], contact=np.zeros(4))
    with pytest.raises(ShapeError, match="role: expected one of"):
        MeshLayer("h", "elbow", v, [[0, 1, 2]])
    with pytest.raises(ShapeError, match="expected finite values"):
        MeshLayer("h", "hand", np.full((3, 3), np.nan), [[0, 1, 2]])
    with pytest.raises(ShapeError, match="samples: expected at least one"):
        build_payload([])
