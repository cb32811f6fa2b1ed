"""Kafka's murmur2, bit for bit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meltica.log.partitioner import murmur2, partition_for
from tests.contract.test_event_log import KAFKA_MURMUR2


def test_matches_kafka_test_vectors() -> None:
    for key, expected in KAFKA_MURMUR2.items():
        assert murmur2(key) == expected


@given(st.binary(max_size=64), st.integers(1, 512))
def test_partition_is_in_range_and_stable(key: bytes, partitions: int) -> None:
    p = partition_for(key, partitions)
    assert 0 <= p < partitions
    assert p == (murmur2(key) & 0x7FFFFFFF) % partitions
