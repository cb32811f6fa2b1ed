"""The embedded runtime: hosts every processor on one event log, one step at a time.

A step is one record of an external topic (a command, a tick, an instrument), delivered
to the processors that read its topic, in a fixed order; their outputs are delivered in
memory to the processors that read those topics, until nothing is left to deliver. A batch
of steps is committed in one atomic transaction: all outputs, dead letters and the engine's
position in every external topic. Steps are deterministic, so after a crash the engine
rebuilds every processor's state by replaying the committed steps (the same inputs in the
same order, outputs discarded) and resumes with the next record: nothing lost, nothing
doubled. Records the engine itself wrote to an external topic (a strategy's commands)
carry the `meltica.engine` header and are not taken as external input.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from meltica import telemetry
from meltica.clock import Clock, LiveClock
from meltica.errors import DecodeError, EncodeError, MelticaError
from meltica.events.codec import Codec
from meltica.events.consumer import dead_letter
from meltica.events.mapping import avro_name, from_record
from meltica.log.base import EventLog, Headers, Message, Record, TopicPartition
from meltica.runtime.processor import Output, Processor, output_meta

ENGINE_GROUP = "meltica-engine"
ENGINE_HEADER = "meltica.engine"


@dataclass
class StepResult:
    """What one step produced."""

    messages: list[Message] = field(default_factory=list)
    dead_letters: list[Message] = field(default_factory=list)


@dataclass
class EngineStats:
    steps: int = 0
    outputs: int = 0
    dead_letters: int = 0
    replayed: int = 0


class Engine:
    """Processors on an event log, driven by the records of the external topics."""

    def __init__(
        self,
        log: EventLog,
        codec: Codec,
        processors: Sequence[Processor],
        *,
        external_topics: Sequence[str],
        clock: Clock | None = None,
        tracer: Tracer | None = None,
        group: str = ENGINE_GROUP,
    ) -> None:
        self.log = log
        self.codec = codec
        self.processors = list(processors)
        self.clock = clock or LiveClock()
        self.tracer = tracer or trace.get_tracer("meltica.runtime")
        self.group = group
        self.external_topics = list(external_topics)
        self.stats = EngineStats()
        self._subscribers: dict[str, list[Processor]] = {}
        for p in self.processors:
            for topic in p.inputs:
                self._subscribers.setdefault(topic, []).append(p)
        self._cursor: dict[TopicPartition, int] = {}
        self._traces: dict[str, Headers] = {}
        self._seen_sequence: int | None = None
        self._recovered = False
        self._decoded: dict[bytes, tuple[Any, dict[str, Any]]] = {}

    # -- positions ------------------------------------------------------------------------------
    def _load_cursor(self) -> None:
        for topic in self.external_topics:
            for p in range(self.log.partitions(topic)):
                tp = TopicPartition(topic, p)
                self._cursor[tp] = self.log.committed(self.group, tp) or 0

    def _pending(self, limit: int, upto: dict[TopicPartition, int] | None = None) -> list[Record]:
        """External records after the cursor in global append order (at most `limit`)."""
        batches: list[list[Record]] = []
        cutoff: int | None = None
        ends = self.log.end_offsets(list(self._cursor))
        for tp, pos in self._cursor.items():
            end = None if upto is None else upto.get(tp, 0)
            if ends[tp] <= pos or (end is not None and pos >= end):
                continue
            n = limit if end is None else min(limit, end - pos)
            records = self.log.read(tp.topic, tp.partition, pos, n)
            if end is not None:
                records = [r for r in records if r.offset < end]
            if records:
                batches.append(records)
                if len(records) == n and (end is None or records[-1].offset + 1 < end):
                    last = _order(records[-1])
                    cutoff = last if cutoff is None else min(cutoff, last)
        merged = sorted((r for b in batches for r in b), key=_order_key)
        if cutoff is not None:
            merged = [r for r in merged if _order(r) <= cutoff]
        return merged[:limit]

    @property
    def positions(self) -> dict[TopicPartition, int]:
        """The next record of every input partition (everything before it is applied)."""
        return dict(self._cursor)

    # -- recovery ---------------------------------------------------------------------------------
    def recover(self, start: tuple[Sequence[Processor], dict[TopicPartition, int]] | None = None) -> int:
        """Rebuild every processor's state by replaying the committed steps; with `start` (the
        processors and positions of a snapshot), only the steps after it. Returns their number."""
        self._load_cursor()
        committed = dict(self._cursor)
        self._cursor = dict.fromkeys(committed, 0)
        if start is not None:
            processors, positions = start
            if [p.name for p in processors] != [p.name for p in self.processors]:
                raise MelticaError("the snapshot holds other processors than this engine runs")
            ahead = [tp for tp, off in positions.items() if off > committed.get(tp, 0)]
            if ahead:
                raise MelticaError(
                    f"the snapshot is ahead of this log at {ahead[0].topic}[{ahead[0].partition}]"
                )
            self.processors = list(processors)
            self._subscribers = {}
            for p in self.processors:
                for topic in p.inputs:
                    self._subscribers.setdefault(topic, []).append(p)
            self._cursor.update({tp: off for tp, off in positions.items() if tp in committed})
        replayed = 0
        while True:
            records = self._pending(5000, upto=committed)
            if not records:
                break
            for rec in records:
                self._cursor[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
                if not _is_engine_record(rec):
                    self._step(rec, live=False)
                    replayed += 1
        self._cursor = committed
        self.stats.replayed = replayed
        self._recovered = True
        return replayed

    # -- running ----------------------------------------------------------------------------------
    def poll_once(self, max_steps: int = 500) -> int:
        """Process up to `max_steps` available external records and commit them. Returns how many."""
        if not self._recovered:
            self.recover()
        sequence = self.log.last_sequence()
        if sequence is not None and sequence == self._seen_sequence:
            return 0  # nothing was appended anywhere since we last looked
        records = self._pending(max_steps)
        if not records:
            self._seen_sequence = sequence
            return 0
        out: list[Message] = []
        dead: list[Message] = []
        cursor = dict(self._cursor)
        steps = 0
        for rec in records:
            cursor[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
            if _is_engine_record(rec):
                continue
            result = self._step(rec, live=True)
            out += result.messages
            dead += result.dead_letters
            steps += 1
        self.log.append_and_commit([*out, *dead], self.group, cursor)
        self._cursor = cursor
        self.stats.steps += steps
        self.stats.outputs += len(out)
        self.stats.dead_letters += len(dead)
        return steps

    def run(self, stop: threading.Event, *, poll_interval: float = 0.002, max_steps: int = 500) -> None:
        """Poll and process until `stop` is set; the batch in flight is committed before returning."""
        if not self._recovered:
            self.recover()
        while not stop.is_set():
            if self.poll_once(max_steps) == 0:
                stop.wait(poll_interval)

    def drain(self, max_steps: int = 500) -> int:
        """Process everything available now (tests, backtests)."""
        total = 0
        while n := self.poll_once(max_steps):
            total += n
        return total

    def decoded(self, value: bytes, event: Any, meta: dict[str, Any]) -> None:
        """Note what a record about to be appended holds (a writer in this process, such as a
        backtest feeding its data): the step that reads those bytes takes `event` and its
        envelope `meta` instead of decoding them again."""
        self._decoded[value] = (event, meta)

    # -- one step ---------------------------------------------------------------------------------
    def _step(self, rec: Record, *, live: bool) -> StepResult:
        result = StepResult()
        known = self._decoded.pop(rec.value, None) if self._decoded else None
        if known is not None:
            event, meta = known
        else:
            try:
                name, fields = self.codec.decode_record(rec)
                event, meta = from_record(name, fields), fields["meta"]
            except DecodeError as err:
                result.dead_letters.append(dead_letter(rec, err.reason))
                return result
            except (MelticaError, KeyError, TypeError, ValueError) as err:
                result.dead_letters.append(dead_letter(rec, f"cannot map {rec.topic} record: {err}"))
                return result
        source = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset}
        queue: deque[tuple[str, Any, dict[str, Any], Headers, Processor | None]] = deque(
            [(rec.topic, event, meta, rec.headers, None)]
        )
        produced: list[tuple[Output, dict[str, Any], Headers]] = []
        ts_init = self.clock.now_ns()  # when this step recorded its outputs
        try:
            while queue:
                topic, inp, meta, headers, producer = queue.popleft()
                for p in self._subscribers.get(topic, ()):
                    if p is producer:
                        continue
                    outputs, out_headers = self._handle(p, topic, inp, headers, live)
                    for i, out in enumerate(outputs):
                        out_meta = output_meta(out, meta, p.name, i, source, ts_init)
                        hdrs = self._trace_headers(out, out_headers) if live else ()
                        produced.append((out, out_meta, hdrs))
                        queue.append((out.topic, out.event, out_meta, hdrs, p))
        except Exception as err:  # a processor bug must not stop the engine: dead-letter the input
            result.dead_letters.append(dead_letter(rec, f"processing failed: {type(err).__name__}: {err}"))
            return result
        if live:
            for out, meta, hdrs in produced:
                try:  # an output the codec refuses (a value beyond its range) must not stop the engine
                    value = self.codec.encode_object(avro_name(out.event), out.event, meta)
                except EncodeError as err:
                    result.messages.clear()
                    result.dead_letters.append(dead_letter(rec, f"output not encodable: {err}"))
                    return result
                result.messages.append(
                    Message(out.topic, value, out.key.encode(), (*hdrs, (ENGINE_HEADER, b"1")))
                )
        return result

    def _handle(
        self, p: Processor, topic: str, inp: Any, headers: Headers, live: bool
    ) -> tuple[list[Output], Headers]:
        """Run one processor; a span is recorded only where it produced something."""
        if not live:
            return p.handle(topic, inp, self.clock), ()
        started = time.time_ns()
        outputs = p.handle(topic, inp, self.clock)
        if not outputs:
            return outputs, ()
        span = self.tracer.start_span(
            f"{p.name} {type(inp).__name__}", context=telemetry.extract(headers), start_time=started
        )
        if span.is_recording():
            span.set_attribute("meltica.topic", topic)
            span.set_attribute("meltica.outputs", len(outputs))
        span.end()
        return outputs, telemetry.span_headers(span)

    def _trace_headers(self, out: Output, current: Headers) -> Headers:
        """An order keeps one trace: later outputs about it continue the trace of its first."""
        if out.trace_key is None:
            return current
        known = self._traces.get(out.trace_key)
        if known is None:
            if len(self._traces) > 100_000:
                self._traces.clear()
            self._traces[out.trace_key] = current
            return current
        return known


def _order(rec: Record) -> int:
    return rec.seq if rec.seq >= 0 else rec.timestamp_ms


def _order_key(rec: Record) -> tuple[int, str, int, int]:
    return (_order(rec), rec.topic, rec.partition, rec.offset)


def _is_engine_record(rec: Record) -> bool:
    return any(k == ENGINE_HEADER for k, _ in rec.headers)
