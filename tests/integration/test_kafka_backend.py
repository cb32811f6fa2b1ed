"""Kafka specifics beyond the contract: placement parity with librdkafka's murmur2 partitioner,
and fencing of a zombie transactional writer."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from meltica.errors import TransactionAbortedError
from meltica.log.base import Message, TopicSpec
from meltica.log.kafka import KafkaLog
from meltica.log.partitioner import partition_for

pytestmark = pytest.mark.kafka


def test_our_partitioner_places_keys_where_the_kafka_client_does(kafka_bootstrap: str) -> None:
    topic = f"parity.{uuid.uuid4().hex[:8]}"
    with KafkaLog(kafka_bootstrap) as log:
        log.create_topic(TopicSpec(topic, 7))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    placed: dict[bytes, int] = {}
    keys = [f"ACC-{i}".encode() for i in range(200)] + [
        f"{s}.BINANCE".encode() for s in ("BTCUSDT", "ETHUSDT")
    ]
    for key in keys:
        producer.produce(
            topic, b"v", key, on_delivery=lambda err, msg: placed.__setitem__(msg.key(), msg.partition())
        )
    producer.flush(30)
    assert len(placed) == len(keys)
    assert all(placed[k] == partition_for(k, 7) for k in keys)


def test_a_second_writer_with_the_same_transactional_id_fences_the_first(kafka_bootstrap: str) -> None:
    topic = f"fence.{uuid.uuid4().hex[:8]}"
    tid = f"fence-{uuid.uuid4().hex[:8]}"
    zombie, successor = (
        KafkaLog(kafka_bootstrap, transactional_id=tid),
        KafkaLog(kafka_bootstrap, transactional_id=tid),
    )
    zombie.create_topic(TopicSpec(topic, 1))
    tx = zombie.transaction()
    tx.append([Message(topic, b"zombie", partition=0)])
    with successor.transaction() as tx2:
        tx2.append([Message(topic, b"successor", partition=0)])
    with pytest.raises(TransactionAbortedError):
        tx.commit()
    assert [r.value for r in successor.read(topic, 0, 0, 10)] == [b"successor"]
    zombie.close()
    successor.close()
