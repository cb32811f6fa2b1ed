"""Execution analytics per order, published per fill: arrival mid, slippage and latencies.

The portfolio keeps one `ExecutionAnalytics` per open order (from its acceptance to its end) and
publishes an `ExecutionAnalyzed` for each of its fills. The arrival price is the portfolio's mark
of the instrument when the order was accepted (a quote's mid, else the last trade or bar close);
for an order that waited for a trigger, the price it triggered at. Slippage is against that price, in
basis points rounded half-even to `SLIPPAGE_QUANTUM` (0.0001 bps), signed so that positive is
worse for the order (paid above arrival on a buy, sold below it on a sell).

One event per fill rather than per completed order: a fill is where a price is known, an order
partly filled and then canceled (or still resting) is analyzed too, a time window holds each
fill at its own time, and an order's figures are its fills' aggregated by quantity.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from meltica.domain.amounts import PRECISION
from meltica.domain.values import BPS, ZERO, OrderSide

SLIPPAGE_QUANTUM = Decimal("0.0001")
"""Slippage in bps is rounded (half-even) to this many basis points."""
_SLIPPAGE_LIMIT = Decimal(10) ** (PRECISION - 5)  # a larger one has no room for its 4 places


def slippage_bps(side: OrderSide, arrival_px: Decimal | None, fill_px: Decimal) -> Decimal | None:
    """What a fill at `fill_px` cost against `arrival_px`, in bps (positive: worse for the order);
    None without a positive arrival price or when the slippage is too large to hold exactly."""
    if arrival_px is None or arrival_px <= ZERO:
        return None
    with localcontext() as ctx:
        ctx.prec = 3 * PRECISION
        bps = (fill_px - arrival_px) * BPS * side.sign / arrival_px
        if abs(bps) >= _SLIPPAGE_LIMIT:
            return None
        return bps.quantize(SLIPPAGE_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(slots=True)
class ExecutionAnalytics:
    """What the portfolio knows of one open order's execution, from its events' timestamps and
    the market when it was accepted (or triggered)."""

    order_id: str
    side: OrderSide
    ts_submitted: int  # accepted; replaced by the time it was sent to its venue
    arrival_px: Decimal | None = None
    ts_acknowledged: int | None = None
    # unused since fills are analyzed one by one; kept because snapshots pickled plainly hold them
    ts_filled: int | None = None
    filled_qty: Decimal = ZERO
    avg_fill_px: Decimal | None = None
    account_id: str = ""
    instrument_id: str = ""
    venue: str = ""
    strategy_id: str | None = None
    sent: bool = False  # ts_submitted is the time it was sent to its venue

    @property
    def submit_to_ack_ns(self) -> int | None:
        """From sending the order to its venue to the venue's acknowledgement (None: not both seen)."""
        if not self.sent or self.ts_acknowledged is None:
            return None
        return self.ts_acknowledged - self.ts_submitted

    def ack_to_fill_ns(self, ts_fill: int) -> int | None:
        """From the venue's acknowledgement to a fill at `ts_fill` (None: no acknowledgement seen)."""
        return None if self.ts_acknowledged is None else ts_fill - self.ts_acknowledged
