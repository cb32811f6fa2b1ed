"""Kafka backend (confluent-kafka): idempotent producer with acks=all, transactions for the
atomic append + offset commit, read_committed readers, and an admin client for topics."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, wait
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
)
from confluent_kafka import (
    TopicPartition as KafkaTopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from meltica.errors import LogError, TransactionAbortedError, UnknownTopicError
from meltica.log.base import EventLog, Message, Position, Record, TopicPartition, TopicSpec, Transaction
from meltica.log.kafka_security import Refusals

_TIMEOUT_S = 30.0
_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._UNKNOWN_PARTITION,  # metadata not back yet after a broker restart
        KafkaError._TIMED_OUT,
    }
)


class KafkaLog(EventLog):
    """The event log on a Kafka cluster.

    Records are placed on partitions by our own murmur2 partitioner, so placement is
    identical to the Java client's default and to the other backends. `transactional_id`
    identifies this writer across restarts: a new instance with the same id fences the old.
    A `namespace` prefixes every topic and group on the cluster (`<namespace>.orders.events`),
    so several systems (or test runs) share a cluster without seeing each other.
    `security` holds librdkafka's security properties (`client_security(settings)`: SASL, TLS); a
    cluster refusing them is a `KafkaAuthenticationError` at the first call that needs it.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        transactional_id: str | None = None,
        client_id: str = "meltica",
        producer_config: Mapping[str, Any] | None = None,
        namespace: str = "",
        security: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.bootstrap = bootstrap
        # What every client of this cluster needs (never logged: it may hold a password).
        self.connection: dict[str, str] = {"bootstrap.servers": bootstrap, **(security or {})}
        self._refusals = Refusals(bootstrap, self.connection)
        client: dict[str, Any] = {**self.connection, "client.id": client_id, "error_cb": self._refusals}
        self.namespace = namespace
        self._prefix = f"{namespace}." if namespace else ""
        self._client_id = client_id
        self._transactional_id = transactional_id or f"{client_id}-{uuid.uuid4()}"
        self._lock = threading.RLock()
        # One transactional producer per log: one transaction at a time (threads sharing the log,
        # such as an embedded engine and a live venue's gateway, take turns).
        self._tx_lock = threading.Lock()
        self._admin = AdminClient(client)
        base = {
            **client,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 1_000_000,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",
        }
        self._producer_config = {**base, **(producer_config or {})}
        self._producer: Producer | None = None
        self._tx_producer: Producer | None = None
        self._reader: Consumer | None = None
        self._groups: dict[str, Consumer] = {}

    def _client(self) -> dict[str, Any]:
        return {**self.connection, "client.id": self._client_id, "error_cb": self._refusals}

    def wire(self, name: str) -> str:
        """The name of topic or group `name` on the cluster."""
        return self._prefix + name

    # -- topics ---------------------------------------------------------------------------
    def create_topic(self, spec: TopicSpec) -> None:
        name = self.wire(spec.name)
        futures = self._admin.create_topics(
            [NewTopic(name, num_partitions=spec.partitions, replication_factor=-1, config=dict(spec.config))],
            operation_timeout=_TIMEOUT_S,
        )
        try:
            self._settle(futures[name])
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise LogError(f"cannot create topic {spec.name!r}: {err}") from err
            existing = self.topics().get(spec.name)
            if existing is not None and existing != spec.partitions:
                raise LogError(f"topic {spec.name!r} exists with {existing} partitions") from err
        self._wait_for_topic(spec.name)

    def _settle(self, future: Future[Any]) -> Any:
        """An admin request's result, failing at once if the cluster refuses our credentials."""
        deadline = time.monotonic() + _TIMEOUT_S
        while not future.done() and time.monotonic() < deadline:
            wait([future], timeout=0.5)
            self._admin.poll(0)
            self._refusals.check()
        return future.result(timeout=0)

    def _metadata(self, topic: str | None = None) -> Any:
        """Cluster metadata, asked in growing slices so a refusal of our credentials shows at once."""
        deadline = time.monotonic() + _TIMEOUT_S
        slice_s = 1.0
        while True:
            try:
                return self._admin.list_topics(topic=topic, timeout=slice_s)
            except KafkaException as err:
                self._admin.poll(0)  # serves the error callback
                self._refusals.check()
                if time.monotonic() > deadline:
                    raise LogError(f"no metadata from the Kafka cluster at {self.bootstrap}: {err}") from err
                slice_s = min(slice_s * 2, max(deadline - time.monotonic(), 0.1))

    def _wait_for_topic(self, name: str) -> None:
        for _ in range(100):
            md = self._metadata(self.wire(name))
            t = md.topics.get(self.wire(name))
            if t is not None and t.error is None and t.partitions:
                self._topic_cache[name] = len(t.partitions)
                return
            threading.Event().wait(0.1)
        raise LogError(f"topic {name!r} did not appear in metadata")

    def topics(self) -> dict[str, int]:
        md = self._metadata()
        n = len(self._prefix)
        return {
            name[n:]: len(t.partitions)
            for name, t in md.topics.items()
            if t.error is None and not name.startswith("__") and name.startswith(self._prefix)
        }

    # -- records --------------------------------------------------------------------------
    def _plain_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._producer_config)
        return self._producer

    def append(self, messages: Sequence[Message]) -> list[Position]:
        with self._lock:
            producer = self._plain_producer()
            positions = self._produce(producer, messages)
            remaining = self._flush(producer)
            if remaining:
                raise LogError(f"{remaining} records not acknowledged within {_TIMEOUT_S}s")
            return self._resolve(positions)

    def _flush(self, producer: Producer) -> int:
        """Wait for acknowledgements (in slices, so a refusal of our credentials shows at once)."""
        deadline = time.monotonic() + _TIMEOUT_S
        while (remaining := int(producer.flush(0.5))) and time.monotonic() < deadline:
            self._refusals.check()
        return remaining

    def _produce(self, producer: Producer, messages: Sequence[Message]) -> list[list[Any]]:
        slots: list[list[Any]] = []
        for m in messages:
            slot: list[Any] = [m.topic, self._partition_of(m, self._partitions_cached(m.topic)), None, None]
            slots.append(slot)

            def done(err: KafkaError | None, msg: Any, slot: list[Any] = slot) -> None:
                if err is not None:
                    slot[3] = err
                else:
                    slot[2] = msg.offset()

            while True:
                try:
                    producer.produce(
                        self.wire(m.topic),
                        m.value,
                        m.key,
                        partition=slot[1],
                        headers=list(m.headers) or None,
                        on_delivery=done,
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        return slots

    @staticmethod
    def _resolve(slots: list[list[Any]]) -> list[Position]:
        out = []
        for topic, partition, offset, err in slots:
            if err is not None:
                raise LogError(f"append to {topic}[{partition}] failed: {err}")
            if offset is None:
                raise LogError(f"append to {topic}[{partition}] was not acknowledged")
            out.append(Position(topic, partition, offset))
        return out

    def _reader_consumer(self) -> Consumer:
        if self._reader is None:
            self._reader = Consumer(
                {
                    **self._client(),
                    "group.id": f"{self._client_id}-reader-{uuid.uuid4()}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",
                    "enable.partition.eof": True,
                    "fetch.wait.max.ms": 10,
                    "max.partition.fetch.bytes": 16 * 1024 * 1024,
                    "fetch.max.bytes": 64 * 1024 * 1024,
                    "queued.max.messages.kbytes": 256 * 1024,
                    "auto.offset.reset": "earliest",
                }
            )
        return self._reader

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[Record]:
        if not 0 <= partition < self._partitions_cached(topic):
            raise UnknownTopicError(f"partition {partition} of {topic!r} does not exist")
        with self._lock:
            consumer = self._reader_consumer()
            start = OFFSET_BEGINNING if offset <= 0 else offset
            consumer.assign([KafkaTopicPartition(self.wire(topic), partition, start)])
            out: list[Record] = []
            deadline = time.monotonic() + _TIMEOUT_S
            try:
                while len(out) < limit:
                    # consume() waits for a full batch or the timeout: poll in short slices until EOF.
                    batch = consumer.consume(min(limit - len(out), 10_000), timeout=0.05)
                    if not batch:
                        self._refusals.check()
                        if time.monotonic() > deadline:
                            raise LogError(f"no answer reading {topic}[{partition}] within {_TIMEOUT_S}s")
                        continue
                    eof = False
                    for msg in batch:
                        err = msg.error()
                        if err is not None:
                            if err.code() == KafkaError._PARTITION_EOF:
                                eof = True
                                break
                            raise LogError(f"reading {topic}[{partition}]: {err}")
                        out.append(record_of(topic, partition, msg))
                        if len(out) >= limit:
                            break
                    if eof:
                        break
            finally:
                consumer.unassign()
            return out

    def end_offset(self, topic: str, partition: int) -> int:
        consumer = self._reader_consumer()
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            try:
                _low, high = consumer.get_watermark_offsets(
                    KafkaTopicPartition(self.wire(topic), partition), timeout=_TIMEOUT_S
                )
                return int(high)
            except KafkaException as err:  # leadership moving (a broker restart): ask again
                code = err.args[0].code()
                if code == KafkaError._UNKNOWN_PARTITION and partition >= self._partitions_cached(topic):
                    raise UnknownTopicError(f"partition {partition} of {topic!r} does not exist") from err
                if code not in _TRANSIENT or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # -- consumer groups ------------------------------------------------------------------
    def _group_consumer(self, group: str) -> Consumer:
        consumer = self._groups.get(group)
        if consumer is None:
            consumer = Consumer(
                {
                    **self._client(),
                    "group.id": self.wire(group),
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                }
            )
            self._groups[group] = consumer
        return consumer

    def committed(self, group: str, tp: TopicPartition) -> int | None:
        got = self._group_consumer(group).committed(
            [KafkaTopicPartition(self.wire(tp.topic), tp.partition)], timeout=_TIMEOUT_S
        )
        off = got[0].offset
        return None if off < 0 else int(off)

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self._group_consumer(group).commit(offsets=self.kafka_offsets(offsets), asynchronous=False)

    def transaction(self, group: str | None = None) -> Transaction:
        """A transaction; another thread's waits until this one is committed or aborted."""
        self._tx_lock.acquire()
        try:
            with self._lock:
                if self._tx_producer is None:
                    self._tx_producer = Producer(
                        {**self._producer_config, "transactional.id": self._transactional_id}
                    )
                    try:
                        self._tx_producer.init_transactions(_TIMEOUT_S)
                    except KafkaException as err:
                        self._tx_producer.poll(0)  # serves the error callback
                        self._tx_producer = None
                        self._refusals.check()
                        raise LogError(f"cannot start a Kafka transaction: {err.args[0]}") from err
                self._tx_producer.begin_transaction()
                return _KafkaTransaction(self, self._tx_producer, group)
        except BaseException:
            self._tx_lock.release()
            raise

    def _drop_tx_producer(self) -> None:
        self._tx_producer = None

    def kafka_offsets(self, offsets: Mapping[TopicPartition, int]) -> list[KafkaTopicPartition]:
        """Offsets as confluent-kafka wants them, on the cluster's topic names."""
        return [KafkaTopicPartition(self.wire(tp.topic), tp.partition, off) for tp, off in offsets.items()]

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(_TIMEOUT_S)
            for consumer in [self._reader, *self._groups.values()]:
                if consumer is not None:
                    consumer.close()
            self._reader = None
            self._groups.clear()


def record_of(topic: str, partition: int, msg: Any) -> Record:
    """A Record from a confluent-kafka Message (headers normalized to bytes values)."""
    headers = tuple((k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in (msg.headers() or ()))
    return Record(
        topic, partition, int(msg.offset()), msg.key(), msg.value() or b"", headers, msg.timestamp()[1]
    )


class _KafkaTransaction(Transaction):
    """A Kafka transaction: records are produced as they are staged and hidden until commit."""

    def __init__(self, log: KafkaLog, producer: Producer, group: str | None) -> None:
        super().__init__()
        self._log = log
        self._producer = producer
        self._group = group
        self._slots: list[list[Any]] = []
        self._holds_turn = True  # the log's transaction lock, released once when this one ends

    def _end(self) -> None:
        if self._holds_turn:
            self._holds_turn = False
            self._log._tx_lock.release()

    def append(self, messages: Iterable[Message]) -> None:
        batch = list(messages)
        super().append(batch)
        self._guard(lambda: self._slots.extend(self._log._produce(self._producer, batch)))

    def _commit(self, messages: Sequence[Message], offsets: Mapping[TopicPartition, int]) -> list[Position]:
        try:
            if offsets and self._group is None:
                self._producer.abort_transaction(_TIMEOUT_S)
                raise LogError("committing offsets needs a consumer group")

            def finish() -> None:
                if offsets and self._group is not None:
                    metadata = self._log._group_consumer(self._group).consumer_group_metadata()
                    self._producer.send_offsets_to_transaction(
                        self._log.kafka_offsets(offsets), metadata, _TIMEOUT_S
                    )
                self._producer.commit_transaction(_TIMEOUT_S)

            self._guard(finish)
        finally:
            self._end()
        return self._log._resolve(self._slots)

    def _abort(self, messages: Sequence[Message]) -> None:
        try:
            self._guard(lambda: self._producer.abort_transaction(_TIMEOUT_S))
        finally:
            self._end()

    def _guard(self, step: Callable[[], None]) -> None:
        """Run a transactional step; abort what can be aborted, drop a fenced producer."""
        try:
            step()
        except KafkaException as err:
            kerr = err.args[0]
            self._done = True  # ended here: no commit or abort follows
            try:
                if kerr.fatal():
                    self._log._drop_tx_producer()
                    raise TransactionAbortedError(f"transactional producer fenced or failed: {kerr}") from err
                if kerr.txn_requires_abort():
                    self._producer.abort_transaction(_TIMEOUT_S)
                raise TransactionAbortedError(f"kafka transaction failed: {kerr}") from err
            finally:
                self._end()
