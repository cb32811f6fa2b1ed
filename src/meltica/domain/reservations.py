"""What an open order holds back from a balance until it ends (used by risk and portfolio)."""

from __future__ import annotations

from decimal import Decimal

from meltica.domain.instruments import Instrument
from meltica.domain.values import ONE, OrderSide


def reservation(
    side: OrderSide, quantity: Decimal, price: Decimal, instrument: Instrument, band: Decimal | None = None
) -> tuple[str, Decimal]:
    """(asset, amount) locked by an order: a buy locks its quote notional plus the taker fee
    (an order that trades at market once live - market, stop-market, trailing-stop-market - at
    its reference price widened by the price band `band`); a spot sell locks
    the base quantity; a sell of an instrument without a base asset locks notional."""
    if side is OrderSide.SELL and instrument.base_currency is not None:
        return instrument.base_currency, quantity
    widened = price * (ONE + band) if band is not None else price
    notional = instrument.notional(quantity, widened)
    return instrument.settlement_currency, notional * (ONE + instrument.taker_fee)
