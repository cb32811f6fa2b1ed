"""Portfolio events and the balance adjustment command. Each mirrors its Avro schema."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from meltica.domain.values import OrderSide


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


@dataclass(frozen=True, slots=True)
class VenueBalanceReported:
    """Command: what a live venue says the account holds of one asset (free plus locked)."""

    account_id: str
    venue: str
    asset: str
    total: Decimal
    ts: int


@dataclass(frozen=True, slots=True)
class BalanceDiscrepancy:
    """Event: the venue's balance of an asset differs from the portfolio's."""

    account_id: str
    venue: str
    asset: str
    meltica_total: Decimal
    venue_total: Decimal
    difference: Decimal  # venue_total - meltica_total
    ts: int


@dataclass(frozen=True, slots=True)
class ExecutionAnalyzed:
    """Event: how one fill executed against the order's arrival mid (see `analytics`)."""

    account_id: str
    instrument_id: str
    order_id: str
    trade_id: str
    venue: str
    strategy_id: str | None
    side: OrderSide
    arrival_mid: Decimal | None  # the mark at acceptance (a stop: its trigger price); None: none
    fill_px: Decimal
    quantity: Decimal
    slippage_bps: Decimal | None  # positive: worse for the order; None without an arrival mid
    submit_to_ack_ns: int | None  # sent to the venue -> acknowledged; None: not both seen
    ack_to_fill_ns: int | None  # acknowledged -> this fill; None: no acknowledgement seen
    ts: int


PortfolioEvent = PositionChanged | BalanceChanged | PnLMarked | BalanceDiscrepancy | ExecutionAnalyzed
