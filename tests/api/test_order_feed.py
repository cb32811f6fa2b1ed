"""`meltica run api`'s `?wait=` on Kafka: a read_committed consumer of `orders.events` feeds the
order waiter from the end at its start; an aborted transaction's events never reach a wait."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from meltica.api.order_feed import KafkaOrderFeed
from meltica.api.waiting import OrderWaiter
from meltica.events.codec import Codec
from meltica.projections import migrations
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_EVENTS, topic_specs
from tests.api.test_waiting import FILLED, lifecycle

pytestmark = pytest.mark.kafka


def test_committed_order_events_end_waits_and_aborted_ones_do_not(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from meltica.log.kafka import KafkaLog

    kafka = KafkaLog(kafka_bootstrap, namespace=f"feed-{uuid.uuid4().hex[:8]}")
    for spec in topic_specs(2):
        if spec.name == ORDER_EVENTS:
            kafka.create_topic(spec)
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    waiter = OrderWaiter(create_engine(url))
    publisher = Publisher(kafka, Codec())
    publisher.publish_many(ORDER_EVENTS, lifecycle("before"))  # before the feed: not its to see
    feed = KafkaOrderFeed(kafka, publisher.codec, waiter)
    feed.start()
    try:

        async def main() -> tuple[str, str]:
            loop = asyncio.get_running_loop()
            filled = asyncio.create_task(waiter.wait("o1", FILLED, 60))
            aborted = asyncio.create_task(waiter.wait("o2", FILLED, 3))
            await asyncio.sleep(0.1)

            def write() -> None:
                tx = kafka.transaction()
                tx.append([publisher.message(ORDER_EVENTS, e) for e in lifecycle("o2")])
                tx.abort()
                tx = kafka.transaction()
                tx.append([publisher.message(ORDER_EVENTS, e) for e in lifecycle("o1")])
                tx.commit()

            await loop.run_in_executor(None, write)
            return await filled, await aborted

        assert asyncio.run(main()) == ("FILLED", "PENDING_NEW")
        assert waiter.order("before") is None
        assert asyncio.run(waiter.wait("before", FILLED, 0.2)) == "PENDING_NEW"
    finally:
        feed.stop()
        kafka.close()
