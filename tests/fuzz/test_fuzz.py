"""Seeded fuzz: no exception other than contactkit's own errors escapes the public API and the CLI.

A few hundred malformed inputs of issue 13's classes (see ``cases.py``; ``scripts/fuzz_boundaries.py`` runs
thousands): each must be answered with a contactkit error (a non-zero CLI exit with a one-line message) or,
when it is implausible rather than invalid, a warning — never a traceback, a silent acceptance or a hang.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import classify, cli_cases, grasp_cases, mesh_cases


@pytest.fixture(scope="module")
def hand():
    from contactkit.hands import load_hand

    return load_hand("openhand")


@pytest.mark.parametrize("kind", ["mesh", "grasps", "cli"])
def test_malformed_inputs_get_contactkit_errors_or_warnings(kind, hand, tmp_path, monkeypatch):
    monkeypatch.setenv("CONTACTKIT_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng({"mesh": 11, "grasps": 12, "cli": 13}[kind])
    stream = {
        "mesh": lambda: mesh_cases(rng, tmp_path, 120),
        "grasps": lambda: grasp_cases(rng, tmp_path, 120, hand),
        "cli": lambda: cli_cases(rng, tmp_path, 160),
    }[kind]()
    problems = []
    outcomes = []
    for case in stream:
        outcome, detail = classify(case, timeout_s=60.0)  # generous: the machine may be loaded
        outcomes.append(outcome)
        if outcome not in ("error", "warning"):
            problems.append(f"[{outcome}] {case.label}: {detail}")
    assert not problems, "\n".join(problems[:20])
    assert outcomes.count("error") > len(outcomes) // 2  # the harness really produced invalid input
