"""Clocks: the only way Meltica code learns the time (integer nanoseconds since the epoch)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Source of the current time."""

    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch."""
        ...


class LiveClock:
    """Wall-clock time."""

    def now_ns(self) -> int:
        return time.time_ns()


class SimulatedClock:
    """Time that moves only when told to: backtests and deterministic tests."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        """Move forward to `ts_ns`; time never goes back."""
        if ts_ns < self._now:
            raise ValueError(f"simulated time cannot go back from {self._now} to {ts_ns}")
        self._now = ts_ns

    def advance(self, delta_ns: int) -> None:
        self.advance_to(self._now + delta_ns)
