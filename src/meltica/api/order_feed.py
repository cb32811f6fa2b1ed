"""The order events of a Kafka cluster for `?wait=` in `meltica run api`: a read_committed
consumer of `orders.events`, outside any consumer group, from the end at start, feeding the
app's order waiter what each batch holds (a record only once its transaction is committed)."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from meltica.api.waiting import OrderWaiter
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.kafka import KafkaLog
from meltica.topics import ORDER_EVENTS

log = logging.getLogger(__name__)


class KafkaOrderFeed:
    """Reads `orders.events` on a thread and hands the waiter each batch's events."""

    def __init__(self, kafka: KafkaLog, codec: Codec, waiter: OrderWaiter, batch: int = 500) -> None:
        self.kafka, self.codec, self.waiter, self.batch = kafka, codec, waiter, batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None

    def start(self, timeout: float = 30.0) -> None:
        """Take the end of every partition as the start (before the API serves), then follow."""
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as KafkaTopicPartition

        consumer = Consumer(
            {
                **self.kafka.connection,
                "client.id": "meltica-api-order-feed",
                "group.id": f"meltica-api-order-feed-{uuid.uuid4()}",  # never committed
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",  # (the ends below: the last stable offsets)
                "fetch.wait.max.ms": 5,
            }
        )
        topic = self.kafka.wire(ORDER_EVENTS)
        try:
            ends = [
                KafkaTopicPartition(
                    topic, p, consumer.get_watermark_offsets(KafkaTopicPartition(topic, p), timeout)[1]
                )
                for p in range(self.kafka.partitions(ORDER_EVENTS))
            ]
        except Exception:
            consumer.close()
            raise
        consumer.assign(ends)
        self._consumer = consumer
        self._thread = threading.Thread(target=self._run, name="order-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        consumer = self._consumer
        try:
            while not self._stop.is_set():
                events = []
                for msg in consumer.consume(self.batch, timeout=0.1):
                    if msg.error() is not None:
                        log.warning("order feed: %s", msg.error())
                        continue
                    try:
                        events.append(from_record(*self.codec.decode(msg.value())))
                    except (MelticaError, ValueError, TypeError, KeyError):
                        continue  # not an event this version knows: the processors dead-letter it
                if events:
                    self.waiter.observe(events)
        finally:
            consumer.close()
