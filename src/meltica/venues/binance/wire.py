"""Binance's JSON as the port's values, and Meltica's orders as Binance's parameters (pure).

Amounts come as Binance's decimal strings and stay exact. An order amended by cancel-replace is a
chain of venue orders; `Chain` carries what the earlier ones filled, so the venue order that rests
now is reported as Meltica's one order (its total quantity, fills and average price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import ZERO, LiquiditySide, OrderSide, OrderType, TimeInForce
from meltica.venues.common import dec, places, text
from meltica.venues.port import VenueBalance, VenueOrder, VenueRejectedError, VenueTrade

NS_PER_MS = 1_000_000

STATUSES: Mapping[str, OrderStatus] = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "REJECTED": OrderStatus.REJECTED,
}
"""Binance's order status -> Meltica's."""

OPEN = frozenset({"NEW", "PENDING_NEW", "PARTIALLY_FILLED"})
TIME_IN_FORCE = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})


@dataclass(frozen=True, slots=True)
class Chain:
    """An order's venue orders so far: the generation resting now, what the earlier ones filled."""

    generation: int = 0
    filled: Decimal = ZERO
    quote: Decimal = ZERO  # sum of price x quantity of those fills

    def then(self, replaced: Mapping[str, Any], generation: int) -> Chain:
        """The chain after `replaced` (generation `self.generation`) was canceled for `generation`."""
        return Chain(
            generation,
            self.filled + dec(replaced.get("executedQty", "0")),
            self.quote + dec(replaced.get("cummulativeQuoteQty", "0")),
        )


def _avg(filled: Decimal, quote: Decimal) -> Decimal | None:
    return (quote / filled).normalize() if filled else None


def _price(raw: Any) -> Decimal | None:
    price = dec(raw) if raw is not None else ZERO
    return price if price else None


def order_of(
    raw: Mapping[str, Any], instrument_id: str, order_id: str, chain: Chain, reason: str = ""
) -> VenueOrder:
    """A REST order (new order RESULT, query, cancel, openOrders entry)."""
    filled = chain.filled + dec(raw.get("executedQty", "0"))
    quote = chain.quote + dec(raw.get("cummulativeQuoteQty", "0"))
    ts = raw.get("updateTime") or raw.get("transactTime") or raw.get("time") or 0
    return VenueOrder(
        order_id=order_id,
        venue_order_id=str(raw["orderId"]),
        instrument_id=instrument_id,
        side=OrderSide(raw["side"]),
        status=STATUSES[raw["status"]],
        quantity=chain.filled + dec(raw["origQty"]),
        price=_price(raw.get("price")),
        filled_qty=filled,
        avg_px=_avg(filled, quote),
        ts=int(ts) * NS_PER_MS,
        reason=reason,
    )


def report_client_id(event: Mapping[str, Any]) -> str:
    """The client id of the order an executionReport is about (a cancel's report carries the
    cancel's own id in `c` and the order's in `C`)."""
    return str(event.get("C") or event["c"])


def order_of_report(event: Mapping[str, Any], instrument_id: str, order_id: str, chain: Chain) -> VenueOrder:
    """An executionReport as the order's new state."""
    filled = chain.filled + dec(event["z"])
    quote = chain.quote + dec(event["Z"])
    rejected = str(event.get("r") or "NONE")
    return VenueOrder(
        order_id=order_id,
        venue_order_id=str(event["i"]),
        instrument_id=instrument_id,
        side=OrderSide(event["S"]),
        status=STATUSES[event["X"]],
        quantity=chain.filled + dec(event["q"]),
        price=_price(event.get("p")),
        filled_qty=filled,
        avg_px=_avg(filled, quote),
        ts=int(event["T"]) * NS_PER_MS,
        reason="" if rejected == "NONE" else rejected,
    )


def trade_of_report(event: Mapping[str, Any], instrument_id: str, order_id: str | None) -> VenueTrade:
    """An executionReport of execution type TRADE as the fill."""
    return VenueTrade(
        trade_id=str(event["t"]),
        order_id=order_id,
        venue_order_id=str(event["i"]),
        instrument_id=instrument_id,
        side=OrderSide(event["S"]),
        quantity=dec(event["l"]),
        price=dec(event["L"]),
        fee=dec(event.get("n") or "0"),
        fee_currency=str(event.get("N") or ""),
        liquidity=LiquiditySide.MAKER if event.get("m") else LiquiditySide.TAKER,
        ts=int(event["T"]) * NS_PER_MS,
    )


