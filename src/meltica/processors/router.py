"""Router (the topology's `router` processor): the smart order router of `domain/routing.py` as the
venue `SOR`. Parents' venue requests, their children's order events, books and venue states in;
child order commands and the parents' execution reports out."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.control import VenueStateChanged
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import OrderBookDelta, OrderBookSnapshot, QuoteTick
from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.orders.events import VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.routing import ROUTER, RouterOutput, SmartRouter, venue_healthy
from meltica.runtime.processor import Output
from meltica.topics import ORDER_COMMANDS, ORDER_EVENTS, VENUE_REPORTS, key_of, order_id_of
from meltica.venues.live import connection_venue

_REQUESTS = (VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder)
_BOOKS = (QuoteTick, OrderBookSnapshot, OrderBookDelta)


class RouterProcessor:
    name = "router"

    def __init__(self, router: SmartRouter | None = None) -> None:
        self.router = router or SmartRouter()

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        r = self.router
        if isinstance(event, _BOOKS):
            r.on_book(event)
            return []
        if topic == ORDER_EVENTS:
            return self._out(r.on_child_event(event)) if r.parent_of else []
        if isinstance(event, _REQUESTS):
            return self._out(r.on_request(event)) if event.venue == ROUTER else []
        if isinstance(event, Instrument):
            r.on_instrument(event)
        elif isinstance(event, VenueStateChanged):
            venue = connection_venue(event.adapter, event.params)
            why = f"{event.venue} {event.state.value.lower()}"
            r.venue_state(venue, event.venue, venue_healthy(event.state.value), why)
        return []

    @staticmethod
    def _out(events: list[RouterOutput]) -> list[Output]:
        """Child commands to `orders.commands`, the parents' reports to `venue.reports`."""
        return [
            Output(
                ORDER_COMMANDS if isinstance(e, SubmitOrder | CancelOrder) else VENUE_REPORTS,
                key_of(e),
                e,
                trace_key=order_id_of(e),
            )
            for e in events
        ]
