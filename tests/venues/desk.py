"""``Desk``: the embedded engine, a fake venue and the gateway over one execution adapter, in a
thread; the gateway tests of every live venue drive it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Generic, TypeVar

from meltica.domain.control import VenueState, VenueStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders.commands import AmendOrder, CancelOrder
from meltica.domain.orders.events import OrderFilled, OrderPartiallyFilled
from meltica.domain.values import OrderSide
from meltica.retry import RetryPolicy
from meltica.topics import QUOTES, VENUE_EVENTS
from meltica.venues.gateway import Gateway
from meltica.venues.port import ExecutionAdapter
from tests.e2e.stack import Stack
from tests.waiting import wait_until

D = Decimal
F = TypeVar("F")
ACCOUNT = "ACC-1"


async def _instruments(make: Callable[[], ExecutionAdapter]) -> list[Instrument]:
    adapter = make()  # made on the loop it runs on
    try:
        await adapter.connect()
        return await adapter.instruments()
    finally:
        await adapter.close()


class Desk(Generic[F]):
    """The engine, the fake venue and the gateway (`name`, adapter `kind`) trading `iid`; `fund`
    sets the engine up with the venue's instruments and the account's money."""

    def __init__(
        self,
        fake: F,
        adapter_for: Callable[[F], ExecutionAdapter],
        *,
        name: str,
        kind: str,
        iid: str,
        fund: Callable[[Stack, list[Instrument]], None],
    ) -> None:
        self.fake, self.adapter_for, self.name, self.iid = fake, adapter_for, name, iid
        self.stack = Stack()
        fund(self.stack, asyncio.run(_instruments(lambda: adapter_for(fake))))
        self.stack.publisher.publish(
            QUOTES, QuoteTick(iid, D("49990"), D("1"), D("50010"), D("1"), self.stack.tick())
        )
        params = {"account": ACCOUNT}
        self.stack.publisher.publish(
            VENUE_EVENTS,
            VenueStateChanged(
                name, kind, params, VenueState.LIVE, "test", 0, 0, 0, 0, 0, 0, self.stack.tick()
            ),
        )
        self.stack.run()
        self.start()

    def start(self) -> None:
        self.stop_event = threading.Event()
        self.gateway = Gateway(
            self.name,
            self.adapter_for(self.fake),
            self.stack.log,
            self.stack.codec,
            account=ACCOUNT,
            clock=self.stack.clock,
            max_request_age_s=1e9,
            retry=RetryPolicy(0.05, 0.05, 0),
        )
        self.thread = threading.Thread(target=self.gateway.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        wait_until(self.gateway.ready.is_set, 60, "the gateway to reconcile and listen")

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()

    def submit(self, qty: str, price: str) -> str:
        return self.stack.submit(OrderSide.BUY, qty, price, instrument_id=self.iid).order_id

    def amend(self, order_id: str, price: str) -> None:
        self.stack.command(AmendOrder(order_id, ACCOUNT, self.iid, self.stack.tick(), price=D(price)))

    def cancel(self, order_id: str) -> None:
        self.stack.command(CancelOrder(order_id, ACCOUNT, self.iid, self.stack.tick()))

    def last(self, order_id: str) -> str:
        names = [
            type(e).__name__
            for e in self.stack.events("orders.events")
            if getattr(e, "order_id", None) == order_id
            and type(e).__name__ not in ("OrderTransitionRejected", "OrderAmendAccepted")
        ]
        return names[-1] if names else ""

    def until(self, order_id: str, status: str) -> Any:
        def reached() -> bool:
            self.stack.run()
            return self.last(order_id) == status

        return wait_until(reached, 30, f"{order_id} {status}", every=0.05, detail=lambda: self.last(order_id))

    def fills(self, order_id: str) -> list[Any]:
        return [
            e.fill
            for e in self.stack.events("orders.events")
            if isinstance(e, OrderFilled | OrderPartiallyFilled) and e.order_id == order_id
        ]
