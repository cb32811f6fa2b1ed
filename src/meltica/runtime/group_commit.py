"""Group commit: appends from concurrent callers share one log append, so one commit (one fsync
on SQLite, one produce-and-flush on Kafka) carries every command that arrived meanwhile.

There is no thread of its own: the first caller to find no append under way leads. It appends
what every caller queued until then in one call, answers each its positions (or the error: an
append is all or nothing), and hands the lead to the first caller still queued, who appends what
queued during that append. A lone caller appends at once; under load each append is as large as
the queue the previous one let build up."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from meltica.log.base import EventLog, Message, Position


class _Queued:
    __slots__ = ("error", "lead", "messages", "positions", "ready")

    def __init__(self, messages: Sequence[Message]) -> None:
        self.messages = messages
        self.ready = threading.Event()
        self.lead = False
        self.positions: list[Position] = []
        self.error: BaseException | None = None

    def result(self) -> list[Position]:
        if self.error is not None:
            raise self.error
        return self.positions


class GroupCommit:
    """Appends to `log`, those of concurrent callers together (at most `max_messages` at once)."""

    def __init__(self, log: EventLog, max_messages: int = 5000) -> None:
        self.log, self.max_messages = log, max_messages
        self.appends = self.calls = 0  # log appends made, caller appends served
        self._lock = threading.Lock()
        self._queue: deque[_Queued] = deque()
        self._leading = False

    def append(self, messages: Sequence[Message]) -> list[Position]:
        """Append `messages` (with whatever other callers append meanwhile); their positions."""
        mine = _Queued(messages)
        with self._lock:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.ready.wait()
            if not mine.lead:
                return mine.result()
        self._lead()
        return mine.result()

    def _lead(self) -> None:
        """Append the queue (the leader's own records first among them), then pass the lead on."""
        with self._lock:
            batch: list[_Queued] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].messages) <= self.max_messages):
                size += len(self._queue[0].messages)
                batch.append(self._queue.popleft())
        try:
            positions = self.log.append([m for q in batch for m in q.messages])
        except BaseException as err:  # every caller of the batch gets the log's failure
            for q in batch:
                q.error = err
        else:
            at = 0
            for q in batch:
                q.positions = positions[at : at + len(q.messages)]
                at += len(q.messages)
        self.appends += 1
        self.calls += len(batch)
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.ready.set()
            else:
                self._leading = False
        for q in batch:
            q.ready.set()
