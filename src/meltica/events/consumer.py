"""Reading events from the log as a consumer group, with dead-lettering.

A record that does not decode is copied, with the reason in its headers, to the
dead-letter topic `<topic>.dlq`; the consumer goes on with the next record. Dead letters
are written in the same atomic step as the group's offsets and the caller's outputs, so a
restart neither loses nor repeats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meltica.errors import DecodeError
from meltica.events.codec import Codec
from meltica.log.base import EventLog, Message, Position, Record, TopicPartition, TopicSpec
from meltica.topics import dead_letter_topic


def dead_letter(record: Record, reason: str) -> Message:
    """The dead-letter copy of `record`: same key and bytes, the reason and origin in headers."""
    headers = (
        *record.headers,
        ("meltica.dlq.reason", reason.encode()),
        ("meltica.dlq.topic", record.topic.encode()),
        ("meltica.dlq.partition", str(record.partition).encode()),
        ("meltica.dlq.offset", str(record.offset).encode()),
    )
    return Message(
        dead_letter_topic(record.topic), record.value, record.key, headers, partition=record.partition
    )


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    """A decoded event and the log record it came from."""

    name: str
    record: dict[str, Any]
    source: Record


class EventConsumer:
    """A consumer group member reading every partition of some topics, in offset order."""

    def __init__(self, log: EventLog, codec: Codec, group: str, topics: Sequence[str]) -> None:
        self._log = log
        self._codec = codec
        self.group = group
        self._positions: dict[TopicPartition, int] = {}
        self._dead: list[Message] = []
        self.dead_lettered = 0
        for topic in topics:
            n = log.partitions(topic)
            log.create_topic(TopicSpec(dead_letter_topic(topic), n))
            for p in range(n):
                tp = TopicPartition(topic, p)
                self._positions[tp] = log.committed(group, tp) or 0

    @property
    def positions(self) -> dict[TopicPartition, int]:
        """The next offset to read in each partition."""
        return dict(self._positions)

    def poll(self, max_records: int = 1000) -> list[ConsumedEvent]:
        """Up to `max_records` decoded events; undecodable ones are staged as dead letters."""
        out: list[ConsumedEvent] = []
        for tp, pos in self._positions.items():
            budget = max_records - len(out)
            if budget <= 0:
                break
            for rec in self._log.read(tp.topic, tp.partition, pos, budget):
                self._positions[tp] = rec.offset + 1
                try:
                    name, fields = self._codec.decode_record(rec)
                except DecodeError as err:
                    self._dead.append(dead_letter(rec, err.reason))
                    self.dead_lettered += 1
                    continue
                out.append(ConsumedEvent(name, fields, rec))
        return out

    def commit(self, outputs: Sequence[Message] = ()) -> list[Position]:
        """Append `outputs` and staged dead letters and commit the positions, atomically."""
        positions = self._log.append_and_commit([*outputs, *self._dead], self.group, self._positions)
        self._dead.clear()
        return positions[: len(outputs)]

    def rewind(self) -> None:
        """Forget what was polled since the last commit (after a failed commit)."""
        self._dead.clear()
        for tp in self._positions:
            self._positions[tp] = self._log.committed(self.group, tp) or 0
