"""How many `/v1/stream` connections a key holds open: each one polls the log for as long as it
lives, so one key may hold at most `MAX_STREAMS_PER_KEY`; one more is 429 `rate-limited`."""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator

from meltica.api.auth import RateLimited

MAX_STREAMS_PER_KEY = 8
RETRY_AFTER_S = 5.0


class StreamSlots:
    """The open streams of each key. A stream counts from its admission until its generator ends
    (the client left, the key was revoked, its `limit` was reached) or is dropped unstarted."""

    def __init__(self, per_key: int = MAX_STREAMS_PER_KEY) -> None:
        self.per_key = per_key
        self._open: dict[str, weakref.WeakSet[AsyncIterator[str]]] = {}
        self._lock = threading.Lock()

    def open_count(self, key_id: str) -> int:
        with self._lock:
            return self._live(key_id)

    def admit(self, key_id: str, stream: AsyncIterator[str]) -> None:
        """Count `stream` (an async generator) against `key_id`, or raise `RateLimited` if the key
        holds its maximum."""
        with self._lock:
            if self._live(key_id) >= self.per_key:
                raise RateLimited(
                    RETRY_AFTER_S, f"this key holds {self.per_key} open streams, the most it may hold"
                )
            self._open.setdefault(key_id, weakref.WeakSet()).add(stream)

    def _live(self, key_id: str) -> int:
        streams = self._open.get(key_id)
        if streams is None:
            return 0
        ended = [s for s in streams if getattr(s, "ag_frame", None) is None]  # finished: no frame
        for s in ended:
            streams.discard(s)
        if not streams:
            del self._open[key_id]
            return 0
        return len(streams)
