"""Market data as the deciders see it (mirrors `QuoteTick`, `TradeTick`, `Bar`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class AggressorSide(StrEnum):
    NONE = "NO_AGGRESSOR"
    BUYER = "BUYER"
    SELLER = "SELLER"


@dataclass(frozen=True, slots=True)
class QuoteTick:
    instrument_id: str
    bid_px: Decimal
    bid_qty: Decimal
    ask_px: Decimal
    ask_qty: Decimal
    ts: int


@dataclass(frozen=True, slots=True)
class TradeTick:
    instrument_id: str
    price: Decimal
    size: Decimal
    aggressor_side: AggressorSide
    trade_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class ClockTick:
    """Time passed (a timer, not an event): expiries are decided on it."""

    ts: int


MarketData = QuoteTick | TradeTick
