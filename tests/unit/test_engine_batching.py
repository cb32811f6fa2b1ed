"""The embedded engine sizes its group commits by load: small while it keeps up, doubling while
records stay pending after a full batch, back to small once it has caught up."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from meltica.domain.marketdata import QuoteTick
from meltica.runtime.engine import batch_limit
from meltica.topics import QUOTES
from tests.e2e.stack import BTC, Stack


def test_the_next_batch_doubles_after_a_full_one_and_shrinks_after_a_partial_one() -> None:
    assert [batch_limit(16, 16, 16, 100), batch_limit(64, 64, 16, 100), batch_limit(64, 63, 16, 100)] == [
        32,
        100,
        16,
    ]
    assert batch_limit(8, 8, 16, 8) == 8  # never above the maximum


def test_a_backlog_is_taken_in_growing_batches_and_light_load_in_small_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = Stack()
    stack.setup()
    engine = stack.engine
    assert engine is not None
    for i in range(100):  # a backlog of 100 external records, one step each
        px = Decimal(100) + Decimal(i) / 100
        tick = QuoteTick(BTC.instrument_id, px, Decimal(1), px + Decimal("0.02"), Decimal(1), stack.tick())
        stack.publisher.publish(QUOTES, tick)
    stop = threading.Event()
    polls: list[tuple[int, int]] = []
    poll_once = engine.poll_once

    def recorded(max_steps: int = 500) -> int:
        steps = poll_once(max_steps)
        polls.append((max_steps, steps))
        if steps == 0:
            stop.set()
        return steps

    monkeypatch.setattr(engine, "poll_once", recorded)
    commits = engine.stats.commits
    engine.run(stop, poll_interval=0.0, max_steps=64)
    assert polls == [(16, 16), (32, 32), (64, 52), (16, 0)]
    assert engine.stats.commits - commits == 3
    assert engine.positions == {tp: engine.log.end_offset(tp.topic, tp.partition) for tp in engine.positions}
