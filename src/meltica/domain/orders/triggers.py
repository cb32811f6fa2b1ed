"""When stop and trailing-stop orders fire, from quotes and trades (pure)."""

from __future__ import annotations

from decimal import Decimal

from meltica.domain.marketdata import MarketData, QuoteTick
from meltica.domain.orders.model import Order
from meltica.domain.values import BPS, ONE, OrderSide, TrailingOffsetType, TriggerType


def reference_price(order: Order, tick: MarketData) -> Decimal | None:
    """The price of `tick` that `order`'s trigger type watches, or None if it watches another kind."""
    trigger = order.spec.trigger_type
    if isinstance(tick, QuoteTick):
        if trigger is TriggerType.BID:
            return tick.bid_px
        if trigger is TriggerType.ASK:
            return tick.ask_px
        if trigger is TriggerType.MID:
            return (tick.bid_px + tick.ask_px) / 2
        if trigger is TriggerType.DEFAULT:  # the price the order would trade at
            return tick.ask_px if order.spec.side is OrderSide.BUY else tick.bid_px
        return None
    return tick.price if trigger in (TriggerType.LAST, TriggerType.DEFAULT) else None


def trailed_trigger(order: Order, price: Decimal) -> Decimal:
    """The trailing trigger after seeing `price`: it only ever moves in the order's favour."""
    spec = order.spec
    offset = spec.trailing_offset or Decimal(0)
    if spec.side is OrderSide.SELL:
        candidate = (
            price - offset
            if spec.trailing_offset_type is TrailingOffsetType.PRICE
            else price * (ONE - offset / BPS)
        )
        return candidate if order.trigger_price is None else max(order.trigger_price, candidate)
    candidate = (
        price + offset
        if spec.trailing_offset_type is TrailingOffsetType.PRICE
        else price * (ONE + offset / BPS)
    )
    return candidate if order.trigger_price is None else min(order.trigger_price, candidate)


def is_activated(order: Order, price: Decimal) -> bool:
    """A trailing stop trails once the market reaches its activation price (a sell's from below,
    a buy's from above); one without, or already trailing (it has a trigger), trails at once."""
    activation = order.spec.activation_price
    if activation is None or order.trigger_price is not None:
        return True
    return price >= activation if order.spec.side is OrderSide.SELL else price <= activation


def is_triggered(side: OrderSide, trigger_price: Decimal, price: Decimal) -> bool:
    """A buy stop fires at or above its trigger, a sell stop at or below."""
    return price >= trigger_price if side is OrderSide.BUY else price <= trigger_price


def triggered_limit_price(order: Order, trigger_price: Decimal) -> Decimal | None:
    """Limit price of a stop-limit or trailing-stop-limit order once it fires."""
    spec = order.spec
    if spec.order_type.is_trailing and spec.order_type.has_limit_price:
        offset = spec.limit_offset or Decimal(0)
        return trigger_price + offset if spec.side is OrderSide.BUY else trigger_price - offset
    return order.price