def trade_of(raw: Mapping[str, Any], instrument_id: str, order_id: str | None) -> VenueTrade:
    """A `myTrades` entry."""
    return VenueTrade(
        trade_id=str(raw["id"]),
        order_id=order_id,
        venue_order_id=str(raw["orderId"]),
        instrument_id=instrument_id,
        side=OrderSide.BUY if raw["isBuyer"] else OrderSide.SELL,
        quantity=dec(raw["qty"]),
        price=dec(raw["price"]),
        fee=dec(raw["commission"]),
        fee_currency=str(raw["commissionAsset"]),
        liquidity=LiquiditySide.MAKER if raw["isMaker"] else LiquiditySide.TAKER,
        ts=int(raw["time"]) * NS_PER_MS,
    )


def balances_of(
    entries: list[Mapping[str, Any]], asset: str, free: str, locked: str
) -> tuple[VenueBalance, ...]:
    """Balances from `account` (`asset`/`free`/`locked`) or `outboundAccountPosition` (`a`/`f`/`l`);
    an account's empty assets are left out."""
    balances = (VenueBalance(str(e[asset]), dec(e[free]), dec(e[locked])) for e in entries)
    return tuple(b for b in balances if b.free or b.locked)


def _filter(info: Mapping[str, Any], *names: str) -> Mapping[str, Any]:
    for entry in info.get("filters", ()):
        if entry.get("filterType") in names:
            return dict(entry)
    return {}


def _positive(raw: Any) -> Decimal | None:
    if raw is None:
        return None
    value = dec(raw)
    return value if value > 0 else None


def instrument_of(info: Mapping[str, Any], venue: str, maker: Decimal, taker: Decimal) -> Instrument:
    """An `exchangeInfo` symbol as an instrument: PRICE_FILTER's tick, LOT_SIZE's step and bounds,
    NOTIONAL's (or the older MIN_NOTIONAL's) minimum."""
    price_filter = _filter(info, "PRICE_FILTER")
    lot = _filter(info, "LOT_SIZE")
    notional = _filter(info, "NOTIONAL", "MIN_NOTIONAL")
    tick = dec(price_filter.get("tickSize", "0"))
    step = dec(lot.get("stepSize", "0"))
    if not tick:  # no price filter: the quote asset's precision is the tick
        tick = Decimal(1).scaleb(-int(info.get("quotePrecision", 8)))
    if not step:
        step = Decimal(1).scaleb(-int(info.get("baseAssetPrecision", 8)))
    symbol, quote = str(info["symbol"]), str(info["quoteAsset"])
    return Instrument(
        instrument_id=f"{symbol}.{venue}",
        symbol=symbol,
        venue=venue,
        asset_class="SPOT",
        base_currency=str(info["baseAsset"]),
        quote_currency=quote,
        settlement_currency=quote,
        price_precision=places(tick),
        size_precision=places(step),
        price_increment=tick,
        size_increment=step,
        min_quantity=_positive(lot.get("minQty")),
        max_quantity=_positive(lot.get("maxQty")),
        min_notional=_positive(notional.get("minNotional")),
        maker_fee=maker,
        taker_fee=taker,
    )


def _refuse(spec: OrderSpec, why: str) -> VenueRejectedError:
    return VenueRejectedError("venue_rejected", f"order {spec.order_id}: {why}")


def order_params(spec: OrderSpec, symbol: str, client_id: str) -> dict[str, str]:
    """`POST /api/v3/order` for `spec`: LIMIT (GTC/IOC/FOK), post-only as LIMIT_MAKER, or MARKET."""
    if spec.order_type not in (OrderType.LIMIT, OrderType.MARKET):
        raise _refuse(spec, f"Binance spot takes LIMIT and MARKET orders here, not {spec.order_type}")
    if spec.display_quantity is not None:
        raise _refuse(spec, "icebergs are worked by Meltica, not sent to Binance")
    params = {
        "symbol": symbol,
        "side": spec.side.value,
        "quantity": text(spec.quantity),
        "newClientOrderId": client_id,
        "newOrderRespType": "RESULT",
    }
    if spec.order_type is OrderType.MARKET:
        return params | {"type": "MARKET"}
    if spec.price is None:
        raise _refuse(spec, "a LIMIT order needs a price")
    params["price"] = text(spec.price)
    if spec.post_only:
        return params | {"type": "LIMIT_MAKER"}
    if spec.time_in_force not in TIME_IN_FORCE:
        raise _refuse(spec, f"Binance spot has no time in force {spec.time_in_force}")
    return params | {"type": "LIMIT", "timeInForce": spec.time_in_force.value}


def replace_params(
    spec: OrderSpec, symbol: str, cancel_client_id: str, new_client_id: str, quantity: Decimal, price: Decimal
) -> dict[str, str]:
    """`POST /api/v3/order/cancelReplace`: cancel the resting venue order, place `quantity` at `price`
    (nothing is placed when the cancel fails)."""
    params = order_params(spec, symbol, new_client_id)
    params.update(
        quantity=text(quantity),
        price=text(price),
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId=cancel_client_id,
    )
    return params
