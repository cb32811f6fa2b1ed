"""The EventLog contract: every backend must pass every test here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meltica.errors import UnknownTopicError
from meltica.events.codec import Codec
from meltica.events.consumer import EventConsumer
from meltica.events.examples import order_filled
from meltica.log.base import EventLog, Message, TopicPartition
from meltica.topics import dead_letter_topic
from tests.contract.conftest import Backend

# Key -> hash from Apache Kafka's own murmur2 test vectors (UtilsTest.testMurmur2).
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def values(records: list) -> list[bytes]:  # type: ignore[type-arg]
    return [r.value for r in records]


def test_reads_back_in_partition_order(log: EventLog, new_topic: Callable[..., str]) -> None:
    topic = new_topic(3)
    messages = [
        Message(topic, f"{k}-{i}".encode(), key=k.encode()) for i in range(20) for k in ("a", "b", "c", "d")
    ]
    positions = log.append(messages)
    assert len(positions) == len(messages)
    for key in ("a", "b", "c", "d"):
        parts = {p.partition for m, p in zip(messages, positions, strict=True) if m.key == key.encode()}
        assert len(parts) == 1, "one key, one partition"
        got = [v for v in values(log.read(topic, parts.pop(), 0, 1000)) if v.startswith(key.encode())]
        assert got == [f"{key}-{i}".encode() for i in range(20)]


def test_offsets_increase_and_end_offset_follows(log: EventLog, new_topic: Callable[..., str]) -> None:
    topic = new_topic(1)
    assert log.end_offset(topic, 0) == 0
    first = log.append([Message(topic, b"x%d" % i, partition=0) for i in range(5)])
    second = log.append([Message(topic, b"y%d" % i, partition=0) for i in range(5)])
    offsets = [p.offset for p in first + second]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 10
    assert log.end_offset(topic, 0) == offsets[-1] + 1
    records = log.read(topic, 0, offsets[3], 4)
    assert [r.offset for r in records] == offsets[3:7]
    assert log.read(topic, 0, offsets[-1] + 1, 10) == []


def test_headers_and_keys_round_trip(log: EventLog, new_topic: Callable[..., str]) -> None:
    topic = new_topic(2)
    headers = (
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("bin", b"\x00\xff"),
    )
    [pos] = log.append([Message(topic, b"v", key=b"k", headers=headers)])
    [rec] = log.read(topic, pos.partition, pos.offset, 1)
    assert (rec.key, rec.value, rec.headers) == (b"k", b"v", headers)
    assert rec.topic == topic
    assert rec.timestamp_ms > 0


def test_partitioner_matches_kafka_for_fixed_keys(log: EventLog, new_topic: Callable[..., str]) -> None:
    for partitions in (1, 3, 8):
        topic = new_topic(partitions)
        positions = log.append([Message(topic, b"v", key=k) for k in KAFKA_MURMUR2])
        for (_key, java_hash), pos in zip(KAFKA_MURMUR2.items(), positions, strict=True):
            assert pos.partition == (java_hash & 0x7FFFFFFF) % partitions


def test_unknown_topic_is_an_error(log: EventLog) -> None:
    with pytest.raises(UnknownTopicError):
        log.append([Message("no.such.topic.anywhere", b"v", key=b"k")])


def test_durable_across_close_and_reopen(
    backend: Backend, log: EventLog, new_topic: Callable[..., str]
) -> None:
    if not backend.durable:
        pytest.skip("the memory backend is not durable by design")
    topic = new_topic(2)
    log.append([Message(topic, b"%d" % i, key=b"k%d" % i) for i in range(50)])
    log.commit("g", {TopicPartition(topic, 0): 7})
    log.close()
    again = backend.open()
    total = sum(len(again.read(topic, p, 0, 1000)) for p in range(2))
    assert total == 50
    assert again.committed("g", TopicPartition(topic, 0)) == 7


def test_group_offsets_are_per_group(log: EventLog, new_topic: Callable[..., str]) -> None:
    topic = new_topic(2)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    assert log.committed("g1", tp0) is None
    log.commit("g1", {tp0: 3, tp1: 5})
    log.commit("g2", {tp0: 1})
    assert (log.committed("g1", tp0), log.committed("g1", tp1)) == (3, 5)
    assert (log.committed("g2", tp0), log.committed("g2", tp1)) == (1, None)
    log.commit("g1", {tp0: 4})
    assert log.committed("g1", tp0) == 4


def test_transaction_appends_and_commits_atomically(log: EventLog, new_topic: Callable[..., str]) -> None:
    source, sink = new_topic(1, "in"), new_topic(1, "out")
    log.append([Message(source, b"cmd", partition=0)])
    positions = log.append_and_commit(
        [Message(sink, b"evt-1", partition=0), Message(sink, b"evt-2", partition=0)],
        "processor",
        {TopicPartition(source, 0): 1},
    )
    assert [p.topic for p in positions] == [sink, sink]
    assert values(log.read(sink, 0, 0, 10)) == [b"evt-1", b"evt-2"]
    assert log.committed("processor", TopicPartition(source, 0)) == 1


def test_aborted_transaction_is_invisible(log: EventLog, new_topic: Callable[..., str]) -> None:
    source, sink = new_topic(1, "in"), new_topic(1, "out")
    log.append([Message(sink, b"before", partition=0)])
    with pytest.raises(RuntimeError, match="crash"), log.transaction("processor") as tx:  # noqa: PT012
        tx.append([Message(sink, b"aborted-1", partition=0), Message(sink, b"aborted-2", partition=0)])
        tx.commit_offsets({TopicPartition(source, 0): 10})
        raise RuntimeError("crash before commit")
    log.append_and_commit([Message(sink, b"after", partition=0)], "processor", {TopicPartition(source, 0): 1})
    assert values(log.read(sink, 0, 0, 10)) == [b"before", b"after"]
    assert log.committed("processor", TopicPartition(source, 0)) == 1


def test_corrupted_record_is_dead_lettered_and_consumption_goes_on(
    log: EventLog, new_topic: Callable[..., str]
) -> None:
    codec = Codec()
    topic = new_topic(1, "orders.events")
    good = [codec.encode("OrderFilled", order_filled(i)) for i in range(3)]
    corrupt = good[1][:-7] + b"\xff\xfe"
    log.append(
        [Message(topic, v, key=b"ACC-1", partition=0) for v in (good[0], corrupt, good[1], b"junk", good[2])]
    )

    consumer = EventConsumer(log, codec, "projector", [topic])
    events = consumer.poll()
    assert [e.record["order_id"] for e in events] == ["O-0", "O-1", "O-2"]
    consumer.commit()
    dead = log.read(dead_letter_topic(topic), 0, 0, 10)
    assert values(dead) == [corrupt, b"junk"]
    headers = dict(dead[0].headers)
    assert headers["meltica.dlq.topic"] == topic.encode()
    assert headers["meltica.dlq.offset"] == b"1"
    assert b"trailing" in headers["meltica.dlq.reason"] or headers["meltica.dlq.reason"]

    again = EventConsumer(log, codec, "projector", [topic])
    assert again.poll() == []
    assert len(log.read(dead_letter_topic(topic), 0, 0, 10)) == 2
