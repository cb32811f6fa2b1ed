"""Market data as the deciders see it (mirrors `QuoteTick`, `TradeTick`, `Bar`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from meltica.domain.values import ZERO, OrderSide


class AggressorSide(StrEnum):
    NONE = "NO_AGGRESSOR"
    BUYER = "BUYER"
    SELLER = "SELLER"


OUT_OF_ORDER = 1  # flag: the tick is older than the latest one of its instrument and kind


@dataclass(frozen=True, slots=True)
class QuoteTick:
    instrument_id: str
    bid_px: Decimal
    bid_qty: Decimal
    ask_px: Decimal
    ask_qty: Decimal
    ts: int
    flags: int = 0  # MarketDataFlag bits

    @property
    def mid(self) -> Decimal:
        """The middle of the spread: the one mid price every part of Meltica uses."""
        return (self.bid_px + self.ask_px) / 2


@dataclass(frozen=True, slots=True)
class TradeTick:
    instrument_id: str
    price: Decimal
    size: Decimal
    aggressor_side: AggressorSide
    trade_id: str
    ts: int
    flags: int = 0  # MarketDataFlag bits


@dataclass(frozen=True, slots=True)
class ClockTick:
    """Time passed (a timer, not an event): expiries are decided on it."""

    ts: int


class BookAction(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CLEAR = "CLEAR"


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    size: Decimal
    orders: int = 0


@dataclass(frozen=True, slots=True)
class OrderBookSnapshot:
    instrument_id: str
    sequence: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    ts: int


@dataclass(frozen=True, slots=True)
class OrderBookDelta:
    """One L2 change: `size` is the new total at `price` (DELETE or size 0 removes the level)."""

    instrument_id: str
    action: BookAction
    side: OrderSide
    price: Decimal
    size: Decimal
    sequence: int
    ts: int
    order_id: str | None = None
    flags: int = 0


@dataclass(frozen=True, slots=True)
class Bar:
    instrument_id: str
    spec: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    ts_open: int
    ts: int


MarketData = QuoteTick | TradeTick


def mark_price(tick: QuoteTick | TradeTick | Bar) -> Decimal:
    """The price a position is marked at after `tick`: a trade's price, a bar's close, a quote's mid."""
    if isinstance(tick, TradeTick):
        return tick.price
    if isinstance(tick, Bar):
        return tick.close
    return tick.mid


@dataclass
class Book:
    """Price levels of one instrument, as the market data last said (a quote is a one-level book)."""

    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def apply(self, tick: QuoteTick | OrderBookSnapshot | OrderBookDelta) -> None:
        """The book after `tick`."""
        if isinstance(tick, QuoteTick):
            self.bids, self.asks = {tick.bid_px: tick.bid_qty}, {tick.ask_px: tick.ask_qty}
        elif isinstance(tick, OrderBookSnapshot):
            self.bids = {lv.price: lv.size for lv in tick.bids}
            self.asks = {lv.price: lv.size for lv in tick.asks}
        else:
            levels = self.side(tick.side)
            if tick.action is BookAction.CLEAR:
                levels.clear()
            elif tick.action is BookAction.DELETE or tick.size <= ZERO:
                levels.pop(tick.price, None)
            else:
                levels[tick.price] = tick.size

    def side(self, side: OrderSide) -> dict[Decimal, Decimal]:
        return self.bids if side is OrderSide.BUY else self.asks

    def levels(self, side: OrderSide) -> list[tuple[Decimal, Decimal]]:
        """Levels of one side, best first."""
        levels = self.side(side)
        return sorted(levels.items(), reverse=side is OrderSide.BUY)

    def best(self, side: OrderSide) -> Decimal | None:
        levels = self.side(side)
        if not levels:
            return None
        return max(levels) if side is OrderSide.BUY else min(levels)

    def take(self, side: OrderSide, price: Decimal, qty: Decimal) -> None:
        """`qty` taken at `price`: gone from the level until the market says otherwise."""
        levels = self.side(side)
        left = levels.get(price, ZERO) - qty
        if left > ZERO:
            levels[price] = left
        else:
            levels.pop(price, None)
