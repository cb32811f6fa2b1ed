"""Order processor: the order-book decider on what risk accepted (orders and amends), venue
reports, client cancels, market data (triggers), the clock (expiry) and kill switches."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.marketdata import ClockTick, QuoteTick, TradeTick
from meltica.domain.orders import decider as orders
from meltica.domain.orders.commands import AmendOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import (
    OrderAccepted,
    OrderAmendAccepted,
    OrderDenied,
    VenueAmendOrder,
    VenueCancelOrder,
    VenueSubmitOrder,
)
from meltica.runtime.processor import Output
from meltica.topics import ORDER_EVENTS, VENUE_REQUESTS, key_of, order_id_of

_FROM_RISK = (OrderAccepted, OrderDenied, OrderAmendAccepted)
_VENUE = (VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder)


class OrderProcessor:
    name = "orders"

    def __init__(self, book: orders.OrderBook | None = None) -> None:
        self.book = book or orders.OrderBook()

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if isinstance(event, SubmitOrder | SubmitOrderList | AmendOrder):
            return []  # risk decides on submissions and amends
        outputs: list[Output] = []
        if isinstance(event, QuoteTick | TradeTick):
            outputs += self._decide(ClockTick(event.ts))
        if topic == ORDER_EVENTS and not isinstance(event, _FROM_RISK):
            return outputs  # our own events, applied when we emitted them
        outputs += self._decide(event)
        return outputs

    def _decide(self, inp: Any) -> list[Output]:
        """Decide, apply the input if it is an order event from risk, then apply the outcome."""
        out = []
        decided = orders.decide(self.book, inp)
        if isinstance(inp, _FROM_RISK):
            orders.evolve(self.book, inp)
        for e in decided:
            orders.evolve(self.book, e)
            order = self.book.orders.get(order_id_of(e) or "")
            version = order.version if order is not None else 0
            topic = VENUE_REQUESTS if isinstance(e, _VENUE) else ORDER_EVENTS
            out.append(Output(topic, key_of(e), e, trace_key=order_id_of(e), version=version))
        return out
