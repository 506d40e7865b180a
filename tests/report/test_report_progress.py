"""Progress lines: smoothed rates, rate-limited step reports, stage durations and the heartbeat."""

from __future__ import annotations

import time

import pytest

from contactkit.report.progress import ProgressLog, SmoothedRate, format_duration


def test_smoothed_rate_is_an_exponential_moving_average():
    r = SmoothedRate(alpha=0.5)
    assert r.update(0, 0.0) is None
    assert r.update(10, 1.0) == pytest.approx(10.0)
    # one slow interval (1 unit in 1 s) moves the average halfway, not all the way
    assert r.update(11, 2.0) == pytest.approx(5.5)
    assert r.update(21, 3.0) == pytest.approx(7.75)
    with pytest.raises(ValueError, match="alpha"):
        SmoothedRate(alpha=0.0)


def test_steps_are_rate_limited_and_the_last_is_always_reported():
    now = [0.0]
    lines: list[str] = []
    p = ProgressLog(lines.append, interval_s=4.0, clock=lambda: now[0])
    with p.stage("refining"):
        for step in range(1, 11):
            now[0] += 1.0
            p.step(step, 10)
        now[0] += 65.0
    steps = [ln for ln in lines if "/10 steps" in ln]
    # at 1 s (first), 5 s, 9 s, and the last step at 10 s
    assert [ln.split(": ")[1].split(" ")[0] for ln in steps] == ["1/10", "5/10", "9/10", "10/10"]
    assert "1 steps/s" in steps[1] and "about 5 s left" in steps[1]
    assert lines[0] == "refining" and lines[-1] == "refining: done in 1 min 15 s"
    with p.stage("loading") as end:
        now[0] += 2.0
        end.outcome = "not available"
    assert lines[-1] == "loading: not available after 2 s"


def test_heartbeat_breaks_every_silence():
    lines: list[str] = []
    with ProgressLog(lines.append, heartbeat_s=0.2) as p, p.stage("measuring"):
        time.sleep(0.9)
    beats = [ln for ln in lines if ln.startswith("  ... still measuring")]
    assert len(beats) >= 2, lines


def test_format_duration():
    assert format_duration(4.4) == "4 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3725) == "1 h 02 min"
