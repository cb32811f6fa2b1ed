"""The distributed shape on real Kafka: risk, orders, venue and portfolio as four `meltica run`
processes with transactions (split), and as the one fused `meltica run pipeline` service. Sustained
orders/s end to end and submit->ack latency at a fixed offered load, beside the anchor of the same
run: a bare confluent-kafka transactional hop (`benchmarks.kafka_anchor`), and Meltica's
submit->ack as a ratio of it. Needs MELTICA_KAFKA_BOOTSTRAP."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from tests.distributed.cluster import PARTITIONS, PROCESSORS, Cluster

from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS

ACKED = "OrderAcknowledged"


class AckWatcher:
    """Notes when each order's acknowledgement becomes visible (read_committed) in orders.events."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **cluster.log.connection,  # bootstrap and any SASL/TLS settings
                "group.id": f"bench-{cluster.namespace}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 1,
                "fetch.min.bytes": 1,
            }
        )
        topic = cluster.log.wire(ORDER_EVENTS)
        self._consumer.assign(
            [TopicPartition(topic, p, cluster.log.end_offset(ORDER_EVENTS, p)) for p in range(PARTITIONS)]
        )
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        catalog = self.cluster.codec.catalog
        while not self._stop.is_set():
            for msg in self._consumer.consume(1000, timeout=0.01):
                if msg.error():
                    continue
                now = time.perf_counter()
                value = msg.value() or b""
                entry = catalog.by_fingerprint(value[2:10])
                if entry is not None and entry.short_name == ACKED:
                    _name, fields = self.cluster.codec.decode(value)
                    self.seen.setdefault(fields["order_id"], now)

    def wait_for(self, n: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


FUSED = ("pipeline",)


def _started(tmp: str, faust: tuple[str, ...], processors: tuple[str, ...] = PROCESSORS) -> Cluster:
    cluster = Cluster(os.environ["MELTICA_KAFKA_BOOTSTRAP"], Path(tmp), processors=processors)
    cluster.start_all(faust=faust)
    cluster.setup_market()
    cluster.wait_ready()
    return cluster


def throughput(
    n: int = 6000, faust: tuple[str, ...] = (), processors: tuple[str, ...] = PROCESSORS
) -> dict[str, float]:
    """Orders submitted in bulk; orders/s from the first submission to the last acknowledgement."""
    with tempfile.TemporaryDirectory() as tmp:
        cluster = _started(tmp, faust, processors)
        try:
            watcher = AckWatcher(cluster)
            orders = cluster.submissions(1, n)
            began = time.perf_counter()
            for i in range(0, n, 500):
                cluster.publisher.publish_many(ORDER_COMMANDS, orders[i : i + 500])
            watcher.wait_for(n)
            elapsed = max(watcher.seen.values()) - began
            done = len(watcher.seen)
            watcher.close()
            cluster.stop_all()
        finally:
            cluster.close()
    return {"orders_per_s": done / elapsed, "acknowledged": done}


def latency(
    rate: int = 500,
    seconds: float = 8.0,
    faust: tuple[str, ...] = (),
    processors: tuple[str, ...] = PROCESSORS,
) -> dict[str, float]:
    """Orders one by one at `rate`/s; submit->ack latency percentiles."""
    with tempfile.TemporaryDirectory() as tmp:
        cluster = _started(tmp, faust, processors)
        try:
            watcher = AckWatcher(cluster)
            total = int(rate * seconds)
            orders = cluster.submissions(2, total)
            sent: dict[str, float] = {}
            began = time.perf_counter()
            for i, cmd in enumerate(orders):
                due = began + i / rate
                while (wait := due - time.perf_counter()) > 0:
                    time.sleep(min(wait, 0.001))
                sent[cmd.order.order_id] = time.perf_counter()
                cluster.publisher.publish(ORDER_COMMANDS, cmd)
            achieved = total / (time.perf_counter() - began)
            watcher.wait_for(total, timeout_s=60)
            watcher.close()
            cluster.stop_all()
        finally:
            cluster.close()
    lat = sorted((watcher.seen[o] - t) * 1000 for o, t in sent.items() if o in watcher.seen)
    q = statistics.quantiles(lat, n=1000, method="inclusive")
    return {"offered_per_s": achieved, "p50_ms": q[499], "p99_ms": q[989], "count": len(lat)}


def results(faust: bool = True) -> list[Any]:
    """Split and fused shapes on the confluent-kafka host, the bare hop and the ratios to it; the
    faust host unless `faust` is False (the `services-eos` suite)."""
    from benchmarks.kafka_anchor import one_hop
    from benchmarks.run import Result

    bootstrap = os.environ.get("MELTICA_KAFKA_BOOTSTRAP")
    if not bootstrap:
        return []
    out = []
    anchor = one_hop(bootstrap)
    group = "bare confluent-kafka EOS loop (1 hop, 4 partitions)"
    out += [
        Result(group, "consume->produce->commit p50 ms @500/s", anchor["p50_ms"], lower_is_better=True),
        Result(group, "consume->produce->commit p99 ms @500/s", anchor["p99_ms"], lower_is_better=True),
    ]
    hosts: dict[str, tuple[tuple[str, ...], tuple[str, ...], float]] = {
        "confluent-kafka host, split (4 services)": (PROCESSORS, (), 2000),
        "confluent-kafka host, fused (meltica run pipeline)": (FUSED, (), 3000),
    }
    if faust:
        hosts["faust host (risk, orders, portfolio)"] = (PROCESSORS, ("risk", "orders", "portfolio"), 2000)
    for host, (processors, on_faust, target) in hosts.items():
        group = f"services on Kafka, {host}"
        t = throughput(faust=on_faust, processors=processors)
        lat = latency(faust=on_faust, processors=processors)
        out += [
            Result(group, "orders/s sustained, submit -> acknowledged", t["orders_per_s"], target),
            Result(group, "offered orders/s (achieved)", lat["offered_per_s"]),
            Result(group, "submit->ack p50 ms @500/s", lat["p50_ms"], lower_is_better=True, decimals=1),
            Result(group, "submit->ack p99 ms @500/s", lat["p99_ms"], 50.0, lower_is_better=True, decimals=1),
            Result(group, "submit->ack p50 / bare loop p50", lat["p50_ms"] / anchor["p50_ms"], 1.5, True, 2),
            Result(group, "submit->ack p99 / bare loop p99", lat["p99_ms"] / anchor["p99_ms"], 2.0, True, 2),
        ]
    return out


def eos_results() -> list[Any]:
    return results(faust=False)
