"""Every processor as its own `meltica run` process on real Kafka: the outcome of an
uninterrupted run equals the outcome when services are SIGKILLed at random points and
restarted, when instances are added and removed (rebalances), and the read models in
Postgres follow."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from meltica.projections import migrations, tables
from meltica.projections.projector import Projector
from meltica.topics import ORDER_COMMANDS
from tests.conftest import IN_CI
from tests.distributed.cluster import ORDERS, PROCESSORS, WORKLOAD_SEED, Chaos, Cluster, run_workload
from tests.soak import report as soak_report
from tests.soak import seeds

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[2]


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


def _read_models(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        orders = conn.execute(
            select(
                tables.orders.c.order_id,
                tables.orders.c.status,
                tables.orders.c.filled_qty,
                tables.orders.c.quantity,
                tables.orders.c.price,
            ).order_by(tables.orders.c.order_id)
        ).all()
        fills = conn.execute(
            select(tables.fills.c.trade_id, tables.fills.c.quantity, tables.fills.c.price).order_by(
                tables.fills.c.trade_id
            )
        ).all()
        positions = conn.execute(
            select(
                tables.positions.c.account_id, tables.positions.c.instrument_id, tables.positions.c.quantity
            ).order_by(tables.positions.c.account_id, tables.positions.c.instrument_id)
        ).all()
        balances = conn.execute(
            select(tables.balances.c.account_id, tables.balances.c.asset, tables.balances.c.total).order_by(
                tables.balances.c.account_id, tables.balances.c.asset
            )
        ).all()
    engine.dispose()
    return {
        "orders": [tuple(r) for r in orders],
        "fills": [tuple(r) for r in fills],
        "positions": [tuple(r) for r in positions],
        "balances": [tuple(r) for r in balances],
    }


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
    return _read_models(url)


def test_projector_service_keeps_postgres_read_models_under_crashes(
    cluster: Cluster, baseline: Counter[str], fresh_database: str, tmp_path: Path
) -> None:
    cluster.database_url = fresh_database
    cluster.start_all(projector=True)
    chaos = Chaos(cluster, 99, services=(*PROCESSORS, "projector"))
    assert run_workload(cluster, chaos) == baseline
    expected = _reference_models(cluster, tmp_path)
    deadline = time.monotonic() + 120
    models = _read_models(fresh_database)
    while models != expected and time.monotonic() < deadline:  # the projector settles after the processors
        time.sleep(0.5)
        models = _read_models(fresh_database)
    assert models == expected  # what a clean projection of the same log gives
    statuses = Counter(status for _, status, *_ in models["orders"])
    assert len(models["orders"]) == ORDERS
    assert statuses["FILLED"] > 0, statuses
    assert statuses["CANCELED"] > 0, statuses
    assert len(models["fills"]) == baseline_fills(baseline)
    assert models["positions"]
    assert models["balances"]


def baseline_fills(baseline: Counter[str]) -> int:
    return sum(1 for k in baseline if '"venue.reports"' in k and '"exec_type": "TRADE"' in k)


def test_projector_survives_a_postgres_restart(
    cluster: Cluster, baseline: Counter[str], fresh_database: str
) -> None:
    status = subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "status"], check=False)
    if status.returncode != 0 and not IN_CI:
        pytest.skip("this PostgreSQL is not the one scripts/postgres.sh manages")
    cluster.database_url = fresh_database
    cluster.start_all(projector=True)
    cluster.setup_market()
    cluster.wait_ready()
    subs = cluster.submissions(WORKLOAD_SEED, ORDERS)
    cluster.publish(ORDER_COMMANDS, subs[: ORDERS // 2], chunk=4, pause=0.1)
    postgres("stop")
    cluster.publish(ORDER_COMMANDS, subs[ORDERS // 2 :], chunk=4, pause=0.1)
    time.sleep(2)
    postgres("start")
    cluster.wait_quiet()
    cluster.publish(ORDER_COMMANDS, cluster.follow_ups(WORKLOAD_SEED, subs), chunk=4, pause=0.1)
    cluster.wait_quiet()
    assert cluster.outcome() == baseline
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        models = _read_models(fresh_database)
        fills = len(models["fills"])
        if len(models["orders"]) == ORDERS and fills == baseline_fills(baseline):
            break
        time.sleep(1)
    assert len(models["orders"]) == ORDERS
    assert fills == baseline_fills(baseline)
    assert "retrying" in cluster.logs()  # the projector saw the database go and come back


def postgres(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), action], check=True, capture_output=True)


def test_services_ride_out_a_broker_restart(cluster: Cluster, baseline: Counter[str]) -> None:
    if not (ROOT / ".cache" / "kafka" / "run" / "kafka.pid").exists() and not IN_CI:
        pytest.skip("this broker is not the one scripts/kafka.sh manages")
    cluster.start_all()
    cluster.setup_market()
    cluster.wait_ready()
    subs = cluster.submissions(WORKLOAD_SEED, ORDERS)
    cluster.publish(ORDER_COMMANDS, subs[: ORDERS // 2], chunk=4, pause=0.1)
    kafka("stop")
    assert kafka("status", check=False) != 0, "the broker still answers after stop: nothing restarts"
    time.sleep(3)
    kafka("start")
    cluster.publish(ORDER_COMMANDS, subs[ORDERS // 2 :], chunk=4, pause=0.1)
    deadline = time.monotonic() + 120
    revived: list[str] = []
    while time.monotonic() < deadline:  # a service that gave up while the broker was away comes back
        revived += cluster.revive()
        try:
            cluster.wait_quiet(timeout_s=20)
            break
        except AssertionError:
            continue
    cluster.publish(ORDER_COMMANDS, cluster.follow_ups(WORKLOAD_SEED, subs), chunk=4, pause=0.1)
    cluster.wait_quiet()
    outcome = cluster.outcome()
    missing, extra = baseline - outcome, outcome - baseline
    assert not missing, f"{len(missing)} missing (revived: {revived})"
    assert not extra, f"{len(extra)} extra (revived: {revived})"


def kafka(action: str, *, check: bool = True) -> int:
    """Run `scripts/kafka.sh action`; its exit code."""
    script = str(ROOT / "scripts" / "kafka.sh")
    return subprocess.run(["bash", script, action], check=check, capture_output=True).returncode
