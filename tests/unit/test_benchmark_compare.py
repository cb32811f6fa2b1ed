"""`benchmarks.compare`: which rows moved the wrong way beyond the tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks.compare import compare, main, report


def doc(*rows: tuple[str, str, float, bool]) -> dict[str, Any]:
    return {
        "results": [
            {"group": g, "name": n, "ops_per_s": v, "lower_is_better": lower, "target": None}
            for g, n, v, lower in rows
        ]
    }


BASE = doc(
    ("domain", "lifecycles/s", 100_000, False),
    ("embedded", "p99 ack ms", 10.0, True),
    ("log", "read", 500_000, False),
)


def test_a_throughput_that_fell_beyond_the_tolerance_regressed() -> None:
    now = doc(
        ("domain", "lifecycles/s", 79_000, False),  # 21% lower
        ("embedded", "p99 ack ms", 10.0, True),
        ("log", "read", 401_000, False),  # 19.8% lower: within 20%
    )
    result = compare(BASE, now)
    assert [(c.name, round(c.worse_by, 2)) for c in result.regressions] == [("lifecycles/s", 0.21)]
    assert result.compared == 3


def test_a_latency_regresses_when_it_rises_and_not_when_it_falls() -> None:
    rose = compare(BASE, doc(("embedded", "p99 ack ms", 12.5, True)))
    fell = compare(BASE, doc(("embedded", "p99 ack ms", 2.0, True)))
    assert [c.name for c in rose.regressions] == ["p99 ack ms"]
    assert fell.regressions == []


def test_improvements_and_the_tolerance_boundary_are_not_regressions() -> None:
    now = doc(("domain", "lifecycles/s", 250_000, False), ("log", "read", 400_000, False))  # exactly 20%
    assert compare(BASE, now).regressions == []
    assert [c.name for c in compare(BASE, now, tolerance=0.1).regressions] == ["read"]


def test_regressions_come_worst_first_and_rows_of_one_side_are_listed() -> None:
    now = doc(
        ("domain", "lifecycles/s", 10_000, False),
        ("embedded", "p99 ack ms", 20.0, True),
        ("rest", "submissions/s", 2_000, False),
    )
    result = compare(BASE, now)
    assert [c.name for c in result.regressions] == ["p99 ack ms", "lifecycles/s"]  # +100%, then -90%
    assert result.only_baseline == [("log", "read")]
    assert result.only_current == [("rest", "submissions/s")]
    text = report(result, 0.2)
    assert "2 worse by more than 20%" in text
    assert "embedded / p99 ack ms" in text
    assert "100%" in text
    assert "1 baseline rows not in this run" in text
    assert "new: rest / submissions/s" in text


def test_a_zero_baseline_counts_any_rise_of_a_latency() -> None:
    base = doc(("x", "ms", 0.0, True), ("x", "ops", 0.0, False))
    result = compare(base, doc(("x", "ms", 1.0, True), ("x", "ops", 5.0, False)))
    assert [c.name for c in result.regressions] == ["ms"]
    assert "inf" in report(result, 0.2)


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        compare(BASE, BASE, tolerance=-0.1)


def test_the_command_reports_and_exits_zero_even_without_a_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = tmp_path / "now.json"
    current.write_text(json.dumps(doc(("domain", "lifecycles/s", 50_000, False))))
    baseline = tmp_path / "base.json"
    baseline.write_text(json.dumps(BASE))
    assert main([str(current), "--baseline", str(baseline)]) == 0
    assert "domain / lifecycles/s" in capsys.readouterr().out
    assert main([str(current), "--baseline", str(tmp_path / "missing.json")]) == 0
    assert "cannot compare" in capsys.readouterr().out
