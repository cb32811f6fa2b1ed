"""Seeds of the SIGKILL crash suites and their per-seed results, for `scripts/soak.sh`.

`MELTICA_SOAK_SEEDS` ("1-100", "3,7,9" or a mix) replaces a suite's default seeds; with
`MELTICA_SOAK_REPORT` set, each seed appends one JSON line (suite, seed, lost, doubled,
diverged, kills, seconds) to that file, which `soak.sh` sums up.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

SEEDS_ENV = "MELTICA_SOAK_SEEDS"
REPORT_ENV = "MELTICA_SOAK_REPORT"


def parse_seeds(text: str) -> list[int]:
    """ "1-3,7" -> [1, 2, 3, 7]."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def seeds(default: Sequence[int]) -> list[int]:
    """The seeds to run: `MELTICA_SOAK_SEEDS` if set, else `default` (what CI runs)."""
    text = os.environ.get(SEEDS_ENV, "").strip()
    return parse_seeds(text) if text else list(default)


def compare(expected: Iterable[Hashable], got: Iterable[Hashable]) -> tuple[int, int]:
    """(lost, doubled): how many expected items are missing, how many are extra (as multisets)."""
    want, have = Counter(expected), Counter(got)
    return sum((want - have).values()), sum((have - want).values())


def report(
    suite: str, seed: int, *, lost: int, doubled: int, diverged: int, kills: int, seconds: float
) -> None:
    """Append this seed's result to `MELTICA_SOAK_REPORT`, if set."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    line = {
        "suite": suite,
        "seed": seed,
        "lost": lost,
        "doubled": doubled,
        "diverged": diverged,
        "kills": kills,
        "seconds": round(seconds, 1),
    }
    with Path(path).open("a") as f:
        f.write(json.dumps(line) + "\n")
