"""OKX v5 JSON as Meltica's values (pure): amounts stay the exact decimal strings OKX sends."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import ZERO, LiquiditySide, OrderSide, OrderType, TimeInForce
from meltica.venues.common import dec, places, text
from meltica.venues.port import VenueBalance, VenueOrder, VenueRejectedError, VenueTrade

NS_PER_MS = 1_000_000

STATES: Mapping[str, OrderStatus] = {
    "live": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "mmp_canceled": OrderStatus.CANCELED,
}
"""OKX's order `state` -> Meltica's."""

ORDER_TYPES: Mapping[TimeInForce, str] = {
    TimeInForce.GTC: "limit",
    TimeInForce.IOC: "ioc",
    TimeInForce.FOK: "fok",
}


def _positive(raw: Any) -> Decimal | None:
    if raw in (None, ""):
        return None
    value = dec(raw)
    return value if value > 0 else None


def instrument_of(info: Mapping[str, Any], venue: str) -> Instrument:
    """A `/api/v5/public/instruments` SPOT entry as an instrument, id `instId.VENUE` (`BTC-USDT.OKX`):
    `tickSz` the price increment, `lotSz` the size increment, `minSz` the minimum and `maxLmtSz` the
    maximum quantity (of a limit order). OKX spot has no minimum notional; its fees are per account
    (a private endpoint), so they stay zero here."""
    inst_id, quote = str(info["instId"]), str(info["quoteCcy"])
    tick, lot = dec(info["tickSz"]), dec(info["lotSz"])
    return Instrument(
        instrument_id=f"{inst_id}.{venue}",
        symbol=inst_id,
        venue=venue,
        asset_class="SPOT",
        base_currency=str(info["baseCcy"]),
        quote_currency=quote,
        settlement_currency=quote,
        price_precision=places(tick),
        size_precision=places(lot),
        price_increment=tick,
        size_increment=lot,
        min_quantity=_positive(info.get("minSz")),
        max_quantity=_positive(info.get("maxLmtSz")),
    )


def _refuse(spec: OrderSpec, why: str) -> VenueRejectedError:
    return VenueRejectedError("venue_rejected", f"order {spec.order_id}: {why}")


def order_params(spec: OrderSpec, inst_id: str, client_id: str) -> dict[str, str]:
    """`POST /api/v5/trade/order` for `spec` in a cash (spot) account: `limit`, `ioc`, `fok`,
    `post_only`, or `market` (its size in the base currency: `tgtCcy=base_ccy`)."""
    if spec.order_type not in (OrderType.LIMIT, OrderType.MARKET):
        raise _refuse(spec, f"OKX spot takes LIMIT and MARKET orders here, not {spec.order_type}")
    if spec.display_quantity is not None:
        raise _refuse(spec, "icebergs are worked by Meltica, not sent to OKX")
    params = {
        "instId": inst_id,
        "tdMode": "cash",
        "clOrdId": client_id,
        "side": "buy" if spec.side is OrderSide.BUY else "sell",
        "sz": text(spec.quantity),
    }
    if spec.order_type is OrderType.MARKET:
        return params | {"ordType": "market", "tgtCcy": "base_ccy"}
    if spec.price is None:
        raise _refuse(spec, "a LIMIT order needs a price")
    params["px"] = text(spec.price)
    if spec.post_only:
        return params | {"ordType": "post_only"}
    if spec.time_in_force not in ORDER_TYPES:
        raise _refuse(spec, f"OKX spot has no time in force {spec.time_in_force}")
    return params | {"ordType": ORDER_TYPES[spec.time_in_force]}


def _opt(raw: Any) -> Decimal | None:
    """An optional amount: OKX sends "" (or "0" for an average price) when there is none."""
    if raw in (None, ""):
        return None
    value = dec(raw)
    return value if value else None


def order_of(raw: Mapping[str, Any], instrument_id: str, order_id: str, reason: str = "") -> VenueOrder:
    """An order as `GET /api/v5/trade/order`, `orders-pending` and the `orders` channel send it."""
    ts = raw.get("uTime") or raw.get("cTime") or 0
    return VenueOrder(
        order_id=order_id,
        venue_order_id=str(raw["ordId"]),
        instrument_id=instrument_id,
        side=OrderSide.BUY if raw["side"] == "buy" else OrderSide.SELL,
        status=STATES[str(raw["state"])],
        quantity=dec(raw["sz"]),
        price=_opt(raw.get("px")),
        filled_qty=dec(raw.get("accFillSz") or "0"),
        avg_px=_opt(raw.get("avgPx")),
        ts=int(ts) * NS_PER_MS,
        reason=reason,
    )


def _fee(raw: Mapping[str, Any]) -> Decimal:
    """OKX's fee is signed (negative: charged, positive: a rebate); the port's is what was paid."""
    return -dec(raw.get("fee") or "0") + ZERO


def trade_of(raw: Mapping[str, Any], instrument_id: str, order_id: str | None) -> VenueTrade:
    """A fill, as `GET /api/v5/trade/fills` (`fillSz`/`fillPx`/`execType`) or an `orders` push with
    a fill sends it (the same names; the push's `fee` is the order's total, its `fillFee` this fill's)."""
    fee = raw.get("fillFee") if raw.get("fillFee") not in (None, "") else raw.get("fee")
    return VenueTrade(
        trade_id=str(raw["tradeId"]),
        order_id=order_id,
        venue_order_id=str(raw["ordId"]),
        instrument_id=instrument_id,
        side=OrderSide.BUY if raw["side"] == "buy" else OrderSide.SELL,
        quantity=dec(raw["fillSz"]),
        price=dec(raw["fillPx"]),
        fee=_fee({"fee": fee}),
        fee_currency=str(raw.get("fillFeeCcy") or raw.get("feeCcy") or ""),
        liquidity=LiquiditySide.MAKER if raw.get("execType") == "M" else LiquiditySide.TAKER,
        ts=int(raw.get("fillTime") or raw.get("ts") or raw.get("uTime") or 0) * NS_PER_MS,
    )


def balances_of(details: list[Mapping[str, Any]]) -> tuple[VenueBalance, ...]:
    """`GET /api/v5/account/balance`'s `details`: `availBal` free, `frozenBal` locked; empty ones left out."""
    balances = (
        VenueBalance(str(d["ccy"]), dec(d.get("availBal") or "0"), dec(d.get("frozenBal") or "0"))
        for d in details
    )
    return tuple(b for b in balances if b.free or b.locked)
