"""Fixtures of the distributed tests: a cluster per test, the outcome of an uninterrupted run, and
a broker and a PostgreSQL server of a test's own for the tests that stop and start them."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.distributed.cluster import ROOT, Broker, Cluster, OwnPostgres, uninterrupted


@pytest.fixture
def cluster(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(kafka_bootstrap, tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def baseline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    return uninterrupted(Cluster(kafka_bootstrap, tmp_path_factory.mktemp("baseline")))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of the test's own, started; stopped afterwards."""
    installed = list((ROOT / ".cache" / "kafka").glob("libs-*/.complete"))
    if not installed and not IN_CI:
        pytest.skip(
            "scripts/kafka.sh has not installed a broker here (run it once: scripts/kafka.sh install)"
        )
    b = Broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b._script("stop")


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A second PostgreSQL cluster, started (its URL in `.url`), dropped afterwards."""
    manages = os.geteuid() == 0 or subprocess.run(["sudo", "-n", "true"], check=False).returncode == 0
    if not manages and not IN_CI:
        pytest.skip("scripts/postgres.sh needs root or sudo to make a PostgreSQL cluster of the test's own")
    pg = OwnPostgres()
    try:
        pg.url = pg.script("start")
        yield pg
    finally:
        pg.script("drop")
