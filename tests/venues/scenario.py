"""What the execution adapters' end-to-end tests share: a scenario run on a connected adapter, the
orders they send, a clock the test moves and the adapter's `updates()` read into a list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import OrderSide, OrderType, TimeInForce
from meltica.events.envelope import order_id_for
from meltica.venues.port import ExecutionAdapter, VenueError, VenueOrder, VenueTrade, VenueUpdate

WAIT = 30.0  # a bound for a broken run; a working one answers in milliseconds, a busy CPU in seconds
T = TypeVar("T")
A = TypeVar("A", bound=ExecutionAdapter)


class Clock:
    """A monotonic clock the test moves (the throttle gate reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(make: Callable[[], A], scenario: Callable[[A], Awaitable[T]]) -> T:
    """`scenario` on an adapter `make` gives (made on the scenario's loop), connected, closed after."""

    async def main() -> T:
        adapter = make()
        try:
            await adapter.connect()
            return await scenario(adapter)
        finally:
            await adapter.close()

    return asyncio.run(main())


def spec(
    name: str,
    quantity: str = "0.003",
    price: str | None = "50000",
    side: OrderSide = OrderSide.BUY,
    order_type: OrderType = OrderType.LIMIT,
    *,
    instrument_id: str,
    post_only: bool = False,
    tif: TimeInForce = TimeInForce.GTC,
) -> OrderSpec:
    """Account acc-1's order `name` (its client order id)."""
    return OrderSpec(
        order_id=order_id_for("acc-1", name),
        client_order_id=name,
        account_id="acc-1",
        instrument_id=instrument_id,
        side=side,
        order_type=order_type,
        quantity=Decimal(quantity),
        price=None if price is None else Decimal(price),
        post_only=post_only,
        time_in_force=tif,
    )


class Stream:
    """`updates()` read by a task into `items`; `error` is what ended it."""

    def __init__(self, updates: AsyncIterator[VenueUpdate]) -> None:
        self.items: list[VenueUpdate] = []
        self.error: VenueError | None = None
        self.task = asyncio.create_task(self._read(updates))

    async def _read(self, updates: AsyncIterator[VenueUpdate]) -> None:
        try:
            async for update in updates:
                self.items.append(update)
        except VenueError as exc:
            self.error = exc

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                assert not self.task.done() or condition(), f"the stream ended: {self.error!r}"
                await asyncio.sleep(0.01)

    async def live(self) -> None:
        """Its first update (the balances) came: the subscription stands."""
        await self.until(lambda: any(isinstance(i, tuple) for i in self.items))

    def orders(self, order_id: str) -> list[VenueOrder]:
        return [i for i in self.items if isinstance(i, VenueOrder) and i.order_id == order_id]

    def trades(self) -> list[VenueTrade]:
        return [i for i in self.items if isinstance(i, VenueTrade)]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def dropped_then_followed(
    adapter: ExecutionAdapter, drop: Callable[[], int], order: OrderSpec
) -> tuple[VenueError | None, list[OrderStatus]]:
    """A stream the venue drops (`drop` drops its one socket) ends with its error; a new stream then
    follows `order`: that error and the statuses the new stream reports."""
    stream = Stream(adapter.updates())
    await stream.live()
    assert drop() == 1
    async with asyncio.timeout(WAIT):
        await stream.task
    again = Stream(adapter.updates())
    await again.live()
    await adapter.submit(order)
    await again.until(lambda: bool(again.orders(order.order_id)))
    await again.stop()
    return stream.error, [o.status for o in again.orders(order.order_id)]
