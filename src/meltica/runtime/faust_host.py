"""The same processors as faust-streaming agents (`faust -A streams.app worker`, or
`meltica run --host faust <processor>`).

Each processor is one agent over its keyed topics; faust's group assigns co-partitioned
partitions and, with `processing_guarantee="exactly_once"`, commits the source offsets in a
Kafka transaction per partition. A partition's state and journal are those of
`meltica.runtime.partitions`, exactly as in the confluent-kafka host: the state is rebuilt from
the journal when the partition is (re)assigned, broadcast topics are read by a side consumer
and applied, in journaled order, before each keyed record.

Limits of this host (why the confluent-kafka host is the default): an agent only runs when a
keyed record arrives, so market data alone (a stop trigger, an expiry) acts with the next keyed
record; and faust's exactly-once does not survive SIGKILL (outputs and source offsets are not
committed atomically: duplicates, or inputs missing from a rebuilt state) — see
`tests/distributed/test_faust_host.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import faust
from confluent_kafka import Consumer

from meltica.clock import Clock, LiveClock
from meltica.events.codec import Codec
from meltica.log.base import Record, TopicPartition
from meltica.log.kafka import KafkaLog, record_of
from meltica.runtime.partitions import PartitionedProcessor, PartitionState
from meltica.runtime.processor import Processor

_log = logging.getLogger("meltica.faust")


class BroadcastReader:
    """Reads every partition of the broadcast topics from the start into memory, in a thread."""

    def __init__(self, log: KafkaLog, topics: Sequence[str]) -> None:
        self._log = log
        self._logical = {log.wire(t): t for t in topics}
        self.records: dict[TopicPartition, list[Record]] = {
            TopicPartition(t, p): [] for t in topics for p in range(log.partitions(t))
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **log.connection,
                "group.id": log.wire(f"faust-broadcast-{id(self)}"),  # never commits
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 5,
            }
        )
        self._consumer.assign(log.kafka_offsets(dict.fromkeys(self.records, 0)))
        self._thread = threading.Thread(target=self._run, name="broadcast", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self._consumer.consume(1000, timeout=0.05):
                if m.error():
                    continue
                rec = record_of(self._logical[str(m.topic())], int(m.partition() or 0), m)
                with self._lock:
                    self.records[TopicPartition(rec.topic, rec.partition)].append(rec)

    def wait_until_read(self, ends: dict[TopicPartition, int], timeout_s: float = 30.0) -> None:
        """Until every partition is read up to `ends` (less a possible transaction marker)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                read = {tp: recs[-1].offset + 1 if recs else 0 for tp, recs in self.records.items()}
            behind = [tp for tp, end in ends.items() if read[tp] < end - 1]
            if not behind:
                return
            time.sleep(0.01)

    def after(self, positions: dict[TopicPartition, int]) -> list[Record]:
        """The records past `positions`, partition by partition."""
        out: list[Record] = []
        with self._lock:
            for tp, recs in self.records.items():
                start = positions.get(tp, 0)
                if recs and recs[-1].offset >= start:
                    out += [r for r in recs if r.offset >= start]
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def build_app(
    app_id: str,
    makers: dict[str, Callable[[int], Processor]],
    inputs: Mapping[str, Sequence[str]],
    *,
    bootstrap: str,
    codec: Codec,
    namespace: str = "",
    security: Mapping[str, str] | None = None,
    credentials: Any = None,
    clock: Clock | None = None,
) -> faust.App:
    """A faust app with one exactly-once agent per processor in `makers` (reading its `inputs`);
    `security` (librdkafka) and `credentials` (faust's, the same settings) are `kafka_security`'s."""
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=credentials,
        processing_guarantee="exactly_once",
        consumer_auto_offset_reset="earliest",
        # a loop starved for a while on a loaded machine must not cost the group its member: a
        # rebalance is where faust's exactly-once gives way (a command applied twice)
        broker_session_timeout=30,
        broker_heartbeat_interval=3,
        store="memory://",
        web_enabled=False,
        topic_allow_declare=False,
    )
    reader = KafkaLog(bootstrap, client_id=f"{app_id}-reader", namespace=namespace, security=security)
    outputs: dict[str, Any] = {}

    def out_topic(name: str) -> Any:
        if name not in outputs:
            outputs[name] = app.topic(reader.wire(name), key_serializer="raw", value_serializer="raw")
        return outputs[name]

    for name, make in makers.items():
        _agent(app, name, make, inputs[name], codec=codec, reader=reader, out_topic=out_topic, clock=clock)
    return app


def _agent(
    app: faust.App,
    name: str,
    make: Callable[[int], Processor],
    inputs: Sequence[str],
    *,
    codec: Codec,
    reader: KafkaLog,
    out_topic: Callable[[str], Any],
    clock: Clock | None = None,
) -> None:
    core = PartitionedProcessor(name, make, inputs, codec=codec, reader=reader, clock=clock or LiveClock())
    logical = {reader.wire(t): t for t in core.keyed}
    source = app.topic(*logical, key_serializer="raw", value_serializer="raw")
    states: dict[int, PartitionState] = {}
    broadcast: list[BroadcastReader] = []

    async def forget(*args: Any, **kwargs: Any) -> None:
        states.clear()  # rebuilt from the journal with the next record of each partition

    app.on_partitions_revoked.connect(forget)
    app.on_partitions_assigned.connect(forget)

    async def process(stream: Any) -> AsyncIterator[None]:
        async for ev in stream.events():
            msg = ev.message
            headers = tuple(
                (k, v if isinstance(v, bytes) else str(v or "").encode()) for k, v in (msg.headers or ())
            )
            rec = Record(
                logical[msg.topic],
                msg.partition,
                msg.offset,
                msg.key,
                msg.value or b"",
                headers,
                int(msg.timestamp * 1000),
            )
            if not broadcast:
                broadcast.append(BroadcastReader(reader, core.broadcast))
            state = states.get(rec.partition)
            if state is None:
                state = states[rec.partition] = core.restore(rec.partition)
                ends = {tp: reader.end_offset(*tp) for tp in state.broadcast_pos}
                broadcast[0].wait_until_read(ends)
            messages = []
            for b in broadcast[0].after(state.broadcast_pos):
                messages += core.apply(state, b, live=True)
                state.broadcast_pos[TopicPartition(b.topic, b.partition)] = b.offset + 1
            messages += core.apply(state, rec, live=True)
            journal = core.journal_message(state)
            for m in [*messages, *([journal] if journal else [])]:
                await out_topic(m.topic).send(
                    key=m.key, value=m.value, partition=m.partition, headers=list(m.headers)
                )
            yield None

    app.agent(source, name=f"meltica-{name}")(process)
