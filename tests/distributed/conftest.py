"""Fixtures of the distributed tests: a cluster per test, and the outcome of an uninterrupted run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed.cluster import Cluster, run_workload


@pytest.fixture
def cluster(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(kafka_bootstrap, tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def baseline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    c = Cluster(kafka_bootstrap, tmp_path_factory.mktemp("baseline"))
    try:
        c.start_all()
        outcome = run_workload(c)
        c.stop_all()
        return outcome
    finally:
        c.close()
