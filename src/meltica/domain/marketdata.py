"""Market data as the deciders see it (mirrors `QuoteTick`, `TradeTick`, `Bar`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from meltica.domain.values import OrderSide


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
