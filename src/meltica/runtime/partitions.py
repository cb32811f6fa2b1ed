"""A processor split by partition, with the input journal that makes its state recoverable.

Shared by the Kafka hosts (confluent-kafka in `kafka_host`, faust-streaming in `faust_host`):
they differ in how records arrive and how a transaction is committed, not in what a partition
state does with a record.

Inputs split in two kinds. *Keyed* topics (keyed by account) are co-partitioned: partition p
of each belongs to the state of partition p. *Broadcast* topics (instruments, market data,
risk commands and events) are read in full by every partition state. A state notes the runs of
input records it applied, in order; its host commits that `InputJournal` with the outputs and
the offsets. Rebuilding a partition replays exactly those inputs in exactly that order. A state
writes only the outputs whose key falls on its own partition: every state applies a broadcast
command (a kill switch, a limit) but only the owner of the key writes the event.

Now and then a host saves a partition's whole state as a `ProcessorSnapshot` naming the journal
offset it covers; rebuilding starts from the newest snapshot and replays only the journal after
it. Snapshots are pickles: each carries an HMAC-SHA256 (under the snapshot key, see
`snapshot_keys`) over its state and what it covers, and one without a valid MAC is never unpickled.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from meltica.clock import Clock
from meltica.events.codec import Codec
from meltica.events.consumer import dead_letter
from meltica.log.base import EventLog, Message, Record, TopicPartition
from meltica.log.partitioner import partition_for
from meltica.runtime import state_codec
from meltica.runtime.processor import Output, Processor, layout
from meltica.runtime.snapshot_keys import MAC_BYTES, default_key, mac, verify
from meltica.runtime.step import Step
from meltica.topics import TOPIC_BY_NAME, journal_topic, snapshot_topic

PRODUCER_HEADER = "meltica.producer"
SNAPSHOT_FORMAT = "gzip-pickle+hmac-sha256/1"  # state: the MAC, then the gzipped pickle
_log = logging.getLogger("meltica.service")


def keyed_and_broadcast(inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split a processor's inputs into account-keyed topics and topics every partition reads."""
    keyed = [t for t in inputs if TOPIC_BY_NAME[t].key == "account_id"]
    return keyed, [t for t in inputs if t not in keyed]


@dataclass
class PartitionState:
    """The processor state for one partition of the keyed topics."""

    partition: int
    step: Step
    broadcast_pos: dict[TopicPartition, int]
    segments: list[list[Any]] = field(default_factory=list)
    since_snapshot: int = 0  # inputs applied since the state was last saved
    journal_end: int = 0  # offset after the newest committed journal entry this state holds

    @property
    def processor(self) -> Processor:
        """The partition's processor (after a rolled-back step: the restored one)."""
        processor: Processor = self.step.processors[0]
        return processor

    def note(self, rec: Record) -> None:
        """Record that `rec` was applied (extending the current run when it continues it)."""
        self.since_snapshot += 1
        last = self.segments[-1] if self.segments else None
        if last is not None and last[0] == rec.topic and last[1] == rec.partition:
            last[3] = rec.offset + 1
        else:
            self.segments.append([rec.topic, rec.partition, rec.offset, rec.offset + 1])


