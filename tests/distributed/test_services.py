"""Every processor as its own `meltica run` process on real Kafka: the outcome of an
uninterrupted run equals the outcome when services are SIGKILLed at random points and
restarted, when instances are added and removed (rebalances), and the read models in
Postgres follow."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from meltica.projections import migrations
from meltica.projections.projector import Projector
from meltica.topics import ORDER_COMMANDS
from tests.distributed.cluster import (
    ORDERS,
    PROCESSORS,
    WORKLOAD_SEED,
    Broker,
    Chaos,
    Cluster,
    OwnPostgres,
    assert_projects_through_a_postgres_restart,
    assert_rides_out_a_broker_restart,
    baseline_fills,
    read_models,
    run_workload,
)
from tests.soak import report as soak_report
from tests.soak import seeds
from tests.waiting import wait_until

pytestmark = pytest.mark.distributed


def test_uninterrupted_run_trades(baseline: Counter[str]) -> None:
    text_ = "\n".join(baseline)
    assert sum(baseline.values()) > 4 * ORDERS
    assert '"exec_type": "TRADE"' in text_
    assert '"exec_type": "CANCELED"' in text_
    assert '"exec_type": "REPLACED"' in text_
    assert all(n == 1 for n in baseline.values()), "an event was written twice"


@pytest.mark.parametrize("seed", seeds([1, 2, 3]))
def test_sigkill_any_service_loses_and_doubles_nothing(
    cluster: Cluster, baseline: Counter[str], seed: int
) -> None:
    started = time.monotonic()
    cluster.start_all()
    chaos = Chaos(cluster, seed)
    outcome = run_workload(cluster, chaos)
    missing, extra = baseline - outcome, outcome - baseline
    lost, doubled = sum(missing.values()), sum(extra.values())
    elapsed = time.monotonic() - started
    soak_report(
        "kafka",
        seed,
        lost=lost,
        doubled=doubled,
        diverged=int(outcome != baseline),
        kills=chaos.kills,
        seconds=elapsed,
    )
    assert chaos.kills >= 3
    report = f"{len(missing)} missing, {len(extra)} extra after {chaos.kills} kills\n" + "\n".join(
        list(missing)[:3] + list(extra)[:3]
    )
    assert not missing, report
    assert not extra, report


def test_rebalance_from_one_instance_to_two_and_back(cluster: Cluster, baseline: Counter[str]) -> None:
    cluster.start_all()
    cluster.setup_market()
    cluster.wait_ready()
    subs = cluster.submissions(WORKLOAD_SEED, ORDERS)
    half = len(subs) // 2
    cluster.publish(ORDER_COMMANDS, subs[:half], chunk=4, pause=0.1)
    for service in PROCESSORS:  # a second instance of every processor: partitions split
        cluster.start(service, f"{service}-2")
    cluster.publish(ORDER_COMMANDS, subs[half:], chunk=4, pause=0.1)
    cluster.wait_quiet()
    for service in ("risk", "orders"):  # the first instances leave: their partitions move back
        cluster.kill(service, signal.SIGTERM)
    cluster.publish(ORDER_COMMANDS, cluster.follow_ups(WORKLOAD_SEED, subs), chunk=4, pause=0.1)
    cluster.wait_quiet(timeout_s=240)
    assert cluster.outcome() == baseline
    logs = cluster.logs()
    assert "assigned partitions [0, 1]" in logs or "assigned partitions [2, 3]" in logs, logs
    # the instances that left saved their partitions; those taking them over started from there
    assert "after the snapshot at journal offset" in logs, logs


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """A database of its own on the test server (the read models are per database)."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"meltica_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reference_models(cluster: Cluster, tmp_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """The read models of a projection of the whole log, in-process, into SQLite."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    migrations.upgrade(url)
    engine = create_engine(url)
    Projector(cluster.log, cluster.codec, engine).catch_up()
    engine.dispose()
    return read_models(url)


def test_projector_service_keeps_postgres_read_models_under_crashes(
    cluster: Cluster, baseline: Counter[str], fresh_database: str, tmp_path: Path
) -> None:
    cluster.database_url = fresh_database
    cluster.start_all(projector=True)
    chaos = Chaos(cluster, 99, services=(*PROCESSORS, "projector"))
    assert run_workload(cluster, chaos) == baseline
    expected = _reference_models(cluster, tmp_path)
    # the projector settles after the processors, to what a clean projection of the same log gives
    wait_until(lambda: read_models(fresh_database) == expected, 120, "the read models settled", every=0.5)
    models = read_models(fresh_database)
    statuses = Counter(status for _, status, *_ in models["orders"])
    assert len(models["orders"]) == ORDERS
    assert statuses["FILLED"] > 0, statuses
    assert statuses["CANCELED"] > 0, statuses
    assert len(models["fills"]) == baseline_fills(baseline)
    assert models["positions"]
    assert models["balances"]


def test_projector_survives_a_postgres_restart(
    cluster: Cluster, baseline: Counter[str], own_postgres: OwnPostgres
) -> None:
    """On a PostgreSQL server of the test's own: the shared one serves the tests running alongside."""
    assert_projects_through_a_postgres_restart(cluster, own_postgres, baseline)


def test_services_ride_out_a_broker_restart(broker: Broker, baseline: Counter[str], tmp_path: Path) -> None:
    """On a broker of the test's own: the shared one serves the tests running alongside."""
    with closing(Cluster(broker.bootstrap, tmp_path / "cluster")) as cluster:
        assert_rides_out_a_broker_restart(cluster, broker, baseline)
