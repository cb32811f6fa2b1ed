"""What the streaming venues' market-data tests share: an adapter polled through a Normalizer
(`Feed`), a venue registry on an in-memory log (`Registry`) and the book published events make."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

from meltica.control.venues import VenueManager
from meltica.domain.control import ControlVenue, VenueAction, VenueState, VenueStateChanged
from meltica.domain.marketdata import OrderBookDelta, OrderBookSnapshot
from meltica.domain.values import OrderSide
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.memory import MemoryLog
from meltica.marketdata.adapters import Adapter
from meltica.marketdata.normalize import Counters, Normalizer
from meltica.runtime.publisher import Publisher
from meltica.topics import BOOK, INSTRUMENTS, QUOTES, TRADES, VENUE_EVENTS, topic_specs
from tests.waiting import wait_until

A = TypeVar("A", bound=Adapter)
Book = dict[OrderSide, dict[Decimal, Decimal]]


class Feed(Generic[A]):
    """The adapter polled through a venue's Normalizer, resynced on a gap as the manager does."""

    def __init__(self, adapter: A) -> None:
        self.adapter = adapter
        self.normalizer = Normalizer(adapter.venue)
        self.counters = Counters()
        self.events: list[Any] = []

    def pump(self) -> list[Any]:
        for item in self.adapter.poll() or []:
            self.events += self.normalizer.accept(item, self.counters)
        for iid in sorted(self.normalizer.needs_resync):
            snapshot = self.adapter.snapshot(iid)
            assert snapshot is not None
            self.events += self.normalizer.accept(snapshot, self.counters)
        return self.events

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.pump() if isinstance(e, kind)]


def rebuilt(events: list[Any], instrument_id: str) -> Book:
    """The book the published snapshots and deltas of `instrument_id` make."""
    book: Book = {OrderSide.BUY: {}, OrderSide.SELL: {}}
    for e in events:
        if isinstance(e, OrderBookSnapshot) and e.instrument_id == instrument_id:
            book = {
                OrderSide.BUY: {lv.price: lv.size for lv in e.bids},
                OrderSide.SELL: {lv.price: lv.size for lv in e.asks},
            }
        elif isinstance(e, OrderBookDelta) and e.instrument_id == instrument_id:
            if e.size:
                book[e.side][e.price] = e.size
            else:
                book[e.side].pop(e.price, None)
    return book


class Registry:
    """A venue manager on an in-memory log, adding venues of adapter `kind`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.log = MemoryLog()
        for spec in topic_specs(2):
            self.log.create_topic(spec)
        self.codec = Codec()
        self.venues = VenueManager(self.log, self.codec, Publisher(self.log, self.codec), report_every=0.05)

    def add(self, name: str, **params: str) -> None:
        self.venues.apply(ControlVenue(VenueAction.ADD, name, "op", 0, self.kind, params))
        self.venues.apply(ControlVenue(VenueAction.START, name, "op", 0))

    def events(self, topic: str) -> list[Any]:
        found = []
        for p in range(self.log.partitions(topic)):
            for rec in self.log.read(topic, p, 0, 100_000):
                found.append((rec.seq, from_record(*self.codec.decode_record(rec))))
        return [e for _, e in sorted(found, key=lambda x: x[0])]

    def wait_live(self, name: str) -> None:
        wait_until(lambda: self.venues.states().get(name) is VenueState.LIVE, 20, f"{name} live")

    def wait_snapshot(self) -> None:
        """A book snapshot is in the log (the books synced)."""
        wait_until(lambda: any(isinstance(e, OrderBookSnapshot) for e in self.events(BOOK)), 20, "a snapshot")

    def landed(self) -> bool:
        """Instruments, trades, quotes and a book delta are in the log."""
        return all(self.events(t) for t in (INSTRUMENTS, TRADES, QUOTES)) and any(
            isinstance(e, OrderBookDelta) for e in self.events(BOOK)
        )

    def states(self, name: str) -> list[tuple[str, str]]:
        return [
            (e.state.value, e.reason)
            for e in self.events(VENUE_EVENTS)
            if isinstance(e, VenueStateChanged) and e.venue == name
        ]
