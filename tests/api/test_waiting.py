"""The order waiter behind `?wait=`: waits end from the committed order events (no database
polled), a terminal status ends every wait, a timeout answers the last status seen, an order
whose events came before the waiter is looked up once, and a database that is away costs no
error."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert

from meltica.api.waiting import OrderWaiter
from meltica.domain.orders import events as oe
from meltica.domain.orders.model import OrderSpec
from meltica.domain.risk.checks import DenyReason
from meltica.domain.values import LiquiditySide, OrderSide, OrderType
from meltica.projections import migrations
from meltica.projections import tables as t

FILLED = frozenset({"FILLED"})
IDS = {"client_order_id": "c", "account_id": "A", "instrument_id": "X.SIM", "ts": 1}


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    return create_engine(url)


def accepted(order_id: str) -> oe.OrderAccepted:
    spec = OrderSpec(order_id, "c", "A", "X.SIM", OrderSide.BUY, OrderType.LIMIT, Decimal(2), Decimal(100))
    return oe.OrderAccepted(spec, 1)


def lifecycle(order_id: str) -> list[Any]:
    """Accepted, routed, acknowledged, half filled, filled."""
    fill = oe.Fill(
        "t", "v", OrderSide.BUY, Decimal(1), Decimal(100), Decimal(0), "USDT", LiquiditySide.TAKER, 1
    )
    return [
        accepted(order_id),
        oe.OrderSubmitted(order_id, **IDS, venue="SIM"),
        oe.OrderAcknowledged(order_id, **IDS, venue_order_id="v"),
        oe.OrderPartiallyFilled(
            order_id, **IDS, fill=fill, cum_qty=Decimal(1), leaves_qty=Decimal(1), avg_px=Decimal(100)
        ),
        oe.OrderFilled(
            order_id, **IDS, fill=fill, cum_qty=Decimal(2), leaves_qty=Decimal(0), avg_px=Decimal(100)
        ),
    ]


def row(db: Engine, order_id: str, status: str) -> None:
    with db.begin() as conn:
        conn.execute(
            insert(t.orders).values(
                order_id=order_id,
                client_order_id=order_id,
                account_id="A",
                instrument_id="X.SIM",
                side="BUY",
                order_type="LIMIT",
                time_in_force="GTC",
                quantity=Decimal(1),
                status=status,
                filled_qty=Decimal(0),
                ts_created=0,
                ts_updated=0,
                version=0,
            )
        )


def test_waits_end_from_the_committed_events_with_one_lookup_each_and_no_polling(db: Engine) -> None:
    queries: list[str] = []
    event.listen(db, "before_cursor_execute", lambda *a: queries.append(a[2]))
    waiter = OrderWaiter(db)

    async def main() -> tuple[list[str], list[str], int]:
        loop = asyncio.get_running_loop()
        fills = [asyncio.create_task(waiter.wait(f"o{i}", FILLED, 5)) for i in range(50)]
        acks = [asyncio.create_task(waiter.wait(f"o{i}", frozenset({"NEW"}), 5)) for i in range(50)]
        while waiter.pending() < 100:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)  # nothing committed yet: nothing asks the database again
        asked = len(queries)
        for i in range(50):  # committed by another thread, the way the engine's commits come
            await loop.run_in_executor(None, waiter.observe, lifecycle(f"o{i}")[:3])
        answered_acks = list(await asyncio.gather(*acks))
        await loop.run_in_executor(
            None, waiter.observe, [e for i in range(50) for e in lifecycle(f"o{i}")[3:]]
        )
        return answered_acks, list(await asyncio.gather(*fills)), asked

    acks, fills, asked = asyncio.run(main())
    assert (acks, fills) == (["NEW"] * 50, ["FILLED"] * 50)
    assert asked <= 100  # one read-model lookup per wait on an order no event had named, no poll
    assert waiter.pending() == 0


def test_a_terminal_status_ends_every_wait_and_a_timeout_answers_the_last_seen(db: Engine) -> None:
    waiter = OrderWaiter(db)
    denied = oe.OrderDenied("denied", **IDS, reason=DenyReason.KILL_SWITCH)

    async def main() -> tuple[Any, ...]:
        started = time.monotonic()
        waits = asyncio.gather(
            waiter.wait("denied", FILLED, 30),
            waiter.wait("resting", FILLED, 0.3),
            waiter.wait("nowhere", FILLED, 0.1),
        )
        await asyncio.sleep(0.05)
        waiter.observe([denied, *lifecycle("resting")[:3]])
        return (*await waits, time.monotonic() - started)

    denied_status, resting, unknown, took = asyncio.run(main())
    assert (denied_status, resting, unknown) == ("DENIED", "NEW", "PENDING_NEW")
    assert waiter.denial("denied") == str(DenyReason.KILL_SWITCH)
    assert took < 15  # the timeouts, not the 30 s of the first wait (room for a busy CPU)
    assert asyncio.run(waiter.wait("denied", FILLED, 5)) == "DENIED"  # remembered once closed


def test_an_order_from_before_the_waiter_is_looked_up_once_and_followed_by_its_events(db: Engine) -> None:
    row(db, "old-filled", "FILLED")
    row(db, "old-open", "NEW")
    waiter = OrderWaiter(db)
    assert asyncio.run(waiter.wait("old-filled", FILLED, 5)) == "FILLED"

    async def main() -> str:
        wait = asyncio.create_task(waiter.wait("old-open", FILLED, 5))
        await asyncio.sleep(0.1)
        waiter.observe([lifecycle("old-open")[-1]])  # its acceptance was before this waiter
        return await wait

    assert asyncio.run(main()) == "FILLED"


def test_a_database_that_is_away_ends_waits_at_their_timeout(tmp_path: Path) -> None:
    waiter = OrderWaiter(create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}"))
    started = time.monotonic()
    assert asyncio.run(waiter.wait("o", FILLED, 0.2)) == "PENDING_NEW"
    assert time.monotonic() - started < 10  # (room for a busy CPU)


def test_closed_orders_leave_the_book_and_the_memory_is_bounded(db: Engine) -> None:
    waiter = OrderWaiter(db, capacity=10)
    for i in range(30):
        waiter.observe(lifecycle(f"o{i}"))
    assert waiter.order("o29") is None  # closed: out of the book
    assert asyncio.run(waiter.wait("o29", FILLED, 1)) == "FILLED"
    waiter.observe([accepted(f"open{i}") for i in range(30)])
    assert waiter.order("open29") == {
        "order_id": "open29",
        "account_id": "A",
        "instrument_id": "X.SIM",
        "status": "ACCEPTED",
    }
    assert waiter.order("open0") is None  # the oldest open orders make room
    assert len(waiter._closed) <= 10
    assert len(waiter._book.orders) <= 11
