"""`/v1/stream`: order, fill, position and balance changes as Server-Sent Events, read from the log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import json_default
from meltica.log.base import EventLog, Record, TopicPartition
from meltica.topics import ORDER_EVENTS, PORTFOLIO_EVENTS

KINDS = {"orders": ORDER_EVENTS, "portfolio": PORTFOLIO_EVENTS}


async def events(
    log: EventLog,
    codec: Codec,
    topics: tuple[str, ...],
    account_id: str | None,
    limit: int | None,
    allowed: frozenset[str] | None = None,
    alive: Callable[[], bool] | None = None,
) -> AsyncIterator[str]:
    """New records of `topics` (from now on), one SSE message each; ends after `limit` if given,
    or once `alive()` (asked about every second: is the caller's key still valid?) is false.
    Only events of `account_id` (if given) and of the `allowed` accounts (None: every one)."""
    positions = await run_in_threadpool(
        lambda: log.end_offsets([TopicPartition(t, p) for t in topics for p in range(log.partitions(t))])
    )
    sent = 0
    checked = time.monotonic()
    yield ": connected\n\n"
    while limit is None or sent < limit:
        if alive is not None and time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            if not await run_in_threadpool(alive):
                return
        batch: list[Record] = await run_in_threadpool(
            lambda: [r for tp, pos in positions.items() for r in log.read(tp.topic, tp.partition, pos, 500)]
        )
        if not batch:
            await asyncio.sleep(0.05)
            continue
        for rec in sorted(batch, key=lambda r: (r.seq, r.topic, r.partition, r.offset)):
            positions[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
            try:
                name, fields = codec.decode_record(rec)
            except MelticaError:
                continue
            account = fields.get("account_id", (fields.get("order") or {}).get("account_id"))
            if (account_id is not None and account != account_id) or (
                allowed is not None and account not in allowed
            ):
                continue
            data = json.dumps(
                {"topic": rec.topic, "offset": rec.offset, "type": name, "event": fields},
                default=json_default,
            )
            yield f"id: {rec.topic}:{rec.partition}:{rec.offset}\nevent: {name}\ndata: {data}\n\n"
            sent += 1
            if limit is not None and sent >= limit:
                return
