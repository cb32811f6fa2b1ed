"""The Kafka service host on a real broker reports each transaction's commit latency to its metrics
(`meltica_processor_commit_latency_seconds{service}`), one observation per committed transaction,
and each input's step (`meltica_processor_step_latency_seconds{service}`), one per record applied."""

from __future__ import annotations

import random
import threading
import uuid

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from meltica.clock import SimulatedClock
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.kafka import KafkaLog
from meltica.runtime.publisher import Publisher
from meltica.runtime.service_metrics import ServiceMetrics
from meltica.topics import topic_specs
from tests.e2e.stack import BTC
from tests.integration.test_kafka_host import PARTITIONS, host_on, settle
from tests.unit.test_partition_snapshots import traffic

pytestmark = pytest.mark.kafka


def test_each_commit_and_each_step_of_the_host_is_timed(kafka_bootstrap: str) -> None:
    namespace = f"m{uuid.uuid4().hex[:8]}"
    log = KafkaLog(kafka_bootstrap, client_id="metrics-test", namespace=namespace)
    for spec in topic_specs(PARTITIONS):
        log.create_topic(spec)
    codec = Codec(registry=EmbeddedSchemaRegistry(log))
    publisher = Publisher(log, codec, SimulatedClock(0))
    publisher.define([BTC])
    host = host_on(kafka_bootstrap, namespace, codec, max_batch=20)
    reader = InMemoryMetricReader()
    ServiceMetrics("portfolio", host, None, MeterProvider(metric_readers=[reader]).get_meter("t"))
    stop = threading.Event()
    runner = threading.Thread(target=host.run, args=(stop,))
    runner.start()
    try:
        traffic(publisher, random.Random(3), 100, 0)
        settle(host)
    finally:
        stop.set()
        runner.join(30)
    data = reader.get_metrics_data()
    assert data is not None

    def histogram(name: str) -> HistogramDataPoint:
        [point] = [
            p
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
            for p in m.data.data_points
            if isinstance(p, HistogramDataPoint)
        ]
        assert dict(point.attributes or {}) == {"service": "portfolio"}
        return point

    commit = histogram("meltica_processor_commit_latency_seconds")
    assert host.stats.transactions >= 5  # 100 records in batches of at most 20
    assert commit.count == host.stats.transactions
    assert 0 < commit.sum < 30 * commit.count  # seconds, each within the transaction timeout
    step = histogram("meltica_processor_step_latency_seconds")
    assert step.count == host.stats.records >= 100  # the one host owns every partition: all applied
    assert 0 < step.sum < step.count  # seconds: each step well under one
    log.close()
