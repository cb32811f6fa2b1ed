"""The audit trail of state-changing API calls, written to `audit.events` off the request path.

`record` never blocks: it encodes the record and queues it. One daemon thread appends the queue
in batches. While the log fails, records wait in the queue (at most `capacity`) and the thread
retries with backoff, counting each failed attempt (`meltica_api_audit_failures`). A record that
finds the queue full is dropped: counted (`meltica_api_audit_dropped`) and logged at ERROR, never
lost silently. `close` gives the queue `grace` seconds; what is still unwritten then is counted
and logged the same way.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from meltica import telemetry
from meltica.log.base import Message
from meltica.runtime.publisher import Publisher
from meltica.topics import AUDIT

log = logging.getLogger(__name__)


class AuditTrail:
    """A bounded queue of audit records and the thread that writes them."""

    def __init__(
        self,
        publisher: Publisher,
        capacity: int = 10_000,
        batch: int = 500,
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.publisher, self.capacity, self.batch, self.backoff = publisher, capacity, batch, backoff
        self.written = self.dropped = self.failures = 0
        self._queue: deque[Message] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        meter = telemetry.meter()
        self._written = meter.create_counter("meltica_api_audit_written", description="Audit records written")
        self._dropped = meter.create_counter(
            "meltica_api_audit_dropped",
            description="Audit records dropped: the queue was full, or at shutdown",
        )
        self._failures = meter.create_counter(
            "meltica_api_audit_failures", description="Failed attempts to write audit records (retried)"
        )

    @property
    def pending(self) -> int:
        return len(self._queue)

    def record(self, event: Any) -> None:
        """Queue one audit record (never waits for the log)."""
        message = self.publisher.message(AUDIT, event)
        with self._ready:
            if self._closing or len(self._queue) >= self.capacity:
                self._drop(1, "the audit queue is full" if not self._closing else "the API is shutting down")
                return
            self._queue.append(message)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-trail", daemon=True)
                self._thread.start()
            self._ready.notify()

    def close(self, grace: float = 5.0) -> None:
        """Write what is queued within `grace` seconds; count and log what is left."""
        with self._ready:
            self._closing = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(grace)
        with self._ready:
            left = len(self._queue)
            self._queue.clear()
        if left:
            self._drop(left, f"not written within {grace:g}s of shutdown")

    def _drop(self, n: int, why: str) -> None:
        self.dropped += n
        self._dropped.add(n)
        log.error("%d audit record(s) dropped: %s (%d dropped so far)", n, why, self.dropped)

    def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue:
                    return
                batch = [self._queue[i] for i in range(min(self.batch, len(self._queue)))]
            try:
                self.publisher.commits.append(batch)  # in the commit of concurrent commands
            except Exception as err:  # the log's failure, whatever its client raised: retry
                self.failures += 1
                self._failures.add(1)
                log.warning("audit records not written (%s); retrying in %.1fs", err, delay)
                with self._ready:
                    if self._closing:
                        return
                    self._ready.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]
            with self._ready:  # (close may have cleared the queue meanwhile)
                for _ in range(min(len(batch), len(self._queue))):
                    self._queue.popleft()
            self.written += len(batch)
            self._written.add(len(batch))
