"""`meltica_consumer_lag_records` on a real broker: the log end minus the group's committed offset,
per partition (a partition the group never committed counts from its start)."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from meltica.config import Settings
from meltica.runtime.kafka_host import HostStats
from meltica.runtime.service_metrics import kafka_lag, watch_processor
from tests.unit.test_service_metrics import points
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def test_lag_is_the_end_minus_the_committed_offset(kafka_bootstrap: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"meltica-lag-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(10):
        producer.produce(topic, b"x", partition=0)
        if i < 4:
            producer.produce(topic, b"y", partition=1)
    assert producer.flush(30) == 0

    committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    try:
        committer.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    finally:
        committer.close()

    lag = kafka_lag(kafka_bootstrap, group, [topic])
    assert lag() == {(topic, 0): 3, (topic, 1): 4}
    admin.delete_topics([topic])


def test_a_processor_service_exports_its_groups_lag_on_its_namespaced_inputs(kafka_bootstrap: str) -> None:
    namespace, topic = f"lagns{uuid.uuid4().hex[:6]}", "orders.commands"
    wire, group = f"{namespace}.{topic}", f"{namespace}.meltica-risk"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(wire, num_partitions=1, replication_factor=1)])[wire].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(5):
        producer.produce(wire, b"x", partition=0)
    assert producer.flush(30) == 0
    host = SimpleNamespace(
        stats=HostStats(),
        ready=threading.Event(),
        core=SimpleNamespace(observers=[]),
        states={},
        wire_group=group,
        keyed=[topic],
    )
    reader = InMemoryMetricReader()
    settings = Settings(kafka_bootstrap=kafka_bootstrap, namespace=namespace)
    watch_processor("risk", host, settings, MeterProvider(metric_readers=[reader]).get_meter("t"))
    # measured off the scrape, every few seconds: a scrape shows it once the first measure is in
    wanted = [({"service": "risk", "topic": wire, "partition": "0"}, 5)]
    wait_until(lambda: points(reader).get("meltica_consumer_lag_records") == wanted, 60, "the lag", every=0.5)
    admin.delete_topics([wire])
