"""The embedded runtime: hosts every processor on one event log, one step at a time.

A step (`runtime.step`, shared with the Kafka hosts) is one record of an external topic (a
command, a tick, an instrument), delivered to the processors that read its topic, in a fixed
order; their outputs are delivered in memory to the processors that read those topics, until
nothing is left to deliver; a step that fails is rolled back whole. A batch
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from meltica.clock import Clock, LiveClock
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.consumer import dead_letter
from meltica.log.base import EventLog, Message, Record, TopicPartition
from meltica.runtime.processor import Output, Processor
from meltica.runtime.step import Step

ENGINE_GROUP = "meltica-engine"
ENGINE_HEADER = "meltica.engine"
MIN_BATCH = 16  # steps of a group commit while the engine keeps up


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
    commits: int = 0
    last_loop: float = field(default_factory=time.monotonic)


class Engine:
    """Processors on an event log, driven by the records of the external topics."""

    def __init__(
        self,
        log: EventLog,
        codec: Codec,
        processors: Sequence[Processor],
        *,
        inputs: Mapping[str, Sequence[str]],
        outputs: Mapping[str, Sequence[str]] | None = None,
        external_topics: Sequence[str],
        clock: Clock | None = None,
        tracer: Tracer | None = None,
        group: str = ENGINE_GROUP,
    ) -> None:
        self.log = log
        self.codec = codec
        self.clock = clock or LiveClock()
        self.group = group
        self.external_topics = list(external_topics)
        self.stats = EngineStats()
        self._stepper = Step(
            processors,
            inputs,
            codec=codec,
            clock=self.clock,
            tracer=tracer or trace.get_tracer("meltica.runtime"),
            outputs=outputs,
        )
        self._cursor: dict[TopicPartition, int] = {}
        self._seen_sequence: int | None = None
        self._recovered = False
        self._decoded: dict[bytes, tuple[Any, dict[str, Any]]] = {}
        # called with each live step's input and outputs (not those of a failed step, never on replay)
        self.observers: list[Callable[[Any, list[Output]], None]] = []
        # called with ("step" | "commit", seconds) of each live step and each commit
        self.timings: list[Callable[[str, float], None]] = []
        # called after each commit with the outputs of the live steps it committed, in order
        self.committed: list[Callable[[list[Output]], None]] = []
        self._uncommitted: list[Output] = []
        self._last_batch = 0  # records the last poll read (of at most its max_steps)

    @property
    def processors(self) -> list[Processor]:
        """The processors, in their order of delivery (after a rolled-back step: the restored ones)."""
        return self._stepper.processors

    @property
    def recovered(self) -> bool:
        """Whether the processors' state is rebuilt and live records are being stepped."""
        return self._recovered

    @property
    def rollbacks(self) -> int:
        """Steps that failed and were undone."""
        return self._stepper.rollbacks

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
            self._stepper.reset(processors)
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
        self.stats.last_loop = time.monotonic()
        sequence = self.log.last_sequence()
        if sequence is not None and sequence == self._seen_sequence:
            return 0  # nothing was appended anywhere since we last looked
        records = self._pending(max_steps)
        self._last_batch = len(records)
        if not records:
            self._seen_sequence = sequence
            return 0
        out: list[Message] = []
        dead: list[Message] = []
        cursor = dict(self._cursor)
        steps = 0
        timings = self.timings
        for rec in records:
            cursor[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
            if _is_engine_record(rec):
                continue
            started = time.perf_counter() if timings else 0.0
            result = self._step(rec, live=True)
            for timed in timings:
                timed("step", time.perf_counter() - started)
            out += result.messages
            dead += result.dead_letters
            steps += 1
        started = time.perf_counter()
        committed, self._uncommitted = self._uncommitted, []
        self.log.append_and_commit([*out, *dead], self.group, cursor)
        for timed in timings:
            timed("commit", time.perf_counter() - started)
        for notify in self.committed:
            notify(committed)
        self._cursor = cursor
        self.stats.commits += 1
        self.stats.steps += steps
        self.stats.outputs += len(out)
        self.stats.dead_letters += len(dead)
        return steps

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 0.002,
        max_steps: int = 1000,
        min_steps: int = MIN_BATCH,
    ) -> None:
        """Poll and process until `stop` is set; the batch in flight is committed before returning.

        Group commits are sized by load: a batch takes what is pending, at most `min_steps` while
        the engine keeps up (each commit follows its inputs within a few steps: acknowledgements in
        milliseconds); while records stay pending after a full batch, the next may be twice as
        large, up to `max_steps` (fewer commits per step: throughput), and back to `min_steps` as
        soon as a batch finds less pending than it may take."""
        if not self._recovered:
            self.recover()
        limit = min(min_steps, max_steps)
        while not stop.is_set():
            steps = self.poll_once(limit)
            if steps == 0:
                limit = min(min_steps, max_steps)
                stop.wait(poll_interval)
            else:
                limit = batch_limit(limit, self._last_batch, min_steps, max_steps)

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
        known = self._decoded.pop(rec.value, None) if self._decoded else None
        stepped = self._stepper.run(rec, live=live, known=known)
        if stepped.failure is not None:
            return StepResult(dead_letters=[dead_letter(rec, stepped.failure)] if live else [])
        if live and stepped.emitted:
            for observe in self.observers:
                observe(stepped.event, [e.output for e in stepped.emitted])
            if self.committed:
                self._uncommitted += [e.output for e in stepped.emitted]
        return StepResult(
            messages=[
                Message(e.output.topic, e.value, e.output.key.encode(), (*e.headers, (ENGINE_HEADER, b"1")))
                for e in stepped.emitted
            ]
        )


def batch_limit(limit: int, read: int, min_steps: int, max_steps: int) -> int:
    """The next batch's size: twice `limit` (up to `max_steps`) when the last batch was full
    (`read` records of `limit`: more are likely pending), else `min_steps`."""
    if read >= limit:
        return min(limit * 2, max_steps)
    return min(min_steps, max_steps)


def _order(rec: Record) -> int:
    return rec.seq if rec.seq >= 0 else rec.timestamp_ms


def _order_key(rec: Record) -> tuple[int, str, int, int]:
    return (_order(rec), rec.topic, rec.partition, rec.offset)


def _is_engine_record(rec: Record) -> bool:
    return any(k == ENGINE_HEADER for k, _ in rec.headers)
