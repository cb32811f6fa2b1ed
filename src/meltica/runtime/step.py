"""One step, the same in every host: decode a record, deliver it through the processors that read its
topic (and each output on to the processors that read the output's topic), encode what came out.

A step either happens whole or not at all. When a processor raises, or an output cannot be encoded,
the input is dead-lettered by its host and every processor is put back as it was before the input:
a reservation risk made for an order whose acceptance a later processor failed on does not stay
behind. Rolling back costs nothing on the path that does not fail: the processors are copied now and
then (a checkpoint), the inputs delivered since are kept, and a failure restores the copy and
delivers those inputs again. Processors are deterministic, so that gives exactly the state before
the failed input; a replay after a restart fails on the same input the same way and rolls back the
same way.
"""

from __future__ import annotations

import copy
import logging
import pickle  # nosec B403 # our own processors, copied in memory and restored in this process
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from meltica import telemetry
from meltica.clock import Clock, LiveClock
from meltica.errors import DecodeError, EncodeError, MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import avro_name, from_record
from meltica.log.base import Headers, Record
from meltica.runtime.processor import Output, Processor, output_meta

_log = logging.getLogger("meltica.runtime")

CHECKPOINT_EVERY = 10_000  # inputs between two copies of the processors, at least


@dataclass(frozen=True, slots=True)
class Emitted:
    """An output of a step with its envelope, trace headers and (live steps) encoded value."""

    output: Output
    meta: dict[str, Any]
    headers: Headers
    value: bytes = b""


@dataclass(slots=True)
class Stepped:
    """What one step did: the decoded input, its outputs, or why it failed (and was rolled back)."""

    event: Any = None
    emitted: list[Emitted] = field(default_factory=list)
    failure: str | None = None


