"""The Kafka service host on a real broker.

Snapshots name exactly the journal they cover, so a partition restored from its newest snapshot
plus the journal after it equals the partition rebuilt from the whole journal. (Commit markers
land after `commit_transaction` returns: the end offset read just after a commit can still stop
short of the entry just written.) A transactional call wedged past every timeout ends the
process through the watchdog."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import pytest

from meltica.clock import SimulatedClock
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import TopicPartition
from meltica.log.kafka import KafkaLog
from meltica.processors.portfolio import PortfolioProcessor
from meltica.runtime.kafka_host import KafkaProcessorHost
from meltica.runtime.partitions import PartitionedProcessor
from meltica.runtime.publisher import Publisher
from meltica.topics import topic_specs
from meltica.topology import inputs_of
from tests.e2e.stack import BTC
from tests.state import canonical
from tests.unit.test_partition_snapshots import traffic
from tests.waiting import records_from

pytestmark = pytest.mark.kafka
PARTITIONS = 2


def make(partition: int) -> PortfolioProcessor:
    return PortfolioProcessor()


def host_on(bootstrap: str, namespace: str, codec: Codec, **kw: Any) -> KafkaProcessorHost:
    return KafkaProcessorHost(
        "portfolio",
        make,
        inputs_of("portfolio"),
        bootstrap=bootstrap,
        codec=codec,
        namespace=namespace,
        partitions=PARTITIONS,
        clock=SimulatedClock(0),
        **kw,
    )


def unapplied(host: KafkaProcessorHost) -> int:
    """Records of the host's inputs it has not applied: keyed ones past its group's committed
    offsets, broadcast ones past any partition state's position."""
    log = host._reader
    left = 0
    for topic in host.keyed:
        for p in range(log.partitions(topic)):
            left += records_from(log, topic, p, log.committed(host.group, TopicPartition(topic, p)) or 0)
    for state in list(host.states.values()):
        for topic in host.broadcast:
            for p in range(log.partitions(topic)):
                left += records_from(log, topic, p, state.broadcast_pos.get(TopicPartition(topic, p), 0))
    return left


def settle(host: KafkaProcessorHost, quiet_s: float = 1.5, timeout_s: float = 120) -> None:
    """Wait until the host has applied everything published: nothing left to apply, and no new
    record applied for `quiet_s` (a stalled host is not mistaken for a settled one)."""
    deadline = time.monotonic() + timeout_s
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if host.stats.records != seen:
            seen, since = host.stats.records, time.monotonic()
        elif host.ready.is_set() and time.monotonic() - since > quiet_s and unapplied(host) == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"the host did not settle: {host.stats}, {unapplied(host)} records unapplied")


def test_snapshots_name_the_journal_they_cover(kafka_bootstrap: str) -> None:
    namespace = f"s{uuid.uuid4().hex[:8]}"
    log = KafkaLog(kafka_bootstrap, client_id="snapshot-test", namespace=namespace)
    for spec in topic_specs(PARTITIONS):
        log.create_topic(spec)
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    publisher = Publisher(log, codec, SimulatedClock(0))
    publisher.define([BTC])
    # many small transactions, a snapshot right after many of them
    host = host_on(kafka_bootstrap, namespace, codec, max_batch=40, snapshot_every=25)
    stop = threading.Event()
    runner = threading.Thread(target=host.run, args=(stop,))
    runner.start()
    try:
        rng = random.Random(5)
        for round_ in range(4):
            traffic(publisher, rng, 120, round_ * 1000)
            settle(host)
        live = {p: canonical(s.processor) for p, s in host.states.items()}
    finally:
        stop.set()
        runner.join(30)
    assert host.stats.snapshots >= 4, host.stats
    assert sorted(live) == list(range(PARTITIONS))

    for partition in range(PARTITIONS):
        core = PartitionedProcessor(
            "portfolio", make, inputs_of("portfolio"), codec=codec, reader=log, clock=SimulatedClock(0)
        )
        found = core.latest_snapshot(partition)
        assert found is not None
        journal = log.read(core.journal, partition, 0, 100_000)
        # the host left cleanly, saving every partition after its last journal entry
        assert found[0] == journal[-1].offset + 1
        from_snapshot = core.restore(partition)
        core.latest_snapshot = lambda partition: None  # type: ignore[method-assign]
        from_journal = core.restore(partition)
        assert canonical(from_snapshot.processor) == live[partition] == canonical(from_journal.processor)
        assert from_snapshot.broadcast_pos == from_journal.broadcast_pos


def test_a_wedged_transactional_call_ends_the_process(kafka_bootstrap: str) -> None:
    namespace = f"w{uuid.uuid4().hex[:8]}"
    log = KafkaLog(kafka_bootstrap, client_id="watchdog-test", namespace=namespace)
    for spec in topic_specs(PARTITIONS):
        log.create_topic(spec)
    wedged = threading.Event()
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    host = host_on(kafka_bootstrap, namespace, codec, on_wedged=wedged.set)
    stop = threading.Event()
    runner = threading.Thread(target=host.run, args=(stop,))
    runner.start()
    try:
        assert not wedged.wait(2.5), "nothing is blocked yet"
        host._blocked_since = time.monotonic() - 3600  # as if a call had hung for an hour
        assert wedged.wait(60), "the watchdog did not act"
    finally:
        stop.set()
        runner.join(30)
