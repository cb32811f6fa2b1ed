"""Writing external events (commands, market data, instruments) into the log with their envelope
and a W3C trace context, as clients, feeds and operators do."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace

from meltica import telemetry
from meltica.clock import Clock, LiveClock
from meltica.domain.instruments import Instrument
from meltica.events.codec import Codec
from meltica.events.envelope import derive_event_id
from meltica.events.mapping import to_record
from meltica.log.base import EventLog, Message, Position
from meltica.topics import INSTRUMENTS, MARKET_DATA, key_of


class Publisher:
    """Appends domain events as Avro records, each the root of a new trace unless one is given."""

    def __init__(
        self,
        log: EventLog,
        codec: Codec,
        clock: Clock | None = None,
        tracer: trace.Tracer | None = None,
        *,
        id_seed: str | None = None,
    ):
        self.log = log
        self.codec = codec
        self.clock = clock or LiveClock()
        self.tracer = tracer or trace.get_tracer("meltica.publisher")
        self._id_seed = id_seed  # deterministic event ids (backtests): derived from the seed and a counter
        self._count = 0

    def message(self, topic: str, event: Any, *, correlation_id: str | None = None) -> Message:
        return self.message_and_meta(topic, event, correlation_id=correlation_id)[0]

    def message_and_meta(
        self, topic: str, event: Any, *, correlation_id: str | None = None
    ) -> tuple[Message, dict[str, Any]]:
        """The record of `event` and the envelope it carries."""
        now = self.clock.now_ns()
        self._count += 1
        event_id = str(uuid.uuid4()) if self._id_seed is None else derive_event_id(self._id_seed, self._count)
        key = key_of(event)
        meta = {
            "event_id": event_id,
            "causation_id": None,
            "correlation_id": correlation_id or event_id,
            "ts_event": getattr(event, "ts", now),
            "ts_init": now,
            "key": key,
            "version": 0,
            "source": None,
        }
        name, record = to_record(event, meta)
        headers: tuple[tuple[str, bytes], ...] = ()
        if topic not in MARKET_DATA and topic != INSTRUMENTS:
            with self.tracer.start_as_current_span(f"submit {name}"):
                headers = telemetry.inject()
        return Message(topic, self.codec.encode(name, record), key.encode(), headers), meta

    def publish(self, topic: str, event: Any, *, correlation_id: str | None = None) -> Position:
        [pos] = self.log.append([self.message(topic, event, correlation_id=correlation_id)])
        return pos

    def publish_many(self, topic: str, events: Iterable[Any]) -> list[Position]:
        return self.log.append([self.message(topic, e) for e in events])

    def define(self, instruments: Iterable[Instrument]) -> None:
        """Publish instrument definitions."""
        self.publish_many(INSTRUMENTS, list(instruments))
