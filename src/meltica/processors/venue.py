"""Venue gateway processor: venue requests and market data to the venue, its reports out."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.instruments import Instrument
from meltica.domain.orders.events import ExecutionReport, VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.orders.model import OrderStatus
from meltica.domain.values import ExecType
from meltica.runtime.processor import Output
from meltica.topics import VENUE_REPORTS, inputs_of
from meltica.venues.sim.matching import SimVenue

_REQUESTS = (VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder)


class VenueProcessor:
    """Routes requests to the venue named in them; market data goes to every venue."""

    name = "venue"
    inputs = inputs_of("venue")

    def __init__(self, venues: list[SimVenue]) -> None:
        self.venues = {v.name: v for v in venues}
        self.layout = ",".join(self.venues)

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if isinstance(event, Instrument):
            for v in self.venues.values():
                v.on_instrument(event)
            return []
        if isinstance(event, _REQUESTS):
            venue = self.venues.get(event.venue)
            reports = venue.on_request(event) if venue is not None else _unknown_venue(event)
        else:
            reports = [r for v in self.venues.values() for r in v.on_market(event)]
        return [Output(VENUE_REPORTS, r.account_id, r, trace_key=r.order_id) for r in reports]


def _unknown_venue(req: Any) -> list[ExecutionReport]:
    """Nothing can trade at a venue that is not configured: submissions are rejected."""
    if not isinstance(req, VenueSubmitOrder):
        return []
    o = req.order
    return [
        ExecutionReport(
            req.venue,
            ExecType.REJECTED,
            o.order_id,
            o.account_id,
            o.instrument_id,
            OrderStatus.REJECTED,
            req.ts,
            req.ts,
            reason=f"unknown venue {req.venue!r}",
        )
    ]
