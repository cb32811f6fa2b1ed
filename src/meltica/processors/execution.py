"""Execution (the topology's `venue` processor): venue requests and market data to the simulated
matching engine of `venues/sim`, its execution reports out. A request for a live venue (one a
registry connection executes for, `venues/live.py`) is left to that connection's gateway, which
answers on `venue.reports` itself; a request for any other venue is rejected. Its name on the
wire (service, journal, event ids) stays `venue`."""

from __future__ import annotations

from typing import Any

from meltica.clock import Clock
from meltica.domain.control import VenueState, VenueStateChanged, venue_down
from meltica.domain.instruments import Instrument
from meltica.domain.orders.events import ExecutionReport, VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.orders.model import OrderStatus
from meltica.domain.routing import ROUTER
from meltica.domain.values import ExecType
from meltica.runtime.processor import Output
from meltica.topics import VENUE_REPORTS
from meltica.venues.live import connection_venue, execution_venue
from meltica.venues.sim.matching import SimVenue

_REQUESTS = (VenueSubmitOrder, VenueCancelOrder, VenueAmendOrder)


class ExecutionProcessor:
    """Routes requests to the venue named in them; market data goes to every venue."""

    name = "venue"
    live: frozenset[str] = frozenset()  # venue codes a gateway executes for (class default: old snapshots)
    feeds: dict[str, dict[str, str | None]]  # simulated venue -> its feeding connections -> why failed

    def __init__(self, venues: list[SimVenue]) -> None:
        self.venues = {v.name: v for v in venues}
        self.feeds = {}
        self.layout = ",".join(self.venues)

    def handle(self, topic: str, event: Any, clock: Clock) -> list[Output]:
        if isinstance(event, Instrument):
            for v in self.venues.values():
                v.on_instrument(event)
            return []
        if isinstance(event, VenueStateChanged):
            return _out(self._follow(event))
        if isinstance(event, _REQUESTS):
            venue = self.venues.get(event.venue)
            if venue is not None:
                reports = venue.on_request(event)
            elif event.venue in self.live or event.venue == ROUTER:
                return []  # the venue's gateway (or the router) answers
            else:
                reports = _unknown_venue(event)
        else:
            reports = [r for v in self.venues.values() for r in v.on_market(event)]
        return _out(reports)

    def _follow(self, event: VenueStateChanged) -> list[ExecutionReport]:
        """A registry connection that executes makes its venue live until it is removed; one that
        feeds a simulated venue takes it down while it has failed."""
        code = execution_venue(event.adapter, event.params)
        if code is None:
            sim = self.venues.get(connection_venue(event.adapter, event.params))
            if sim is None:
                return []
            why = f"{event.venue} {event.state.value.lower()}: {event.reason}"
            mine = self.__dict__.setdefault("feeds", {}).setdefault(sim.name, {})  # (old snapshots: none)
            if event.state is VenueState.REMOVED:
                mine.pop(event.venue, None)
            else:
                mine[event.venue] = why if event.state is VenueState.FAILED else None
            up = venue_down(mine) is None  # down while every connection feeding it has failed
            if up == (sim.down is None):
                return []
            return sim.connection(up, why, event.ts)
        if code in self.venues:
            return []
        if event.state is VenueState.REMOVED:
            self.live = self.live - {code}
        else:
            self.live = self.live | {code}
        return []


def _out(reports: list[ExecutionReport]) -> list[Output]:
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
