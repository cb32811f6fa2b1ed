"""One processor as a Kafka service (confluent-kafka): a consumer group member with exactly-once
transactions.

The group's range assignor gives an instance the same partition numbers of every keyed input;
it keeps one `PartitionState` per owned partition (see `meltica.runtime.partitions`). Broadcast
topics are read by a second consumer outside the group. Each poll is one Kafka transaction:
the outputs, dead letters, the group's keyed offsets (`send_offsets_to_transaction` with the
consumer's group metadata, so a zombie is fenced) and each partition's `InputJournal`. When a
partition is assigned its state is rebuilt from the journal, and the broadcast topics are read
to their end before any keyed input (global-table semantics).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from meltica.clock import Clock, LiveClock
from meltica.events.codec import Codec
from meltica.log.base import Message, Record, TopicPartition
from meltica.log.kafka import KafkaLog, record_of
from meltica.runtime.partitions import PartitionedProcessor, PartitionState
from meltica.runtime.processor import Processor
from meltica.topics import SNAPSHOT_MAX_BYTES

PRODUCER_HEADER = "meltica.producer"
_TIMEOUT_S = 30.0
_log = logging.getLogger("meltica.service")
_Delivered = Callable[[KafkaError | None, Any], None]


@dataclass
class HostStats:
    """What the service has done; exported as metrics and on its health endpoint."""

    records: int = 0
    outputs: int = 0
    dead_letters: int = 0
    transactions: int = 0
    rebalances: int = 0
    snapshots: int = 0
    last_loop: float = field(default_factory=time.monotonic)


class KafkaProcessorHost:
    """Hosts `make(partition)` processors for the partitions this instance owns."""

    def __init__(
        self,
        name: str,
        make: Callable[[int], Processor],
        inputs: Sequence[str],
        *,
        bootstrap: str,
        codec: Codec,
        namespace: str = "",
        partitions: int,
        instance_id: str | None = None,
        clock: Clock | None = None,
        max_batch: int = 500,
        snapshot_every: int = 10_000,
    ) -> None:
        self.name = name
        self.snapshot_every = snapshot_every
        self.partitions = partitions
        self.max_batch = max_batch
        self.group = f"meltica-{name}"
        self.instance_id = instance_id or f"{name}-{uuid.uuid4().hex[:12]}"
        # A named instance is a static group member: restarted under the same name it takes its
        # partitions back at once instead of waiting for the session of its dead self to time out.
        static = {"group.instance.id": f"meltica-{instance_id}"} if instance_id else {}
        self.stats = HostStats()
        self.states: dict[int, PartitionState] = {}
        self.ready = threading.Event()
        self._reader = KafkaLog(bootstrap, client_id=f"meltica-{name}-reader", namespace=namespace)
        wire = self._reader.wire
        self._logical = {wire(t): t for t in inputs}
        self.core = PartitionedProcessor(
            name, make, inputs, codec=codec, reader=self._reader, clock=clock or LiveClock()
        )
        self.keyed, self.broadcast = self.core.keyed, self.core.broadcast
        common = {"bootstrap.servers": bootstrap, "client.id": f"meltica-{name}"}
        self._consumer = Consumer(
            {
                **common,
                "group.id": wire(self.group),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                "fetch.wait.max.ms": 5,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                **static,
            }
        )
        self._broadcast = Consumer(
            {
                **common,
                "group.id": wire(f"{self.group}-broadcast-{uuid.uuid4().hex[:8]}"),  # never commits
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
            }
        )
        self._producer = Producer(
            {
                **common,
                "transactional.id": wire(self.instance_id),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "compression.type": "lz4",
                "message.max.bytes": SNAPSHOT_MAX_BYTES,  # a snapshot is one record
            }
        )
        self._producer.init_transactions(_TIMEOUT_S)
        self._rewind_needed = False
        self._fenced = False
        self._catchup: dict[TopicPartition, int] | None = None

    # -- assignment -------------------------------------------------------------------------
    # Eager rebalancing: revoke takes every partition, assign hands out the new set. Both run
    # inside consume(), between batches, when no transaction is open. The keyed inputs resume
    # at the group's committed offsets, which the journal's last transaction also wrote.
    def _on_assign(self, consumer: Consumer, assigned: list[KafkaTopicPartition]) -> None:
        self.stats.rebalances += 1
        owned = sorted({tp.partition for tp in assigned})
        _log.info("%s: assigned partitions %s", self.instance_id, owned)
        self.states = {p: self.core.restore(p) for p in owned}
        self._assign_broadcast()
        # Like a global table: the broadcast topics are read up to their current end before any
        # keyed input, so a (re)started service knows every instrument, limit and price first.
        consumer.assign(assigned)
        consumer.pause(assigned)
        self._catchup = {tp: self._reader.end_offset(*tp) for tp in self.core.initial_broadcast_pos()}

    def _catch_up(self) -> None:
        """Apply broadcast records until they are read to the ends noted at assignment."""
        records = self._records(self._broadcast.consume(self.max_batch, timeout=0.1))
        if records:
            self._process(records)
            return
        targets = self._catchup or {}
        behind = [
            tp
            for tp, end in targets.items()
            for s in self.states.values()
            if s.broadcast_pos[tp] < end - 1  # the last offset may be a transaction marker
        ]
        if not behind:
            self._catchup = None
            self._consumer.resume(self._consumer.assignment())
            self.ready.set()

    def _on_revoke(self, consumer: Consumer, revoked: list[KafkaTopicPartition]) -> None:
        self.ready.clear()
        self.states = {}
        self._assign_broadcast()

    def _rewind(self) -> None:
        """After an aborted transaction: rebuild the states and re-read from the committed offsets."""
        assignment = self._consumer.assignment()
        self.states = {p: self.core.restore(p) for p in sorted({tp.partition for tp in assignment})}
        for tp in assignment:
            committed = self._reader.committed(
                self.group, TopicPartition(self._logical[tp.topic], tp.partition)
            )
            self._consumer.seek(KafkaTopicPartition(tp.topic, tp.partition, committed or 0))
        self._assign_broadcast()

    def _assign_broadcast(self) -> None:
        """Read broadcast topics from the earliest position any owned state still needs."""
        if not self.states:
            self._broadcast.unassign()
            return
        lowest: dict[TopicPartition, int] = {}
        for state in self.states.values():
            for tp, pos in state.broadcast_pos.items():
                lowest[tp] = min(pos, lowest.get(tp, pos))
        self._broadcast.assign(self._reader.kafka_offsets(lowest))

    # -- running ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume, process and commit until `stop` is set or this instance is fenced."""
        self._consumer.subscribe(
            [wire for wire, t in self._logical.items() if t in self.keyed],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            self._loop(stop)
            if self.snapshot_every and self._catchup is None:  # leaving cleanly: the next owner starts here
                self._snapshot([s for s in self.states.values() if s.since_snapshot])
        finally:
            self.close()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self._fenced:
            self.stats.last_loop = time.monotonic()
            keyed = self._consumer.consume(self.max_batch, timeout=0.005)
            if self._rewind_needed:
                self._rewind_needed = False
                self._rewind()
                continue  # what was fetched before the seek is fetched again after it
            if not self.states:
                continue
            if self._catchup is not None:
                self._catch_up()
                continue
            broadcast = self._broadcast.consume(self.max_batch, timeout=0)
            # broadcast first, then keyed: each partition's records stay in offset order
            records = self._records([*broadcast, *keyed])
            if records:
                self._process(records)

    def _records(self, batch: list[Any]) -> list[Record]:
        """The consumed messages as records of their logical topics (error events dropped)."""
        logical = self._logical
        return [
            record_of(logical[str(m.topic())], int(m.partition() or 0), m) for m in batch if not m.error()
        ]

    def _process(self, records: list[Record]) -> None:
        messages: list[Message] = []
        offsets: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            if rec.topic in self.broadcast:
                targets = [s for s in self.states.values() if s.broadcast_pos.get(tp, 0) <= rec.offset]
            else:
                state = self.states.get(rec.partition)
                if state is None:
                    continue  # not ours (any more): its owner reads it from the committed offset
                offsets[tp] = rec.offset + 1
                targets = [state]
            for state in targets:
                messages += self.core.apply(state, rec, live=True)
                if rec.topic in self.broadcast:
                    state.broadcast_pos[tp] = rec.offset + 1
        journals = {s.partition: j for s in self.states.values() if (j := self.core.journal_message(s))}
        self._commit(messages, offsets, journals)
        self.stats.records += len(records)
        if self.snapshot_every:
            self._snapshot([s for s in self.states.values() if s.since_snapshot >= self.snapshot_every])

    def _snapshot(self, states: list[PartitionState]) -> None:
        """Save `states` (each exactly what its committed journal holds) in a transaction of its own;
        a failure costs nothing but a longer rebuild."""
        states = [s for s in states if s.journal_end >= 0]
        if not states or self._fenced or self._rewind_needed:
            return
        try:
            messages = [self.core.snapshot_message(s) for s in states]
            self._producer.begin_transaction()
            for m in messages:
                self._produce(m)
            self._producer.commit_transaction(_TIMEOUT_S)
        except KafkaException as err:
            kerr = err.args[0]
            if kerr.fatal() or kerr.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
                self._fenced = True
                return
            _log.warning("%s: snapshot not written (%s)", self.instance_id, kerr)
            if kerr.txn_requires_abort():
                self._producer.abort_transaction(_TIMEOUT_S)
            return
        self.stats.snapshots += len(messages)
        _log.info("%s: saved partitions %s", self.instance_id, [s.partition for s in states])

    def _commit(
        self, messages: list[Message], offsets: dict[TopicPartition, int], journals: dict[int, Message]
    ) -> None:
        """Write `messages` and the partition `journals` with the input `offsets` in one transaction.

        Each journal entry's offset comes back in its delivery report (served while committing):
        a snapshot names exactly the journal it covers. The end offset cannot stand in for it, as
        the broker writes commit markers after the commit returns."""
        ends: dict[int, int] = {}

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is None:
                ends[int(msg.partition())] = int(msg.offset()) + 1

        try:
            self._producer.begin_transaction()
            for m in messages:
                self._produce(m)
            for m in journals.values():
                self._produce(m, delivered)
            if offsets:
                self._producer.send_offsets_to_transaction(
                    self._reader.kafka_offsets(offsets),
                    self._consumer.consumer_group_metadata(),
                    _TIMEOUT_S,
                )
            self._producer.commit_transaction(_TIMEOUT_S)
        except KafkaException as err:
            kerr = err.args[0]
            if kerr.fatal() or kerr.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
                _log.error("%s: fenced (%s); stopping", self.instance_id, kerr)
                self._fenced = True
                return
            _log.warning("%s: transaction aborted (%s); rebuilding from the journal", self.instance_id, kerr)
            if kerr.txn_requires_abort():
                self._producer.abort_transaction(_TIMEOUT_S)
            self._rewind_needed = True  # state went ahead of the log: rebuild and re-read
            return
        for partition, end in ends.items():
            if (state := self.states.get(partition)) is not None:
                state.journal_end = end
        if len(ends) < len(journals):  # a report went missing: do not name a guessed position
            for partition in journals.keys() - ends.keys():
                if (state := self.states.get(partition)) is not None:
                    state.journal_end = -1
        self.stats.transactions += 1
        self.stats.outputs += len(messages) + len(journals)

    def _produce(self, m: Message, on_delivery: _Delivered | None = None) -> None:
        while True:
            try:
                self._producer.produce(
                    self._reader.wire(m.topic),
                    m.value,
                    m.key,
                    partition=-1 if m.partition is None else m.partition,
                    headers=list(m.headers),
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.05)

    def close(self) -> None:
        """Leave the group (its partitions move to the other instances) and release clients."""
        try:
            self._consumer.close()
        finally:
            self._broadcast.close()
            self._reader.close()
