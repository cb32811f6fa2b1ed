"""Token buckets: request rates per API key and scope, failed authentications per client address.

A rate is `N/s`, `N/m` or `N/h`: a bucket holds N tokens (the burst) and refills at N per period.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

_RATE = re.compile(r"^\s*([1-9][0-9]{0,8})\s*/\s*(s|m|h)\s*$")
_PERIOD = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    """`tokens` per `period` seconds; also the burst."""

    tokens: int
    period: float

    def __str__(self) -> str:
        unit = {v: k for k, v in _PERIOD.items()}[self.period]
        return f"{self.tokens}/{unit}"


def parse_rate(text: str) -> Rate:
    """`50/s` -> Rate(50, 1.0); a ValueError names the syntax."""
    found = _RATE.match(text)
    if not found:
        raise ValueError(f"a rate is N/s, N/m or N/h (N a whole number from 1), not {text!r}")
    return Rate(int(found.group(1)), _PERIOD[found.group(2)])


class Buckets:
    """One token bucket per key (an API key and scope, a client address), created full."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._max = max_buckets
        self._lock = threading.Lock()
        self._state: dict[Hashable, tuple[float, float, Rate]] = {}  # key -> (tokens, at, rate)

    def _level(self, key: Hashable, rate: Rate, now: float) -> float:
        tokens, at, was = self._state.get(key, (float(rate.tokens), now, rate))
        if was != rate:  # the limit changed: keep the level, within the new burst
            tokens = min(tokens, float(rate.tokens))
        return min(float(rate.tokens), tokens + (now - at) * rate.tokens / rate.period)

    def take(self, key: Hashable, rate: Rate) -> float:
        """Take one token: 0.0 if there was one, else the seconds until there is one (nothing taken)."""
        with self._lock:
            now = self._clock()
            tokens = self._level(key, rate, now)
            if tokens < 1.0:
                self._state[key] = (tokens, now, rate)
                return (1.0 - tokens) * rate.period / rate.tokens
            if len(self._state) >= self._max and key not in self._state:
                self._prune(now)
            self._state[key] = (tokens - 1.0, now, rate)
            return 0.0

    def wait(self, key: Hashable, rate: Rate) -> float:
        """Seconds until `key` has a token (0.0 now), without taking it."""
        with self._lock:
            tokens = self._level(key, rate, self._clock())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) * rate.period / rate.tokens

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (a full bucket is the same as none)."""
        for key, (tokens, at, rate) in list(self._state.items()):
            if tokens + (now - at) * rate.tokens / rate.period >= rate.tokens:
                del self._state[key]
        if len(self._state) >= self._max:  # still full of drained buckets: forget the oldest half
            for key, _ in sorted(self._state.items(), key=lambda kv: kv[1][1])[: self._max // 2]:
                del self._state[key]


def retry_after(seconds: float) -> int:
    """A Retry-After value: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
