"""Instrument definitions: what can be traded and at which granularity."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meltica.domain.values import ONE, ZERO


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument, id `SYMBOL.VENUE`; mirrors `InstrumentDefined`."""

    instrument_id: str
    symbol: str
    venue: str
    asset_class: str
    base_currency: str | None
    quote_currency: str
    settlement_currency: str
    price_precision: int
    size_precision: int
    price_increment: Decimal
    size_increment: Decimal
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    min_notional: Decimal | None = None
    multiplier: Decimal = ONE
    maker_fee: Decimal = ZERO
    taker_fee: Decimal = ZERO

    def notional(self, quantity: Decimal, price: Decimal) -> Decimal:
        """Value of `quantity` at `price` in the quote currency."""
        return quantity * price * self.multiplier


def spot(
    symbol: str,
    venue: str,
    base: str,
    quote: str,
    *,
    price_increment: str,
    size_increment: str,
    min_notional: str | None = None,
    maker_fee: str = "0",
    taker_fee: str = "0",
) -> Instrument:
    """A spot pair, precisions taken from the increments."""
    pi, si = Decimal(price_increment), Decimal(size_increment)
    return Instrument(
        instrument_id=f"{symbol}.{venue}",
        symbol=symbol,
        venue=venue,
        asset_class="SPOT",
        base_currency=base,
        quote_currency=quote,
        settlement_currency=quote,
        price_precision=max(0, -int(pi.normalize().as_tuple().exponent)),
        size_precision=max(0, -int(si.normalize().as_tuple().exponent)),
        price_increment=pi,
        size_increment=si,
        min_notional=None if min_notional is None else Decimal(min_notional),
        maker_fee=Decimal(maker_fee),
        taker_fee=Decimal(taker_fee),
    )