class PartitionedProcessor:
    """Applies records to partition states, writes their journals and rebuilds them from it."""

    def __init__(
        self,
        name: str,
        make: Callable[[int], Processor],
        inputs: Sequence[str],
        *,
        codec: Codec,
        reader: EventLog,
        clock: Clock,
        snapshot_key: bytes | None = None,
        outputs: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.snapshot_key = snapshot_key or default_key()
        self.make = make
        self.codec = codec
        self.reader = reader
        self.clock = clock
        self.journal = journal_topic(name)
        self.inputs = tuple(inputs)
        self.outputs = None if outputs is None else tuple(outputs)
        self.keyed, self.broadcast = keyed_and_broadcast(inputs)
        self.tracer = trace.get_tracer("meltica.service")
        self.replayed = 0
        # Called with each live input's event and its outputs (never on replay): service metrics.
        self.observers: list[Callable[[Any, list[Output]], None]] = []

    def initial_broadcast_pos(self) -> dict[TopicPartition, int]:
        return {TopicPartition(t, p): 0 for t in self.broadcast for p in range(self.reader.partitions(t))}

    def restore(self, partition: int) -> PartitionState:
        """The state of `partition` as its committed journal left it: from its latest snapshot, if
        there is a usable one, replaying only the journal after it."""
        found = self.latest_snapshot(partition)
        offset, processor, broadcast_pos = found or (0, self.make(partition), {})
        state = PartitionState(partition, self._step(processor, partition), self.initial_broadcast_pos())
        state.broadcast_pos.update(broadcast_pos)
        cursors: dict[TopicPartition, _Cursor] = {}
        replayed = 0
        while entries := self.reader.read(self.journal, partition, offset, 1000):
            offset = entries[-1].offset + 1
            for entry in entries:
                for seg in self.codec.decode_record(entry).record["segments"]:
                    tp = TopicPartition(seg["topic"], seg["partition"])
                    cursor = cursors.setdefault(tp, _Cursor(self.reader, tp))
                    for rec in cursor.range(seg["start"], seg["end"]):
                        self.apply(state, rec, live=False)
                        replayed += 1
                    if tp in state.broadcast_pos:
                        state.broadcast_pos[tp] = seg["end"]
        state.journal_end = offset
        self.replayed += replayed
        since = f" after the snapshot at journal offset {found[0]}" if found else ""
        _log.info("%s: partition %d rebuilt from %d inputs%s", self.name, partition, replayed, since)
        return state

    # -- snapshots ----------------------------------------------------------------------------------
    def latest_snapshot(self, partition: int) -> tuple[int, Processor, dict[TopicPartition, int]] | None:
        """(journal offset, processor, broadcast positions) of the newest readable snapshot."""
        topic = snapshot_topic(self.name)
        if topic not in self.reader.topics():
            return None
        end = self.reader.end_offset(topic, partition)
        start = end
        wanted = layout(self.make(partition))
        while start > 0:  # newest last; transaction markers take offsets too, so look back in steps
            start = max(0, start - 16)
            for rec in reversed(self.reader.read(topic, partition, start, end - start)):
                try:
                    snap = self.codec.decode_record(rec).record
                    if snap["processor"] != self.name or snap["format"] != SNAPSHOT_FORMAT:
                        continue
                    tag, blob = snap["state"][:MAC_BYTES], snap["state"][MAC_BYTES:]
                    if not verify(self.snapshot_key, tag, *self._covers(snap), blob):
                        raise ValueError("MAC does not match the snapshot key: refused unread")
                    processor, broadcast_pos = state_codec.loads(gzip.decompress(blob))  # MAC checked
                except Exception as err:  # an unreadable snapshot: an older one, or the journal, will do
                    _log.warning(
                        "%s: snapshot %d of partition %d unusable: %s", self.name, rec.offset, partition, err
                    )
                    continue
                if [t for t in broadcast_pos if t not in self.initial_broadcast_pos()]:
                    continue  # taken with other inputs than this build reads
                if layout(processor) != wanted:  # e.g. a pipeline before the router joined it
                    _log.warning(
                        "%s: snapshot %d of partition %d holds %s, not %s: replaying the journal",
                        self.name,
                        rec.offset,
                        partition,
                        layout(processor),
                        wanted,
                    )
                    continue
                return int(snap["journal_offset"]), processor, broadcast_pos
            end = start
        return None

    def snapshot_message(self, state: PartitionState) -> Message:
        """`state` as a snapshot record covering its journal up to `state.journal_end`."""
        blob = gzip.compress(state_codec.dumps((state.processor, state.broadcast_pos)), 3)
        snap: dict[str, Any] = {
            "processor": self.name,
            "partition": state.partition,
            "journal_offset": state.journal_end,
            "created_ns": time.time_ns(),
            "format": SNAPSHOT_FORMAT,
        }
        snap["state"] = mac(self.snapshot_key, *self._covers(snap), blob) + blob
        value = self.codec.encode("ProcessorSnapshot", snap)
        state.since_snapshot = 0
        return Message(snapshot_topic(self.name), value, str(state.partition).encode(), (), state.partition)

    @staticmethod
    def _covers(snap: dict[str, Any]) -> tuple[bytes, ...]:
        """What a snapshot's MAC binds its state to: processor, partition and journal offset."""
        return tuple(str(snap[k]).encode() for k in ("processor", "partition", "journal_offset"))

    def journal_message(self, state: PartitionState) -> Message | None:
        """The journal entry of what `state` applied since the last one (and forget it)."""
        if not state.segments:
            return None
        journal = {
            "processor": self.name,
            "partition": state.partition,
            "segments": [{"topic": t, "partition": p, "start": s, "end": e} for t, p, s, e in state.segments],
        }
        state.segments = []
        value = self.codec.encode("InputJournal", journal)
        return Message(self.journal, value, str(state.partition).encode(), (), state.partition)

    def _step(self, processor: Processor, partition: int) -> Step:
        return Step(
            [processor],
            {processor.name: self.inputs},
            codec=self.codec,
            clock=self.clock,
            tracer=self.tracer,
            producer=lambda p: f"{self.name}/{partition}",
            outputs=None if self.outputs is None else {processor.name: self.outputs},
        )

    def apply(self, state: PartitionState, rec: Record, *, live: bool) -> list[Message]:
        """Apply `rec` to `state` (the step of `runtime.step`: a failure dead-letters the input and
        leaves the state as it was); the messages it owes the log (none when replaying)."""
        if live:
            state.note(rec)
        if any(k == PRODUCER_HEADER and v == self.name.encode() for k, v in rec.headers):
            return []  # our own output, applied when we emitted it
        owner = rec.partition == state.partition
        partitions: dict[str, int] = {}

        def mine(out: Output) -> bool:  # the partition that owns a key writes it
            if out.topic not in partitions:
                partitions[out.topic] = self.reader.partitions(out.topic)
            return partition_for(out.key.encode(), partitions[out.topic]) == state.partition

        stepped = state.step.run(rec, live=live, keep=mine)
        if stepped.failure is not None:  # (the step logged it)
            return [dead_letter(rec, stepped.failure)] if live and owner else []
        if not live or not stepped.emitted:
            return []
        for observe in self.observers:  # outputs that are written, not those dead-lettered with their input
            observe(stepped.event, [e.output for e in stepped.emitted])
        return [
            Message(
                e.output.topic,
                e.value,
                e.output.key.encode(),
                (*e.headers, (PRODUCER_HEADER, self.name.encode())),
                partition_for(e.output.key.encode(), partitions[e.output.topic]),
            )
            for e in stepped.emitted
        ]


class _Cursor:
    """Forward reads of one input partition during a rebuild, in chunks."""

    def __init__(self, log: EventLog, tp: TopicPartition) -> None:
        self._log = log
        self._tp = tp
        self._buffer: deque[Record] = deque()
        self._next = 0

    def range(self, start: int, end: int) -> list[Record]:
        """The committed records with offsets in [start, end)."""
        out: list[Record] = []
        while True:
            while self._buffer and self._buffer[0].offset < start:
                self._buffer.popleft()
            while self._buffer and self._buffer[0].offset < end:
                out.append(self._buffer.popleft())
            if self._buffer or self._next >= end:
                return out
            fetched = self._log.read(self._tp.topic, self._tp.partition, max(self._next, start), 5000)
            if not fetched:
                return out
            self._next = fetched[-1].offset + 1
            self._buffer.extend(fetched)
