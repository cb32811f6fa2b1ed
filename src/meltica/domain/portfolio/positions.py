"""Net positions with FIFO lots.

Method (FIFO): a fill in the position's direction opens a lot at the fill price; a fill
against it closes the oldest lots first, realizing (exit - entry) * closed quantity * side
* multiplier per lot; what is left of a fill that crosses zero opens a new lot. Every step
is a decimal multiplication or subtraction, so realized and unrealized PnL are exact (an
average-cost method divides and would round). `avg_px` is the lots' weighted mean, for
display. Unrealized PnL is sum of (mark - entry) * lot quantity * multiplier. Fees are kept
apart from realized PnL, so realized + unrealized - fees is the trading result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from meltica.domain.portfolio.events import Lot, PositionSide
from meltica.domain.values import ONE, ZERO


@dataclass(slots=True)
class Position:
    account_id: str
    instrument_id: str
    currency: str
    multiplier: Decimal = ONE
    lots: tuple[Lot, ...] = ()
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    mark_px: Decimal | None = None
    quantity: Decimal = field(init=False, default=ZERO)

    def __post_init__(self) -> None:
        self.quantity = sum((lot.quantity for lot in self.lots), ZERO)

    def set_lots(self, lots: tuple[Lot, ...]) -> None:
        self.lots = lots
        self.quantity = sum((lot.quantity for lot in lots), ZERO)

    @property
    def side(self) -> PositionSide:
        if self.quantity > ZERO:
            return PositionSide.LONG
        return PositionSide.SHORT if self.quantity < ZERO else PositionSide.FLAT

    @property
    def avg_px(self) -> Decimal:
        if self.quantity == ZERO:
            return ZERO
        return sum((lot.quantity * lot.price for lot in self.lots), ZERO) / self.quantity

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.mark_px is None:
            return ZERO
        mark = self.mark_px
        return sum(((mark - lot.price) * lot.quantity for lot in self.lots), ZERO) * self.multiplier

    def market_value(self) -> Decimal:
        """Value at the mark (at entry prices before the first mark)."""
        if self.mark_px is None:
            return sum((lot.quantity * lot.price for lot in self.lots), ZERO) * self.multiplier
        return self.quantity * self.mark_px * self.multiplier


def after_fill(
    lots: tuple[Lot, ...], signed_qty: Decimal, price: Decimal, multiplier: Decimal = ONE
) -> tuple[tuple[Lot, ...], Decimal]:
    """(lots, realized PnL of this fill) after a fill of `signed_qty` at `price`."""
    remaining = signed_qty
    realized = ZERO
    open_lots = list(lots)
    while remaining != ZERO and open_lots and (open_lots[0].quantity > ZERO) != (remaining > ZERO):
        lot = open_lots[0]
        closing = min(abs(remaining), abs(lot.quantity))
        direction = ONE if lot.quantity > ZERO else -ONE
        realized += (price - lot.price) * closing * direction * multiplier
        left = abs(lot.quantity) - closing
        if left == ZERO:
            open_lots.pop(0)
        else:
            open_lots[0] = Lot(left * direction, lot.price)
        remaining += closing * direction
    if remaining != ZERO:
        if open_lots and open_lots[-1].price == price:  # same entry price: one lot, FIFO unchanged
            open_lots[-1] = Lot(open_lots[-1].quantity + remaining, price)
        else:
            open_lots.append(Lot(remaining, price))
    return tuple(open_lots), realized
