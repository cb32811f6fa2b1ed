"""The event log port: topics of partitions holding ordered, offset-addressed records.

Every backend (memory, SQLite, Kafka) implements `EventLog` and passes the one contract
suite in `tests/contract`. The log knows records and bytes, never orders.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import NamedTuple

from meltica.errors import LogError, UnknownTopicError
from meltica.log.partitioner import partition_for

Headers = tuple[tuple[str, bytes], ...]


class TopicPartition(NamedTuple):
    """One partition of one topic."""

    topic: str
    partition: int


class Position(NamedTuple):
    """Where an appended record landed."""

    topic: str
    partition: int
    offset: int


class Record(NamedTuple):
    """A record read back from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int
    seq: int = -1
    """Global append order across all topics where the backend keeps one (memory, SQLite); -1 otherwise."""


@dataclass(frozen=True, slots=True)
class Message:
    """A record to append. Without `partition`, the key picks it (murmur2, as Kafka does)."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create: its partitions and its configuration (Kafka topic config keys)."""

    name: str
    partitions: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


class Transaction(ABC):
    """Appends and offset commits that become visible together, or not at all.

    Use as a context manager: leaving the block normally commits, an exception aborts.
    """

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._offsets: dict[TopicPartition, int] = {}
        self._done = False

    def append(self, messages: Iterable[Message]) -> None:
        """Stage records to append."""
        self._check_open()
        self._messages.extend(messages)

    def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Stage the consumer group's next offsets to commit with the appends."""
        self._check_open()
        self._offsets.update(offsets)

    def commit(self) -> list[Position]:
        """Make everything staged visible atomically; returns where the appends landed."""
        self._check_open()
        self._done = True
        return self._commit(self._messages, self._offsets)

    def abort(self) -> None:
        """Drop everything staged; readers never see any of it."""
        if self._done:
            return
        self._done = True
        self._abort(self._messages)

    def _check_open(self) -> None:
        if self._done:
            raise LogError("transaction already committed or aborted")

    @abstractmethod
    def _commit(self, messages: Sequence[Message], offsets: Mapping[TopicPartition, int]) -> list[Position]:
        """Backend part of `commit`."""

    def _abort(self, messages: Sequence[Message]) -> None:  # noqa: B027 - optional hook
        """Backend part of `abort`; buffering backends have nothing to undo."""

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            if not self._done:
                self.commit()
        else:
            self.abort()


class EventLog(ABC):
    """Append-only topics of partitions, read by offset, with consumer-group offsets."""

    def __init__(self) -> None:
        self._round_robin = itertools.count()
        self._topic_cache: dict[str, int] = {}

    # -- topics ---------------------------------------------------------------------------
    @abstractmethod
    def create_topic(self, spec: TopicSpec) -> None:
        """Create a topic; creating an existing one with the same partitions does nothing."""

    @abstractmethod
    def topics(self) -> dict[str, int]:
        """Every topic and its number of partitions."""

    def partitions(self, topic: str) -> int:
        """Number of partitions of `topic` (asking the backend only for a topic not seen before)."""
        return self._partitions_cached(topic)

    def _partitions_cached(self, topic: str) -> int:
        """Partitions of `topic`, asking the backend only for topics not seen before."""
        n = self._topic_cache.get(topic)
        if n is None:
            self._topic_cache = self.topics()
            n = self._topic_cache.get(topic)
            if n is None:
                raise UnknownTopicError(f"unknown topic {topic!r}")
        return n

    # -- records --------------------------------------------------------------------------
    @abstractmethod
    def append(self, messages: Sequence[Message]) -> list[Position]:
        """Append a batch durably; returns each message's position, in order."""

    @abstractmethod
    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[Record]:
        """Committed records of one partition from `offset` on, in order, at most `limit`."""

    @abstractmethod
    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record of the partition will get."""

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """`end_offset` of several partitions (backends may answer in one round trip)."""
        return {tp: self.end_offset(tp.topic, tp.partition) for tp in partitions}

    def last_sequence(self) -> int | None:
        """The global append sequence so far, if the backend keeps one: a cheap "anything new?"."""
        return None

    # -- consumer groups ------------------------------------------------------------------
    @abstractmethod
    def committed(self, group: str, tp: TopicPartition) -> int | None:
        """The group's next offset to read in `tp`, or None if it never committed one."""

    @abstractmethod
    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Store the group's next offsets to read."""

    @abstractmethod
    def transaction(self, group: str | None = None) -> Transaction:
        """Start an atomic append + offset commit for `group` (required to commit offsets)."""

    def append_and_commit(
        self, messages: Sequence[Message], group: str, offsets: Mapping[TopicPartition, int]
    ) -> list[Position]:
        """Append outputs and commit input offsets in one atomic step: the processor's write."""
        with self.transaction(group) as tx:
            tx.append(messages)
            tx.commit_offsets(offsets)
            return tx.commit()

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - backends without resources keep the default
        """Release connections and files."""

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for backends -------------------------------------------------------------
    def _partition_of(self, message: Message, partitions: int) -> int:
        """Resolve a message's partition: explicit, by key (murmur2), or round robin."""
        if message.partition is not None:
            if not 0 <= message.partition < partitions:
                raise UnknownTopicError(
                    f"partition {message.partition} of {message.topic!r} does not exist "
                    f"({partitions} partitions)"
                )
            return message.partition
        if message.key is not None:
            return partition_for(message.key, partitions)
        return next(self._round_robin) % partitions


def records_after(
    log: EventLog,
    positions: Mapping[TopicPartition, int],
    nothing_below: dict[TopicPartition, int],
    limit: int,
) -> list[Record]:
    """The records after `positions` (at most `limit` a partition), in global append order. A
    partition found to hold only transaction markers up to its end (Kafka) is noted in
    `nothing_below` and not read again until its end moves."""
    out: list[Record] = []
    ends = log.end_offsets(list(positions))
    for tp, pos in positions.items():
        if ends[tp] <= pos or nothing_below.get(tp) == ends[tp]:
            continue
        batch = log.read(tp.topic, tp.partition, pos, limit)
        if batch:
            out += batch
        else:
            nothing_below[tp] = ends[tp]
    return sorted(out, key=lambda r: (r.seq, r.partition, r.offset))
