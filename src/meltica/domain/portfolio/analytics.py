"""Execution analytics per order: arrival price, average fill, slippage and latencies."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meltica.domain.values import BPS, ZERO, OrderSide


@dataclass(slots=True)
class ExecutionAnalytics:
    """How one order was executed, from its events' timestamps and the market at acceptance."""

    order_id: str
    side: OrderSide
    ts_submitted: int
    arrival_px: Decimal | None = None
    ts_acknowledged: int | None = None
    ts_filled: int | None = None
    filled_qty: Decimal = ZERO
    avg_fill_px: Decimal | None = None

    @property
    def slippage_bps(self) -> Decimal | None:
        """Cost against the arrival price in basis points; positive is worse for the order."""
        if self.arrival_px is None or self.avg_fill_px is None or self.arrival_px == ZERO:
            return None
        return (self.avg_fill_px - self.arrival_px) / self.arrival_px * BPS * self.side.sign

    @property
    def submit_to_ack_ns(self) -> int | None:
        return None if self.ts_acknowledged is None else self.ts_acknowledged - self.ts_submitted

    @property
    def submit_to_fill_ns(self) -> int | None:
        return None if self.ts_filled is None else self.ts_filled - self.ts_submitted
