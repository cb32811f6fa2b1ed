"""Portfolio events and the balance adjustment command. Each mirrors its Avro schema."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class PositionSide(StrEnum):
    FLAT = "FLAT"
    LONG = "LONG"
    SHORT = "SHORT"


@dataclass(frozen=True, slots=True)
class Lot:
    """An open lot: signed quantity at its entry price."""

    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class AdjustBalance:
    """Command: deposit (positive) or withdraw (negative) an asset."""

    account_id: str
    asset: str
    delta: Decimal
    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class PositionChanged:
    account_id: str
    instrument_id: str
    side: PositionSide
    quantity: Decimal
    avg_px: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    currency: str
    ts: int
    last_px: Decimal | None = None
    trade_id: str | None = None
    lots: tuple[Lot, ...] = ()


@dataclass(frozen=True, slots=True)
class BalanceChanged:
    account_id: str
    asset: str
    total: Decimal
    free: Decimal
    locked: Decimal
    delta: Decimal
    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class PnLMarked:
    account_id: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    equity: Decimal
    currency: str
    ts: int
    instrument_id: str | None = None
    mark_px: Decimal | None = None
