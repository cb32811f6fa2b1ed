"""The order waiter behind `?wait=`: one query per interval for every pending wait, waits that end
when their order gets there or at their timeout, and a database that is away costs no error."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, update

from meltica.api.waiting import OrderWaiter
from meltica.projections import migrations
from meltica.projections import tables as t


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    return create_engine(url)


def put(db: Engine, order_id: str, status: str) -> None:
    with db.begin() as conn:
        if conn.execute(
            update(t.orders).where(t.orders.c.order_id == order_id).values(status=status)
        ).rowcount:
            return
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


def test_many_waits_share_one_query_per_interval(db: Engine) -> None:
    queries: list[str] = []
    event.listen(
        db, "before_cursor_execute", lambda *a: queries.append(a[2]) if "FROM orders" in a[2] else None
    )
    waiter = OrderWaiter(db, interval=0.02)
    for i in range(50):
        put(db, f"o{i}", "NEW")

    async def main() -> list[str]:
        waits = [asyncio.create_task(waiter.wait(f"o{i}", frozenset({"FILLED"}), 5)) for i in range(50)]
        while waiter.pending() < 50:
            await asyncio.sleep(0.005)
        started = len(queries)
        await asyncio.sleep(0.2)
        polls = len(queries) - started
        assert polls <= 15, f"{polls} queries in 0.2 s for 50 waits"
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: [put(db, f"o{i}", "FILLED") for i in range(50)]
        )
        return list(await asyncio.gather(*waits))

    assert asyncio.run(main()) == ["FILLED"] * 50
    assert waiter.pending() == 0


def test_a_wait_answers_a_terminal_status_and_times_out_with_the_last_seen(db: Engine) -> None:
    waiter = OrderWaiter(db, interval=0.01)
    put(db, "denied", "DENIED")
    put(db, "resting", "NEW")

    async def main() -> tuple[Any, ...]:
        started = time.monotonic()
        denied = await waiter.wait("denied", frozenset({"FILLED"}), 5)
        resting = await waiter.wait("resting", frozenset({"FILLED"}), 0.3)
        unknown = await waiter.wait("nowhere", frozenset({"FILLED"}), 0.1)
        return denied, resting, unknown, time.monotonic() - started

    denied, resting, unknown, took = asyncio.run(main())
    assert (denied, resting, unknown) == ("DENIED", "NEW", "PENDING_NEW")
    assert took < 1.0


def test_a_database_that_is_away_ends_waits_at_their_timeout(tmp_path: Path) -> None:
    waiter = OrderWaiter(create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}"), interval=0.01)
    started = time.monotonic()
    assert asyncio.run(waiter.wait("o", frozenset({"FILLED"}), 0.2)) == "PENDING_NEW"
    assert time.monotonic() - started < 1.0


def test_the_poller_stops_when_idle_and_starts_again(db: Engine) -> None:
    waiter = OrderWaiter(db, interval=0.01, idle=0.05)
    put(db, "o", "FILLED")
    assert asyncio.run(waiter.wait("o", frozenset({"FILLED"}), 2)) == "FILLED"
    deadline = time.monotonic() + 5
    while waiter._thread is not None:
        assert time.monotonic() < deadline, "the idle poller ended"
        time.sleep(0.01)
    assert asyncio.run(waiter.wait("o", frozenset({"FILLED"}), 2)) == "FILLED"
