"""Writing external events (commands, market data, instruments) into the log with their envelope
and a W3C trace context, as clients, feeds and operators do.

A publisher `with_deadline` (the REST API's) never waits on the log longer than its deadline: an
append the log has not acknowledged by then fails with `LogUnavailable` (the record may still be
written: a retry with the same ids is safe). A burst queues for one of `max_waiting` slots within
the deadline while the log answers; once the log looks down, a call finding no slot fails at once.
The waiting happens on a pool of threads, so the caller's deadline holds even when the log's
client blocks for its own, longer timeout. Appends from concurrent callers share one log append
(`GroupCommit`): one commit for every command that arrived while the previous one was written."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from opentelemetry import trace

from meltica import telemetry
from meltica.clock import Clock, LiveClock
from meltica.domain.instruments import Instrument
from meltica.errors import LogError, MelticaError
from meltica.events.codec import Codec
from meltica.events.envelope import derive_event_id
from meltica.events.mapping import to_record
from meltica.log.base import EventLog, Message, Position
from meltica.runtime.group_commit import GroupCommit
from meltica.topics import INSTRUMENTS, MARKET_DATA, key_of

T = TypeVar("T")


class LogUnavailable(LogError):  # noqa: N818 - an error all the same: a LogError
    """The log did not answer within the deadline, or too many calls already wait for it."""


class Deadline:
    """Calls to the log that give up after `timeout` seconds; at most `max_waiting` run at a time.

    A burst queues for a slot within the same deadline; once a call has timed out (the log looks
    down) and until one succeeds again, a call that finds no free slot fails at once."""

    def __init__(self, timeout: float, max_waiting: int = 64) -> None:
        self.timeout, self.max_waiting = timeout, max_waiting
        self._slots = threading.BoundedSemaphore(max_waiting)
        self._pool = ThreadPoolExecutor(max_waiting, thread_name_prefix="meltica-log-call")
        self._down = False

    def __call__(self, fn: Callable[[], T], what: str = "the log") -> T:
        """`fn()`, or LogUnavailable when it takes longer than the deadline (it then finishes alone)."""
        start = time.monotonic()
        got = self._slots.acquire(blocking=False) if self._down else self._slots.acquire(timeout=self.timeout)
        if not got:
            raise LogUnavailable(f"{self.max_waiting} calls already wait for {what}")
        try:
            future = self._pool.submit(_as_log_error, fn)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            result = future.result(max(0.0, self.timeout - (time.monotonic() - start)))
        except FutureTimeout:
            self._down = True
            raise LogUnavailable(f"{what} did not answer within {self.timeout:g}s") from None
        self._down = False
        return result


def _as_log_error(fn: Callable[[], T]) -> T:
    """`fn()`, a failure of the log's client (not one of ours) as a LogError."""
    try:
        return fn()
    except MelticaError:
        raise
    except Exception as err:
        raise LogError(f"{type(err).__name__}: {err}") from err


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
        deadline: Deadline | None = None,
    ):
        self.log = log
        self.codec = codec
        self.clock = clock or LiveClock()
        self.tracer = tracer or trace.get_tracer("meltica.publisher")
        self._id_seed = id_seed  # deterministic event ids (backtests): derived from the seed and a counter
        self._count = 0
        self.deadline = deadline
        self.commits = GroupCommit(log)  # concurrent appends (the API's requests) share one commit

    def with_deadline(self, timeout: float, max_waiting: int = 64) -> Publisher:
        """This publisher (log, codec, clock) with appends bounded by `Deadline(timeout, max_waiting)`."""
        return Publisher(
            self.log,
            self.codec,
            self.clock,
            self.tracer,
            id_seed=self._id_seed,
            deadline=Deadline(timeout, max_waiting),
        )

    def append(self, messages: Sequence[Message]) -> list[Position]:
        """Append records, within the deadline where there is one."""
        if self.deadline is None:
            return self.commits.append(messages)
        return self.deadline(lambda: self.commits.append(messages), "the event log")

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
        [pos] = self.append([self.message(topic, event, correlation_id=correlation_id)])
        return pos

    def publish_many(self, topic: str, events: Iterable[Any]) -> list[Position]:
        return self.append([self.message(topic, e) for e in events])

    def define(self, instruments: Iterable[Instrument]) -> None:
        """Publish instrument definitions."""
        self.publish_many(INSTRUMENTS, list(instruments))
