"""Waiting in tests on a condition, never on the clock alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from meltica.log.base import EventLog

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    every: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll `predicate` every `every` seconds until it returns something truthy, and return that.

    After `timeout` seconds raise an AssertionError naming `what` (and `detail()`, e.g. a
    service's log, when given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"not within {timeout} s: {what}{extra}")
        time.sleep(every)


def records_from(log: EventLog, topic: str, partition: int, offset: int) -> int:
    """Records of `topic`'s `partition` at or after `offset` (up to 10,000): the offsets past a
    committed or applied position may hold only transaction markers, which count none."""
    return len(log.read(topic, partition, offset, 10_000)) if log.end_offset(topic, partition) > offset else 0
