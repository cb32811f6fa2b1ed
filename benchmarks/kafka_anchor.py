"""The anchor of the Kafka figures: a bare confluent-kafka consume -> produce -> commit loop, one
transactional hop, no Meltica code. Messages go in at a fixed rate to a 4-partition topic; one
transactional consumer-producer copies each batch it polls to an output topic and commits its
offsets in the same transaction; a read_committed reader notes when each copy becomes visible.
What Meltica's submit->ack is compared with (the services benchmark reports the ratio)."""

from __future__ import annotations

import statistics
import struct
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4
_STAMP = struct.Struct(">Qd")  # sequence number, perf_counter at send


def _topics(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    for f in futures.values():
        f.result(30)


def _copy_loop(bootstrap: str, src: str, dst: str, group: str, stop: threading.Event) -> None:
    """Consume a batch, produce it, send the offsets, commit: the loop every EOS service runs."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 5,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"{group}-tx",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
        }
    )
    producer.init_transactions(30)
    consumer.subscribe([src])
    try:
        while not stop.is_set():
            batch = [m for m in consumer.consume(500, timeout=0.005) if not m.error()]
            if not batch:
                continue
            producer.begin_transaction()
            ends: dict[tuple[str, int], int] = {}
            for m in batch:
                producer.produce(dst, m.value(), m.key(), partition=m.partition())
                ends[(str(m.topic()), int(m.partition() or 0))] = int(m.offset() or 0) + 1
            offsets = [TopicPartition(t, p, o) for (t, p), o in ends.items()]
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
    except KafkaException:
        if not stop.is_set():
            raise
    finally:
        consumer.close()


def one_hop(bootstrap: str, rate: int = 500, seconds: float = 8.0) -> dict[str, float]:
    """Messages at `rate`/s through one transactional hop; send -> visible latency percentiles."""
    ns = f"anchor{uuid.uuid4().hex[:8]}"
    src, dst = f"{ns}.in", f"{ns}.out"
    _topics(bootstrap, [src, dst])
    stop = threading.Event()
    seen: dict[int, float] = {}
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{ns}-reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 1,
        }
    )
    reader.assign([TopicPartition(dst, p, 0) for p in range(PARTITIONS)])

    def read() -> None:
        while not stop.is_set():
            for m in reader.consume(1000, timeout=0.01):
                if not m.error():
                    seen.setdefault(_STAMP.unpack(m.value() or b"")[0], time.perf_counter())

    loop = threading.Thread(target=_copy_loop, args=(bootstrap, src, dst, f"{ns}-loop", stop))
    watcher = threading.Thread(target=read)
    loop.start()
    watcher.start()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    # warm up: the loop has joined its group and the reader sees its output
    producer.produce(src, _STAMP.pack(0, time.perf_counter()), b"warm")
    producer.flush(10)
    deadline = time.monotonic() + 60
    while 0 not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    total = int(rate * seconds)
    sent: dict[int, float] = {}
    began = time.perf_counter()
    for i in range(1, total + 1):
        due = began + i / rate
        while (wait := due - time.perf_counter()) > 0:
            time.sleep(min(wait, 0.001))
        sent[i] = now = time.perf_counter()
        producer.produce(src, _STAMP.pack(i, now), f"k{i % 64}".encode())
        producer.poll(0)
    achieved = total / (time.perf_counter() - began)
    producer.flush(10)
    deadline = time.monotonic() + 30
    while len(seen) <= total and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    loop.join(60)
    watcher.join(10)
    reader.close()
    lat = sorted((seen[i] - t) * 1000 for i, t in sent.items() if i in seen)
    q = statistics.quantiles(lat, n=1000, method="inclusive")
    return {"offered_per_s": achieved, "p50_ms": q[499], "p99_ms": q[989], "count": len(lat)}


if __name__ == "__main__":
    import os

    print(one_hop(os.environ["MELTICA_KAFKA_BOOTSTRAP"]))
