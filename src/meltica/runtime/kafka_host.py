"""One processor as a Kafka service (confluent-kafka): a consumer group member with exactly-once
transactions.

The group's range assignor gives an instance the same partition numbers of every keyed input;
it keeps one `PartitionState` per owned partition (see `meltica.runtime.partitions`). Broadcast
topics are read by a second consumer outside the group. Each poll is one Kafka transaction:
the outputs, dead letters, the group's keyed offsets (`send_offsets_to_transaction` with the
consumer's group metadata, so a zombie is fenced) and each partition's `InputJournal`. When a
partition is assigned its state is rebuilt from the journal, and the broadcast topics are read
to their end before any keyed input (global-table semantics).

A transactional call that outlives its timeout by far means the client is wedged (librdkafka can
wait for ever on a group coordinator that went away with a broker restart, its issues #5456 and
#5511): a watchdog then ends the process, as a crash would, so that a fresh instance fences the
open transaction and takes over. Exactly-once holds across it as across any crash. The watchdog
also ends a catch-up of the broadcast topics that makes no progress; before that, the catch-up
recovers in place (a new broadcast consumer, the ends noted again). A static member fenced by
its own successor (a broker restart can leave the group with two members of one instance id)
leaves and joins the group again with a new consumer.

A processor with no keyed input (the bar builder reads only market data) joins the group on its
own journal topic, so that its instances still split the partitions between them.

Batching is latency-aware: records are stepped as they are polled (an idle poll returns at the first
record), and a batch is committed when it is full (`max_batch` records) or `linger_s` old, whichever
comes first. While a transaction commits on the committer thread, the next batch is polled and
stepped (`overlap`); it is produced and committed once that commit has returned (a transactional
producer has one transaction open at a time). If the commit fails, the stepped batch is dropped with
the state it went ahead on, and the partitions are rebuilt from the journal (as before).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from meltica.clock import Clock, LiveClock
from meltica.errors import LogError
from meltica.events.codec import Codec
from meltica.log.base import Message, Record, TopicPartition
from meltica.log.kafka import KafkaLog, record_of
from meltica.runtime.partitions import PartitionedProcessor, PartitionState
from meltica.runtime.processor import Processor
from meltica.topics import SNAPSHOT_MAX_BYTES

PRODUCER_HEADER = "meltica.producer"
_TIMEOUT_S = 30.0
_WEDGED_S = _TIMEOUT_S + 30.0  # a transactional call still blocked after this will not return
_RESEEK_S = 10.0  # a catch-up with no progress for this long starts over on a new broadcast consumer
_STALLED_S = 90.0  # ... and one with no progress for this long ends the process (the watchdog)
EXIT_WEDGED = 75  # EX_TEMPFAIL: the process ends so that its supervisor starts it again
_IDLE_POLL_S = 0.005  # an idle poll returns at the first record or after this (broadcast inputs wait)
_OVERLAP_POLL_S = 0.001  # while a commit is in flight: look for records, or for its end, this often
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


@dataclass
class _Batch:
    """Records stepped and not committed yet: what the next transaction writes."""

    messages: list[Message] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    records: int = 0
    since: float = 0.0  # time.monotonic() of its first record


@dataclass
class _InFlight:
    """A transaction committing on the committer thread, and what it settles when it returns."""

    future: Future[KafkaError | None]
    journals: dict[int, Message]
    ends: dict[int, int]  # journal partition -> offset after its entry (from the delivery reports)
    messages: int


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
        linger_s: float = 0.002,
        overlap: bool = True,
        snapshot_every: int = 10_000,
        on_wedged: Callable[[], None] | None = None,
        security: Mapping[str, str] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> None:
        self.name = name
        self.on_wedged = on_wedged or (lambda: os._exit(EXIT_WEDGED))
        self._blocked_since: float | None = None  # when the transactional call in progress began
        self.snapshot_every = snapshot_every
        self.partitions = partitions
        self.max_batch = max_batch
        self.linger_s = linger_s  # a batch is committed when full or this old, whichever comes first
        self.overlap = overlap  # step the next batch while the previous one commits
        self._batch = _Batch()
        self._inflight: _InFlight | None = None
        self._committer = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-commit")
        self.group = f"meltica-{name}"
        self.instance_id = instance_id or f"{name}-{uuid.uuid4().hex[:12]}"
        # A named instance is a static group member: restarted under the same name it takes its
        # partitions back at once instead of waiting for the session of its dead self to time out.
        self._static = {"group.instance.id": f"meltica-{instance_id}"} if instance_id else {}
        self.stats = HostStats()
        # ("step", seconds) of each live input, ("commit", seconds) of each commit
        self.timings: list[Callable[[str, float], None]] = []
        self.states: dict[int, PartitionState] = {}
        self.ready = threading.Event()
        self._reader = KafkaLog(
            bootstrap, client_id=f"meltica-{name}-reader", namespace=namespace, security=security
        )
        wire = self._reader.wire
        self.wire_group = wire(self.group)  # the group's name on the cluster (namespaced)
        self._logical = {wire(t): t for t in inputs}
        self.core = PartitionedProcessor(
            name, make, inputs, codec=codec, reader=self._reader, clock=clock or LiveClock(), outputs=outputs
        )
        self.keyed, self.broadcast = self.core.keyed, self.core.broadcast
        # With no keyed input the group is joined on the journal topic, only to share partitions.
        self._membership = [wire(t) for t in self.keyed] or [wire(self.core.journal)]
        self._common = {**self._reader.connection, "client.id": f"meltica-{name}"}  # with SASL/TLS
        self._consumer = self._new_consumer()
        self._broadcast = self._new_broadcast()
        self._producer_config = {
            **self._common,
            "transactional.id": wire(self.instance_id),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "compression.type": "lz4",
            "message.max.bytes": SNAPSHOT_MAX_BYTES,  # a snapshot is one record
        }
        self._producer = self._new_producer()
        self._renew_producer = False
        self._rewind_needed = False
        self._fenced = False
        self._catchup: dict[TopicPartition, int] | None = None  # None: not catching up
        self._at_end: set[TopicPartition] = set()  # broadcast partitions read to their catch-up end
        self._progress_at = time.monotonic()  # the catch-up's last progress
        self._seen: dict[TopicPartition, int] = {}  # the broadcast consumer's positions then
        self.recoveries = 0  # catch-ups started over, consumers replaced
        self._rejoins: list[float] = []  # when the group member was last replaced

    def _new_consumer(self) -> Consumer:
        """The group member reading the keyed inputs."""
        return Consumer(
            {
                **self._common,
                "group.id": self.wire_group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                "fetch.wait.max.ms": 5,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                **self._static,
            }
        )

    def _new_broadcast(self) -> Consumer:
        """The reader of the broadcast topics, outside the group (it never commits)."""
        return Consumer(
            {
                **self._common,
                "group.id": f"{self.wire_group}-broadcast-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                "enable.partition.eof": True,  # how the catch-up knows it has read to the end
            }
        )

    # -- assignment -------------------------------------------------------------------------
    # Eager rebalancing: revoke takes every partition, assign hands out the new set. Both run
    # inside consume(), between batches, when no transaction is open. The keyed inputs resume
    # at the group's committed offsets, which the journal's last transaction also wrote.
    def _on_assign(self, consumer: Consumer, assigned: list[KafkaTopicPartition]) -> None:
        self._drop()
        self.stats.rebalances += 1
        owned = sorted({tp.partition for tp in assigned})
        _log.info("%s: assigned partitions %s of group %s", self.instance_id, owned, self.wire_group)
        self.states = {p: self.core.restore(p) for p in owned}
        self._assign_broadcast()
        # Like a global table: the broadcast topics are read up to their current end before any
        # keyed input, so a (re)started service knows every instrument, limit and price first.
        for tp in assigned:
            if tp.topic not in self._logical:  # the journal joined only for membership: skip its past
                tp.offset = OFFSET_END
        consumer.assign(assigned)
        consumer.pause(assigned)
        self._start_catch_up()

    def _start_catch_up(self) -> None:
        """Note the broadcast topics' ends (they are noted again if the broker does not answer)."""
        self._catchup, self._at_end, self._seen = {}, set(), {}
        self._progress_at = time.monotonic()
        self._note_ends()

    def _note_ends(self) -> bool:
        try:
            self._catchup = {tp: self._reader.end_offset(*tp) for tp in self.core.initial_broadcast_pos()}
            return True
        except (KafkaException, LogError) as err:  # the broker is away: the catch-up asks again
            _log.warning("%s: broadcast ends unknown (%s); asking again", self.instance_id, err)
            self._catchup = {}
            return False

    def _catch_up(self) -> None:
        """Apply broadcast records until they are read to the ends noted at assignment.

        A partition is caught up when every state has applied up to its end, or when the consumer
        reports reaching an end at or past it, or its position is there: the offsets before an end
        may hold no record to apply (transaction markers, and the records of an aborted
        transaction, such as one a broker restart left open). A catch-up with no progress for
        `_RESEEK_S` starts over on a new broadcast consumer; the watchdog ends one stalled for
        `_STALLED_S`."""
        if not self._catchup and not self._note_ends():
            self._stalled()
            return
        batch = self._broadcast.consume(self.max_batch, timeout=0.1)
        targets = self._catchup or {}
        for m in batch:
            err = m.error()
            if err is not None and err.code() == KafkaError._PARTITION_EOF:
                tp = TopicPartition(self._logical[str(m.topic())], int(m.partition() or 0))
                if int(m.offset() or 0) >= targets.get(tp, 0):
                    self._at_end.add(tp)
        records = self._records(batch)
        if records:
            self._progress_at = time.monotonic()
            self._apply(records)
            self._flush()
            self._settle(block=True)
            return
        self._check_positions(targets)
        behind = [
            tp
            for tp, end in targets.items()
            if tp not in self._at_end and any(s.broadcast_pos[tp] < end for s in self.states.values())
        ]
        if not behind:
            self._catchup = None
            self._consumer.resume(self._consumer.assignment())
            self.ready.set()
            return
        self._stalled()

    def _check_positions(self, targets: dict[TopicPartition, int]) -> None:
        """Mark the partitions whose consumer position reached its end; note any progress."""
        wanted = [KafkaTopicPartition(self._reader.wire(tp.topic), tp.partition) for tp in targets]
        try:
            positions = self._broadcast.position(wanted) if wanted else []
        except KafkaException:
            return
        for kp in positions:
            tp = TopicPartition(self._logical[kp.topic], kp.partition)
            if kp.offset < 0:
                continue
            if kp.offset > self._seen.get(tp, -1):
                self._seen[tp] = kp.offset
                self._progress_at = time.monotonic()
            if kp.offset >= targets[tp]:
                self._at_end.add(tp)

    def _stalled(self) -> None:
        """A catch-up without progress for `_RESEEK_S`: a new broadcast consumer, the ends noted
        again (a consumer can stay stuck on a broker that went away and came back)."""
        if time.monotonic() - self._progress_at < _RESEEK_S:
            return
        _log.warning(
            "%s: catch-up of the broadcast topics made no progress for %.0f s; starting it over",
            self.instance_id,
            time.monotonic() - self._progress_at,
        )
        old, self._broadcast = self._broadcast, self._new_broadcast()
        old.close()
        self._assign_broadcast()
        since = self._progress_at
        self._start_catch_up()
        self._progress_at = since  # the watchdog still counts from the last real progress
        self.recoveries += 1  # (counted once done: a reader of the count sees the new consumer)

    def _on_lost(self, consumer: Consumer, lost: list[KafkaTopicPartition]) -> None:
        """The group went on without us (the broker or the network was away past the session): the
        next transaction starts on a new producer. One that lived through the outage can wait for
        ever on a coordinator it remembers from before (librdkafka #5511)."""
        self._drop()
        self._renew_producer = True
        self._on_revoke(consumer, lost)

    def _new_producer(self) -> Producer:
        """A transactional producer under this instance's id (fencing any earlier one)."""
        producer = Producer(self._producer_config)
        producer.init_transactions(_TIMEOUT_S)
        return producer

    def _on_revoke(self, consumer: Consumer, revoked: list[KafkaTopicPartition]) -> None:
        self._drop()
        self.ready.clear()
        self.states = {}
        self._assign_broadcast()

    def _rewind(self) -> None:
        """After an aborted transaction: rebuild the states and re-read from the committed offsets."""
        self._drop()
        assignment = self._consumer.assignment()
        self.states = {p: self.core.restore(p) for p in sorted({tp.partition for tp in assignment})}
        for tp in assignment:
            if tp.topic not in self._logical:
                continue  # the journal joined only for membership
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
        done = threading.Event()
        threading.Thread(target=self._watch, args=(done,), name="watchdog", daemon=True).start()
        try:
            self._run(stop)
        finally:
            done.set()

    def _watch(self, done: threading.Event, every_s: float = 1.0) -> None:
        """End the process (`on_wedged`) when a transactional call has blocked past any timeout,
        or when a catch-up has made no progress for `_STALLED_S`."""
        while not done.wait(every_s):
            now = time.monotonic()
            since = self._blocked_since
            if since is not None and now - since > _WEDGED_S:
                what = "a transactional call has not returned"
            elif self._catchup is not None and self.states and now - self._progress_at > _STALLED_S:
                since, what = self._progress_at, "the catch-up of the broadcast topics made no progress"
            else:
                continue
            _log.critical(
                "%s: %s for %.0f s; exiting (status %d) so that a new instance takes over",
                self.instance_id,
                what,
                now - since,
                EXIT_WEDGED,
            )
            self.on_wedged()
            return

    def _subscribe(self) -> None:
        self._consumer.subscribe(
            self._membership, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _rejoin(self, err: KafkaError) -> None:
        """The group member failed for good (a static member fenced by another with its instance
        id, which a broker restart can leave behind): drop the partitions and join again on a new
        consumer; the next transaction starts on a new producer, fencing the old one."""
        _log.warning(
            "%s: group member failed (%s); joining group %s again", self.instance_id, err, self.wire_group
        )
        self.recoveries += 1
        now = time.monotonic()
        self._rejoins = [t for t in self._rejoins if now - t < 60.0] + [now]
        if len(self._rejoins) > 3:  # fenced again and again: another live process has this instance id
            _log.critical(
                "%s: fenced 4 times within 60 s; is the instance id in use twice?", self.instance_id
            )
            self.on_wedged()
            return
        self._drop()
        self.ready.clear()
        self.states, self._catchup = {}, None
        self._broadcast.unassign()
        self._renew_producer = True
        old, self._consumer = self._consumer, self._new_consumer()
        self._blocked_since = time.monotonic()  # watched: closing a failed member must not hang
        try:
            old.close()
        except KafkaException as close_err:
            _log.info("%s: closing the failed member: %s", self.instance_id, close_err)
        finally:
            self._blocked_since = None
        self._subscribe()

    def _run(self, stop: threading.Event) -> None:
        self._subscribe()
        try:
            self._loop(stop)
            self._settle(block=True)
            if self._batch.records and not self._fenced and not self._rewind_needed:
                self._flush()  # what was stepped is committed before leaving
                self._settle(block=True)
            if self._fenced or self._rewind_needed:
                return
            if self.snapshot_every and self._catchup is None:  # leaving cleanly: the next owner starts here
                self._snapshot([s for s in self.states.values() if s.since_snapshot])
        finally:
            self.close()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self._fenced:
            self.stats.last_loop = time.monotonic()
            keyed = self._poll()
            failed = next((e for m in keyed if (e := m.error()) is not None and _member_failed(e)), None)
            if failed is not None:
                self._rejoin(failed)
                continue
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
                self._apply(records)
            self._settle(block=False)
            if self._inflight is not None or self._rewind_needed or self._fenced:
                continue
            batch = self._batch
            due = [s for s in self.states.values() if s.since_snapshot >= self.snapshot_every]
            if batch.records and (
                batch.records >= self.max_batch
                or time.monotonic() - batch.since >= self.linger_s
                or (self.snapshot_every and due)
            ):
                self._flush()
            if self.snapshot_every and due:  # a snapshot is exactly what the committed journal holds
                self._settle(block=True)
                if not self._batch.records:
                    self._snapshot(due)

    def _poll(self) -> list[Any]:
        """The next keyed records: at most what the batch has room for. Idle, it waits for the first
        record (up to `_IDLE_POLL_S`); lingering, until the batch is due; with a commit in flight, it
        takes what is there, else waits a little for records or the commit's end."""
        room = self.max_batch - self._batch.records
        inflight = self._inflight
        if room <= 0:
            if inflight is not None:
                wait_for([inflight.future], timeout=_IDLE_POLL_S)
            return []
        got: list[Any] = self._consumer.consume(room, timeout=0)
        if got:
            return got
        if inflight is not None:
            wait_for([inflight.future], timeout=_OVERLAP_POLL_S)
            return []
        if self._batch.records:
            timeout = self._batch.since + self.linger_s - time.monotonic()
            if timeout <= 0:
                return []
        else:
            timeout = _IDLE_POLL_S
        first = self._consumer.poll(timeout)  # returns at the first record, unlike consume
        if first is None:
            return []
        return [first, *self._consumer.consume(room - 1, timeout=0)] if room > 1 else [first]

    def _records(self, batch: list[Any]) -> list[Record]:
        """The consumed messages as records of their logical topics (error events dropped)."""
        logical = self._logical
        return [
            record_of(logical[str(m.topic())], int(m.partition() or 0), m)
            for m in batch
            if not m.error() and m.topic() in logical  # the membership journal's records are not inputs
        ]

    def _apply(self, records: list[Record]) -> None:
        """Step `records` into the batch: the states move on, the outputs wait for its commit."""
        batch = self._batch
        if not batch.records:
            batch.since = time.monotonic()
        timings = self.timings
        for rec in records:
            started = time.perf_counter() if timings else 0.0
            tp = TopicPartition(rec.topic, rec.partition)
            if rec.topic in self.broadcast:
                targets = [s for s in self.states.values() if s.broadcast_pos.get(tp, 0) <= rec.offset]
            else:
                state = self.states.get(rec.partition)
                if state is None:
                    continue  # not ours (any more): its owner reads it from the committed offset
                batch.offsets[tp] = rec.offset + 1
                targets = [state]
            for state in targets:
                batch.messages += self.core.apply(state, rec, live=True)
                if rec.topic in self.broadcast:
                    state.broadcast_pos[tp] = rec.offset + 1
            for timed in timings:
                timed("step", time.perf_counter() - started)
        batch.records += len(records)
        self.stats.records += len(records)

    def _snapshot(self, states: list[PartitionState]) -> None:
        """Save `states` (each exactly what its committed journal holds) in a transaction of its own;
        a failure costs nothing but a longer rebuild."""
        states = [s for s in states if s.journal_end >= 0]
        if not states or self._fenced or self._rewind_needed:
            return
        messages = [self.core.snapshot_message(s) for s in states]
        failed = self._transact(messages)
        if failed is not None:
            if not self._fenced:
                _log.warning("%s: snapshot not written (%s)", self.instance_id, failed)
            return
        self.stats.snapshots += len(messages)
        _log.info("%s: saved partitions %s", self.instance_id, [s.partition for s in states])

    def _flush(self) -> None:
        """Commit the batch: its messages and the partition journals with its input offsets, in one
        transaction on the committer thread (waited for here unless `overlap`).

        Each journal entry's offset comes back in its delivery report (served while committing):
        a snapshot names exactly the journal it covers. The end offset cannot stand in for it, as
        the broker writes commit markers after the commit returns."""
        batch, self._batch = self._batch, _Batch()
        journals = {s.partition: j for s in self.states.values() if (j := self.core.journal_message(s))}
        ends: dict[int, int] = {}

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is None:
                ends[int(msg.partition())] = int(msg.offset()) + 1

        def commit() -> KafkaError | None:
            started = time.perf_counter()
            failed = self._transact(batch.messages, batch.offsets, list(journals.values()), delivered)
            for timed in self.timings:
                timed("commit", time.perf_counter() - started)
            return failed

        future = self._committer.submit(commit)
        self._inflight = _InFlight(future, journals, ends, len(batch.messages))
        if not self.overlap:
            self._settle(block=True)

    def _settle(self, *, block: bool) -> None:
        """Take the result of the transaction in flight once it has returned (waiting for it if
        `block`). A failed one drops the batch stepped since and has the partitions rebuilt."""
        inflight = self._inflight
        if inflight is None or not (block or inflight.future.done()):
            return
        self._inflight = None
        failed = inflight.future.result()
        if failed is not None:
            self._batch = _Batch()  # stepped on states that went ahead of the log
            if self._fenced:
                _log.error("%s: fenced (%s); stopping", self.instance_id, failed)
            else:
                _log.warning("%s: transaction aborted (%s); rebuilding", self.instance_id, failed)
                self._rewind_needed = True  # state went ahead of the log: rebuild and re-read
            return
        for partition in inflight.journals:
            if (state := self.states.get(partition)) is not None:
                state.journal_end = inflight.ends.get(partition, -1)  # no report: name no guessed position
        self.stats.transactions += 1
        self.stats.outputs += inflight.messages + len(inflight.journals)

    def _drop(self) -> None:
        """Before the states are replaced: wait for the commit in flight, drop the batch stepped
        since (uncommitted, its inputs are read again from the committed offsets)."""
        self._settle(block=True)
        self._batch = _Batch()
        self._rewind_needed = False  # the states are rebuilt by the caller

    def _transact(
        self,
        messages: list[Message],
        offsets: dict[TopicPartition, int] | None = None,
        journals: Sequence[Message] = (),
        delivered: _Delivered | None = None,
    ) -> KafkaError | None:
        """One transaction: `messages`, `journals` (reported to `delivered`) and the group's
        `offsets`. None when it committed, else the error, the transaction aborted where the client
        requires it (a fenced or fatally failed producer sets `_fenced`)."""
        self._blocked_since = time.monotonic()  # watched: see _watch
        try:
            if self._renew_producer:
                self._producer = self._new_producer()
                self._renew_producer = False
            self._producer.begin_transaction()
            for m in messages:
                self._produce(m)
            for m in journals:
                self._produce(m, delivered)
            if offsets:
                self._producer.send_offsets_to_transaction(
                    self._reader.kafka_offsets(offsets),
                    self._consumer.consumer_group_metadata(),
                    _TIMEOUT_S,
                )
            self._producer.commit_transaction(_TIMEOUT_S)
            return None
        except KafkaException as err:
            kerr: KafkaError = err.args[0]
            if kerr.fatal() or kerr.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
                self._fenced = True
            elif kerr.txn_requires_abort():
                self._producer.abort_transaction(_TIMEOUT_S)
            return kerr
        finally:
            self._blocked_since = None

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
            self._committer.shutdown(wait=True)
            self._broadcast.close()
            self._reader.close()


def _member_failed(err: KafkaError) -> bool:
    """A consumer error after which the group member cannot go on."""
    fatal = (KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID)  # a fatal error comes as _FATAL
    return bool(err.fatal()) or err.code() in fatal
