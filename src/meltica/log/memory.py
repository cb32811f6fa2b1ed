"""In-memory event log: the fastest backend, for tests and backtests that need no durability."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from meltica.errors import LogError, UnknownTopicError
from meltica.log.base import EventLog, Message, Position, Record, TopicPartition, TopicSpec, Transaction


class MemoryLog(EventLog):
    """Topics as lists in memory; a transaction is a buffer applied under one lock."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._parts: dict[str, list[list[Record]]] = {}
        self._groups: dict[tuple[str, TopicPartition], int] = {}
        self._seq = 0

    def create_topic(self, spec: TopicSpec) -> None:
        with self._lock:
            existing = self._parts.get(spec.name)
            if existing is not None:
                if len(existing) != spec.partitions:
                    raise LogError(f"topic {spec.name!r} exists with {len(existing)} partitions")
                return
            self._parts[spec.name] = [[] for _ in range(spec.partitions)]

    def topics(self) -> dict[str, int]:
        with self._lock:
            return {name: len(parts) for name, parts in self._parts.items()}

    def _partition_list(self, topic: str, partition: int) -> list[Record]:
        try:
            parts = self._parts[topic]
        except KeyError:
            raise UnknownTopicError(f"unknown topic {topic!r}") from None
        if not 0 <= partition < len(parts):
            raise UnknownTopicError(f"partition {partition} of {topic!r} does not exist")
        return parts[partition]

    def append(self, messages: Sequence[Message]) -> list[Position]:
        with self._lock:
            return self._apply(messages, None, {})

    def _apply(
        self, messages: Sequence[Message], group: str | None, offsets: Mapping[TopicPartition, int]
    ) -> list[Position]:
        if offsets and group is None:
            raise LogError("committing offsets needs a consumer group")
        placed: list[tuple[list[Record], Message, int]] = []
        for m in messages:
            try:
                n = len(self._parts[m.topic])
            except KeyError:
                raise UnknownTopicError(f"unknown topic {m.topic!r}") from None
            p = self._partition_of(m, n)
            placed.append((self._parts[m.topic][p], m, p))
        now = time.time_ns() // 1_000_000
        positions = []
        for target, m, p in placed:
            rec = Record(m.topic, p, len(target), m.key, m.value, m.headers, now, self._seq)
            self._seq += 1
            target.append(rec)
            positions.append(Position(m.topic, p, rec.offset))
        for tp, off in offsets.items():
            self._groups[(group or "", tp)] = off
        return positions

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[Record]:
        with self._lock:
            records = self._partition_list(topic, partition)
            return records[max(offset, 0) : max(offset, 0) + limit]

    def end_offset(self, topic: str, partition: int) -> int:
        with self._lock:
            return len(self._partition_list(topic, partition))

    def last_sequence(self) -> int | None:
        with self._lock:
            return self._seq

    def committed(self, group: str, tp: TopicPartition) -> int | None:
        with self._lock:
            return self._groups.get((group, tp))

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            for tp, off in offsets.items():
                self._groups[(group, tp)] = off

    def transaction(self, group: str | None = None) -> Transaction:
        return _MemoryTransaction(self, group)


class _MemoryTransaction(Transaction):
    def __init__(self, log: MemoryLog, group: str | None) -> None:
        super().__init__()
        self._log = log
        self._group = group

    def _commit(self, messages: Sequence[Message], offsets: Mapping[TopicPartition, int]) -> list[Position]:
        with self._log._lock:
            return self._log._apply(messages, self._group, offsets)
