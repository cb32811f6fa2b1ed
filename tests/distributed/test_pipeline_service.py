"""The fused shape on real Kafka: `meltica run pipeline` hosts risk, orders, venue, portfolio and
strategies as one task per partition, one transaction per batch. It writes the same events as the
four services (content for content), and loses and doubles nothing when SIGKILLed at random points,
when its partitions move between instances, when the broker restarts, or when the read models'
PostgreSQL restarts under the projector."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from meltica.topics import ORDER_COMMANDS
from tests.distributed.cluster import (
    ORDERS,
    WORKLOAD_SEED,
    Broker,
    Chaos,
    Cluster,
    OwnPostgres,
    assert_projects_through_a_postgres_restart,
    assert_rides_out_a_broker_restart,
    run_workload,
    uninterrupted,
)
from tests.soak import seeds

pytestmark = pytest.mark.distributed
FUSED = ("pipeline",)


@pytest.fixture(scope="session")
def fused_baseline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    return uninterrupted(Cluster(kafka_bootstrap, tmp_path_factory.mktemp("fused"), processors=FUSED))


@pytest.fixture
def fused(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(kafka_bootstrap, tmp_path, processors=FUSED)
    try:
        yield c
    finally:
        c.close()


def contents(outcome: Counter[str]) -> Counter[str]:
    """The events without their envelopes (whose ids name the producing service)."""
    out: Counter[str] = Counter()
    for line, n in outcome.items():
        event = json.loads(line)
        event.pop("meta", None)
        out[json.dumps(event, sort_keys=True)] += n
    return out


def test_the_fused_service_writes_what_the_four_services_write(
    fused_baseline: Counter[str], baseline: Counter[str]
) -> None:
    assert sum(fused_baseline.values()) > 4 * ORDERS
    assert all(n == 1 for n in fused_baseline.values()), "an event was written twice"
    assert contents(fused_baseline) == contents(baseline)


@pytest.mark.parametrize("seed", seeds([1, 2]))
def test_sigkill_the_fused_service_loses_and_doubles_nothing(
    fused: Cluster, fused_baseline: Counter[str], seed: int
) -> None:
    fused.start_all()
    chaos = Chaos(fused, seed)
    outcome = run_workload(fused, chaos)
    missing, extra = fused_baseline - outcome, outcome - fused_baseline
    report = f"{len(missing)} missing, {len(extra)} extra after {chaos.kills} kills\n" + "\n".join(
        list(missing)[:3] + list(extra)[:3]
    )
    assert chaos.kills >= 3
    assert not missing, report
    assert not extra, report


def test_the_fused_service_rebalances_from_one_instance_to_two_and_back(
    fused: Cluster, fused_baseline: Counter[str]
) -> None:
    fused.start_all()
    fused.setup_market()
    fused.wait_ready()
    subs = fused.submissions(WORKLOAD_SEED, ORDERS)
    half = len(subs) // 2
    fused.publish(ORDER_COMMANDS, subs[:half], chunk=4, pause=0.1)
    fused.start("pipeline", "pipeline-2")  # partitions split between two instances
    fused.publish(ORDER_COMMANDS, subs[half:], chunk=4, pause=0.1)
    fused.wait_quiet()
    fused.kill("pipeline", signal.SIGTERM)  # the first leaves: its partitions move to the second
    fused.publish(ORDER_COMMANDS, fused.follow_ups(WORKLOAD_SEED, subs), chunk=4, pause=0.1)
    fused.wait_quiet(timeout_s=240)
    assert fused.outcome() == fused_baseline
    logs = fused.logs()
    assert "after the snapshot at journal offset" in logs, logs


def test_the_fused_service_rides_out_a_broker_restart(
    broker: Broker, fused_baseline: Counter[str], tmp_path: Path
) -> None:
    """On a broker of the test's own: the shared one serves the tests running alongside."""
    with closing(Cluster(broker.bootstrap, tmp_path / "cluster", processors=FUSED)) as cluster:
        assert_rides_out_a_broker_restart(cluster, broker, fused_baseline)


def test_the_projector_after_the_fused_service_survives_a_postgres_restart(
    fused: Cluster, fused_baseline: Counter[str], own_postgres: OwnPostgres
) -> None:
    """On a PostgreSQL server of the test's own: the shared one serves the tests running alongside."""
    assert_projects_through_a_postgres_restart(fused, own_postgres, fused_baseline)
