"""The processor host on the real broker in the situations a broker restart leaves behind: a
service with only broadcast inputs (the bar builder), a catch-up that makes no progress, and a
static member fenced by another member with its instance id."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import TopicPartition
from meltica.log.kafka import KafkaLog
from meltica.processors.orders import OrderProcessor
from meltica.runtime.kafka_host import KafkaProcessorHost
from meltica.runtime.publisher import Publisher
from meltica.topics import BARS, ORDER_COMMANDS, QUOTES, TRADES, topic_specs
from meltica.topology import inputs_of
from tests.distributed.cluster import Cluster
from tests.waiting import wait_until

pytestmark = pytest.mark.distributed
PARTITIONS = 4


@pytest.fixture
def log(kafka_bootstrap: str) -> Iterator[KafkaLog]:
    log = KafkaLog(kafka_bootstrap, client_id="test-client", namespace=f"t{uuid.uuid4().hex[:10]}")
    for spec in topic_specs(PARTITIONS):
        log.create_topic(spec)
    yield log
    log.close()


def _host(log: KafkaLog, codec: Codec, **kw: object) -> KafkaProcessorHost:
    return KafkaProcessorHost(
        "orders",
        lambda p: OrderProcessor(),
        inputs_of("orders"),
        bootstrap=log.bootstrap,
        codec=codec,
        namespace=log.namespace,
        partitions=PARTITIONS,
        **kw,  # type: ignore[arg-type]
    )


def test_bars_service_runs_on_broadcast_inputs_only(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = Cluster(kafka_bootstrap, tmp_path)
    try:
        cluster.start("bars", "bars", "--health-port", "0")
        cluster.procs["bars"].poll()
        t0 = 1_700_000_000_000_000_000
        ticks = [
            TradeTick(
                "BTCUSDT.SIM", Decimal("100"), Decimal("1"), AggressorSide.BUYER, f"t{i}", t0 + i * 10**9
            )
            for i in range(0, 130, 5)
        ]
        cluster.publish(TRADES, ticks)
        cluster.publish(
            QUOTES, [QuoteTick("BTCUSDT.SIM", Decimal(99), Decimal(1), Decimal(101), Decimal(1), t0)]
        )

        def bars() -> int:
            return sum(cluster.log.end_offset(BARS, p) for p in range(PARTITIONS))

        def running() -> bool:
            assert cluster.procs["bars"].poll() is None, cluster.logs()
            return bars() > 0

        wait_until(running, 60, "a bar from the bars service")
        assert "assigned partitions [0, 1, 2, 3]" in cluster.logs()
        assert f"of group {cluster.namespace}.meltica-bars" in cluster.logs()  # names carry the namespace
    finally:
        cluster.close()


def test_a_catch_up_without_progress_starts_over_and_then_ends_the_process(
    log: KafkaLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meltica.runtime import kafka_host

    monkeypatch.setattr(kafka_host, "_RESEEK_S", 1.0)
    monkeypatch.setattr(kafka_host, "_STALLED_S", 30.0)  # far from the re-seek, on a busy CPU too
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    wedged = threading.Event()
    host = _host(log, codec, on_wedged=wedged.set)
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    try:
        wait_until(host.ready.is_set, 60, "ready")
        # ends the broadcast consumer cannot reach (as when it is stuck on a broker that went
        # away): the catch-up starts over on a new consumer, with the ends noted again ...
        before = host._broadcast
        monkeypatch.setattr(host._reader, "end_offset", lambda topic, partition: 10**9)
        host.ready.clear()
        host._catchup, host._at_end = {TopicPartition(QUOTES, 0): 10**9}, set()
        wait_until(lambda: host.recoveries >= 1, 25, "a new broadcast consumer")
        assert host._broadcast is not before  # counted once the new consumer is in place
        assert not wedged.is_set()
        # ... and when that makes no progress either, the watchdog ends the process
        wait_until(wedged.is_set, 90, "the watchdog")
        assert not host.ready.is_set()
    finally:
        stop.set()
        thread.join(timeout=60)


def test_a_fenced_static_member_joins_the_group_again(log: KafkaLog) -> None:
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    instance = f"{log.namespace}-orders"
    host = _host(log, codec, instance_id=instance)
    stop = threading.Event()
    thread = threading.Thread(target=host.run, args=(stop,))
    thread.start()
    try:
        wait_until(host.ready.is_set, 60, "ready")
        assert host.recoveries == 0
        # another member with the same group.instance.id: the broker fences the running one
        other = Consumer(
            {
                "bootstrap.servers": log.bootstrap,
                "group.id": host.wire_group,
                "group.instance.id": f"meltica-{instance}",
                "session.timeout.ms": 6000,
            }
        )
        other.subscribe([log.wire("orders.commands")])
        deadline = time.monotonic() + 30
        while host.recoveries == 0 and time.monotonic() < deadline:
            other.poll(0.2)
        assert host.recoveries >= 1, "the fenced member was not replaced"
        other.close()
        wait_until(host.ready.is_set, 60, "ready again as the group's member")
        assert thread.is_alive()
        before = host.stats.records
        subs = [
            SubmitOrder(
                OrderSpec(
                    f"F{i}", f"F{i}", f"ACC-{i}", "BTCUSDT.SIM", OrderSide.BUY, OrderType.MARKET, Decimal(1)
                ),
                1_000 + i,
            )
            for i in range(4)
        ]
        Publisher(log, codec).publish_many(ORDER_COMMANDS, subs)
        wait_until(lambda: host.stats.records >= before + 4, 60, "the commands processed after the rejoin")
    finally:
        stop.set()
        thread.join(timeout=60)
