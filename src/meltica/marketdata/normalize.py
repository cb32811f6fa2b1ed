"""Market-data normalization: one venue's raw data as Meltica events, duplicates dropped, gaps found.

Every connection to a venue feeds the venue's one `Normalizer`, so redundant connections (aliases
of one adapter) publish each tick once. Instrument ids become `SYMBOL.VENUE`. A trade id, a book
sequence or an identical quote seen before is a duplicate: dropped and counted. A book update
whose previous sequence is not the last one applied is a gap: the instrument's updates are dropped
until a snapshot resyncs it (`needs_resync`). A tick older than the instrument's latest of its kind
is kept, flagged `OUT_OF_ORDER` and counted. An instrument definition (a live venue's markets) is
published unless the same definition was seen before.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import (
    OUT_OF_ORDER,
    Bar,
    OrderBookDelta,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """One venue book message: its deltas, its sequence and the sequence it follows."""

    instrument_id: str
    sequence: int
    prev_sequence: int
    deltas: tuple[OrderBookDelta, ...]


RawData = QuoteTick | TradeTick | Bar | OrderBookSnapshot | BookUpdate | Instrument


@dataclass
class Counters:
    """What one connection sent, and what became of it."""

    received: int = 0
    published: int = 0
    duplicates: int = 0
    gaps: int = 0
    out_of_order: int = 0
    resyncs: int = 0


class _Window:
    """The last `size` keys seen (a bounded set: memory stays flat on endless feeds)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[Any, None] = OrderedDict()

    def seen(self, key: Any) -> bool:
        """True if `key` was seen before; remembers it either way."""
        if key in self._keys:
            return True
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return False


class Normalizer:
    """The normalization state of one venue; thread-safe (several connections may share it)."""

    def __init__(self, venue: str, *, window: int = 100_000) -> None:
        self.venue = venue
        self._seen = _Window(window)
        self._latest: dict[tuple[str, str], int] = {}  # (kind, instrument) -> latest ts
        self._book: dict[str, int] = {}  # instrument -> last sequence applied
        self.needs_resync: set[str] = set()
        self._lock = threading.Lock()

    def instrument_id(self, raw: str) -> str:
        """`SYMBOL.VENUE`: a bare symbol gets this venue's suffix."""
        return raw if "." in raw else f"{raw}.{self.venue}"

    def remember(self, event: Any) -> None:
        """Note an event published before this process started (duplicates stay duplicates)."""
        with self._lock:
            if isinstance(event, OrderBookDelta | OrderBookSnapshot):
                last = self._book.get(event.instrument_id, event.sequence)
                self._book[event.instrument_id] = max(last, event.sequence)
            elif isinstance(event, QuoteTick | TradeTick | Bar):
                self._accept(event, event.instrument_id, Counters())

    def accept(self, item: RawData, counters: Counters) -> list[Any]:
        """The events to publish for `item` (none when it is dropped)."""
        with self._lock:
            counters.received += 1
            iid = self.instrument_id(item.instrument_id)
            out = self._accept(item, iid, counters)
            counters.published += len(out)
            return out

    def _accept(self, item: RawData, iid: str, c: Counters) -> list[Any]:
        if isinstance(item, BookUpdate):
            return self._update(item, iid, c)
        if isinstance(item, Instrument):
            if self._seen.seen(("I", item)):
                c.duplicates += 1
                return []
            return [item]
        if isinstance(item, OrderBookSnapshot):
            last = self._book.get(iid)
            if last is not None and item.sequence <= last and iid not in self.needs_resync:
                c.duplicates += 1
                return []
            self._book[iid] = item.sequence
            if iid in self.needs_resync:
                self.needs_resync.discard(iid)
                c.resyncs += 1
            return [dataclasses.replace(item, instrument_id=iid)]
        key: tuple[Any, ...]
        if isinstance(item, TradeTick):
            key = ("T", iid, item.trade_id)
        elif isinstance(item, QuoteTick):
            key = ("Q", iid, item.ts, item.bid_px, item.bid_qty, item.ask_px, item.ask_qty)
        else:
            key = ("B", iid, item.spec, item.ts_open)
        if self._seen.seen(key):
            c.duplicates += 1
            return []
        latest = self._latest.get((key[0], iid))
        if latest is not None and item.ts < latest:
            c.out_of_order += 1
            if isinstance(item, QuoteTick | TradeTick):
                return [dataclasses.replace(item, instrument_id=iid, flags=item.flags | OUT_OF_ORDER)]
        else:
            self._latest[(key[0], iid)] = item.ts
        return [dataclasses.replace(item, instrument_id=iid)]

    def _update(self, u: BookUpdate, iid: str, c: Counters) -> list[Any]:
        last = self._book.get(iid)
        if iid in self.needs_resync:
            return []  # waiting for the snapshot
        if last is not None and u.sequence <= last:
            c.duplicates += 1
            return []
        if last is None or u.prev_sequence != last:
            c.gaps += last is not None  # no book yet is not a gap, but it needs a snapshot as well
            self.needs_resync.add(iid)
            return []
        self._book[iid] = u.sequence
        return [dataclasses.replace(d, instrument_id=iid) for d in u.deltas]
