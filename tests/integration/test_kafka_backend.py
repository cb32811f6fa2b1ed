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


def test_threads_sharing_a_log_take_turns_with_its_transactions(kafka_bootstrap: str) -> None:
    """An embedded engine and a live venue's gateway write through one log from two threads: each
    transaction (outputs plus its group's offsets) commits whole, none trips over the other."""
    import threading

    from meltica.log.base import TopicPartition

    with KafkaLog(kafka_bootstrap, client_id="turns", namespace=f"k{uuid.uuid4().hex[:8]}") as log:
        log.create_topic(TopicSpec("out", 1))
        log.create_topic(TopicSpec("in", 1))
        failures: list[BaseException] = []

        def write(group: str) -> None:
            try:
                for i in range(40):
                    log.append_and_commit(
                        [Message("out", f"{group}-{i}".encode(), group.encode(), partition=0)],
                        group,
                        {TopicPartition("in", 0): i + 1},
                    )
            except BaseException as err:
                failures.append(err)

        threads = [threading.Thread(target=write, args=(g,)) for g in ("engine", "gateway")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert failures == []
        values = {r.value for r in log.read("out", 0, 0, 1000)}
        assert values == {f"{g}-{i}".encode() for g in ("engine", "gateway") for i in range(40)}
        assert [log.committed(g, TopicPartition("in", 0)) for g in ("engine", "gateway")] == [40, 40]
