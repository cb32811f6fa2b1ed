"""Compare a benchmark run with a committed baseline: a report of regressions, not a CI gate.

    python -m benchmarks.compare                                  # latest run vs baseline.json
    python -m benchmarks.compare results.json --baseline benchmarks/baseline.json --tolerance 0.2

Rows are matched by (group, name). A row regressed when it moved the wrong way by more than the
tolerance (a fraction of the baseline value): lower for throughputs, higher for latencies
(`lower_is_better`). Prints a table of regressions, the rows new since the baseline and how many
baseline rows the run left out; the exit code is always 0.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TOLERANCE = 0.20
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Change:
    group: str
    name: str
    baseline: float
    current: float
    lower_is_better: bool

    @property
    def ratio(self) -> float:
        """current / baseline (inf when the baseline is 0 and the current value is not)."""
        if self.baseline == 0:
            return 1.0 if self.current == 0 else float("inf")
        return self.current / self.baseline

    @property
    def worse_by(self) -> float:
        """How much worse than the baseline, as a fraction of it (negative: better)."""
        change = self.ratio - 1.0
        return change if self.lower_is_better else -change


@dataclass(frozen=True, slots=True)
class Comparison:
    regressions: list[Change]
    compared: int
    only_baseline: list[Key]
    only_current: list[Key]


def _rows(doc: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    return {(r["group"], r["name"]): r for r in doc.get("results", [])}


def compare(
    baseline: dict[str, Any], current: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE
) -> Comparison:
    """The rows of `current` worse than `baseline` by more than `tolerance`, worst first."""
    if tolerance < 0:
        raise ValueError("tolerance is a non-negative fraction, e.g. 0.2 for 20%")
    old, new = _rows(baseline), _rows(current)
    changes = [
        Change(
            key[0],
            key[1],
            float(old[key]["ops_per_s"]),
            float(new[key]["ops_per_s"]),
            bool(new[key].get("lower_is_better", old[key].get("lower_is_better", False))),
        )
        for key in old.keys() & new.keys()
    ]
    regressions = sorted((c for c in changes if c.worse_by > tolerance), key=lambda c: -c.worse_by)
    return Comparison(
        regressions,
        len(changes),
        sorted(old.keys() - new.keys()),
        sorted(new.keys() - old.keys()),
    )


def report(result: Comparison, tolerance: float) -> str:
    """The comparison as text: a table of regressions, then the rows only one side has."""
    lines = [f"{result.compared} rows compared, {len(result.regressions)} worse by more than {tolerance:.0%}"]
    if result.regressions:
        width = max(len(f"{c.group} / {c.name}") for c in result.regressions)
        lines.append(f"{'benchmark':<{width}}  {'baseline':>14}  {'current':>14}  {'worse by':>9}")
        for c in result.regressions:
            worse = "inf" if c.worse_by == float("inf") else f"{c.worse_by:.0%}"
            lines.append(
                f"{c.group + ' / ' + c.name:<{width}}  {c.baseline:>14,.2f}  {c.current:>14,.2f}  {worse:>9}"
            )
    if result.only_baseline:  # a run of some suites (--only) leaves the others out
        lines.append(f"{len(result.only_baseline)} baseline rows not in this run")
    lines += [f"new: {group} / {name}" for group, name in result.only_current]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("current", nargs="?", type=Path, default=Path("benchmarks/results/latest.json"))
    parser.add_argument("--baseline", type=Path, default=Path("benchmarks/baseline.json"))
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="fraction, default 0.2")
    args = parser.parse_args(argv)
    try:
        baseline = json.loads(args.baseline.read_text())
        current = json.loads(args.current.read_text())
        print(report(compare(baseline, current, args.tolerance), args.tolerance))
    except (OSError, ValueError, KeyError) as e:  # a report, never a failure
        print(f"cannot compare {args.current} with {args.baseline}: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