class Step:
    """Steps records through `processors`; `inputs` names the topics each processor (by name) reads,
    `outputs` (where given) those it may write; the order of `processors` is the order of delivery."""

    def __init__(
        self,
        processors: Sequence[Processor],
        inputs: Mapping[str, Sequence[str]],
        *,
        codec: Codec,
        clock: Clock | None = None,
        tracer: Tracer | None = None,
        producer: Callable[[Processor], str] | None = None,
        outputs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.codec = codec
        self._outputs = {name: frozenset(topics) for name, topics in (outputs or {}).items()}
        self.clock = clock or LiveClock()
        self.tracer = tracer or trace.get_tracer("meltica.runtime")
        self._inputs = inputs
        self._producer = producer or (lambda p: p.name)
        self._traces: dict[str, Headers] = {}
        self.rollbacks = 0
        self.reset(processors)

    # -- the processors and their checkpoint --------------------------------------------------------
    def reset(self, processors: Sequence[Processor]) -> None:
        """Step through `processors` from now on (as they are: their state is the new starting point)."""
        self._subscribe(processors)
        self._checkpoint()

    def _subscribe(self, processors: Sequence[Processor]) -> None:
        self.processors = list(processors)
        self._subscribers: dict[str, list[Processor]] = {}
        for p in self.processors:
            for topic in self._inputs[p.name]:
                self._subscribers.setdefault(topic, []).append(p)

    def _checkpoint(self) -> None:
        started = time.monotonic()
        try:
            self._saved: Any = pickle.dumps(self.processors, pickle.HIGHEST_PROTOCOL)
        except Exception:  # a user strategy holding something unpicklable: copy it instead
            try:
                self._saved = _Copied(copy.deepcopy(self.processors))
            except Exception as err:
                self._saved = None
                _log.warning("processors cannot be copied (%s): a failed step will not roll back", err)
        self._since: deque[tuple[str, Any]] = deque()
        took = time.monotonic() - started
        self._every = max(CHECKPOINT_EVERY, int(took * 200_000))  # at most ~5 us a step on average

    def _restore(self) -> None:
        """The processors as they were before the failed input: the checkpoint, then what came since."""
        since = self._since
        if self._saved is None:
            return
        saved = self._saved
        restored = (
            copy.deepcopy(saved.processors) if isinstance(saved, _Copied) else pickle.loads(saved)  # nosec B301 # our own bytes, made above
        )
        self._subscribe(restored)
        self._since = deque()
        for topic, event in since:
            self._deliver(topic, event, {}, (), live=False)
            self._since.append((topic, event))
        self.rollbacks += 1

    # -- stepping -----------------------------------------------------------------------------------
    def decode(self, rec: Record) -> tuple[Any, dict[str, Any]] | str:
        """The domain event and envelope of `rec`, or why it cannot be read."""
        try:
            name, fields = self.codec.decode_record(rec)
            return from_record(name, fields), fields["meta"]
        except DecodeError as err:
            return err.reason
        except (MelticaError, KeyError, TypeError, ValueError) as err:
            return f"cannot map {rec.topic} record: {err}"

    def run(
        self,
        rec: Record,
        *,
        live: bool,
        known: tuple[Any, dict[str, Any]] | None = None,
        keep: Callable[[Output], bool] | None = None,
    ) -> Stepped:
        """Step `rec` (already decoded as `known`, if given). Live steps encode the outputs `keep`
        accepts (all by default); replays only bring the processors' state forward."""
        if known is None:
            decoded = self.decode(rec)
            if isinstance(decoded, str):
                return Stepped(failure=decoded)
            known = decoded
        event, meta = known
        source = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset}
        try:
            emitted = self._deliver(rec.topic, event, meta, rec.headers, live=live, source=source)
            if live:
                emitted = [self._encoded(e) for e in emitted if keep is None or keep(e.output)]
        except EncodeError as err:  # a value beyond the codec's range must not stop the host
            self._restore()
            return Stepped(event, failure=f"output not encodable: {err}")
        except Exception as err:  # a processor bug must not stop the host: roll back, dead-letter the input
            if live:
                _log.warning("step failed on %s[%d]@%d", rec.topic, rec.partition, rec.offset, exc_info=True)
            self._restore()
            return Stepped(event, failure=f"processing failed: {type(err).__name__}: {err}")
        self._since.append((rec.topic, event))
        if len(self._since) >= self._every:
            self._checkpoint()
        return Stepped(event, emitted)

    def _deliver(
        self,
        topic: str,
        event: Any,
        meta: dict[str, Any],
        headers: Headers,
        *,
        live: bool,
        source: dict[str, Any] | None = None,
    ) -> list[Emitted]:
        """`event` to every processor reading `topic`, and their outputs on, until none is left."""
        queue: deque[tuple[str, Any, dict[str, Any], Headers, Processor | None]] = deque(
            [(topic, event, meta, headers, None)]
        )
        emitted: list[Emitted] = []
        ts_init = self.clock.now_ns() if live else 0
        while queue:
            topic, inp, meta, headers, producer = queue.popleft()
            for p in self._subscribers.get(topic, ()):
                if p is producer:
                    continue
                if not live:
                    for out in p.handle(topic, inp, self.clock):
                        queue.append((out.topic, out.event, meta, (), p))
                    continue
                outputs, out_headers = self._handle(p, topic, inp, headers)
                name = self._producer(p)
                allowed = self._outputs.get(p.name)
                for i, out in enumerate(outputs):
                    if allowed is not None and out.topic not in allowed:
                        raise MelticaError(
                            f"{p.name} wrote to {out.topic}, which the topology does not give it"
                        )
                    out_meta = output_meta(out, meta, name, i, source or {}, ts_init)
                    hdrs = self._trace_headers(out, out_headers)
                    emitted.append(Emitted(out, out_meta, hdrs))
                    queue.append((out.topic, out.event, out_meta, hdrs, p))
        return emitted

    def _encoded(self, e: Emitted) -> Emitted:
        value = self.codec.encode_object(avro_name(e.output.event), e.output.event, e.meta)
        return Emitted(e.output, e.meta, e.headers, value)

    def _handle(self, p: Processor, topic: str, inp: Any, headers: Headers) -> tuple[list[Output], Headers]:
        """Run one processor; a span is made only where it produced something, in a sampled trace
        (or one it starts)."""
        started = time.time_ns()
        outputs = p.handle(topic, inp, self.clock)
        if not outputs:
            return outputs, ()
        passed_on = telemetry.unsampled(headers)
        if passed_on is not None:  # a trace not recorded: its context goes on, no span is made
            return outputs, passed_on
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


@dataclass(frozen=True, slots=True)
class _Copied:
    """A checkpoint made with deepcopy (processors pickle cannot take)."""

    processors: list[Processor]
