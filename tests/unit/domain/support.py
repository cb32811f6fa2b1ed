"""Builders for domain tests: an instrument, orders, venue reports, ticks."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import spot
from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.events import ExecutionReport, Fill
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import ExecType, LiquiditySide, OrderSide, OrderType

BTC = spot(
    "BTCUSDT",
    "SIM",
    "BTC",
    "USDT",
    price_increment="0.01",
    size_increment="0.001",
    min_notional="10",
    taker_fee="0.001",
)
ETH = spot("ETHUSDT", "SIM", "ETH", "USDT", price_increment="0.01", size_increment="0.001")
T0 = 1_700_000_000_000_000_000
_ids = itertools.count(1)


def D(x: Any) -> Decimal:
    return Decimal(str(x))


def order(
    order_type: OrderType = OrderType.LIMIT,
    side: OrderSide = OrderSide.BUY,
    qty: Any = "1",
    price: Any = "100",
    account: str = "ACC-1",
    instrument: str = BTC.instrument_id,
    **kw: Any,
) -> OrderSpec:
    n = next(_ids)
    kw.setdefault("order_id", f"O-{n}")
    kw.setdefault("client_order_id", f"C-{n}")
    return OrderSpec(
        account_id=account,
        instrument_id=instrument,
        side=side,
        order_type=order_type,
        quantity=D(qty),
        price=None if price is None or order_type in (OrderType.MARKET, OrderType.STOP_MARKET) else D(price),
        **kw,
    )


def report(spec: OrderSpec, exec_type: ExecType, ts: int = T0, **kw: Any) -> ExecutionReport:
    status = {
        ExecType.NEW: OrderStatus.NEW,
        ExecType.CANCELED: OrderStatus.CANCELED,
        ExecType.REJECTED: OrderStatus.REJECTED,
        ExecType.EXPIRED: OrderStatus.EXPIRED,
        ExecType.TRADE: OrderStatus.PARTIALLY_FILLED,
    }.get(exec_type, OrderStatus.NEW)
    return ExecutionReport(
        venue="SIM",
        exec_type=exec_type,
        order_id=spec.order_id,
        account_id=spec.account_id,
        instrument_id=spec.instrument_id,
        order_status=status,
        ts_venue=ts,
        ts=ts,
        **kw,
    )


def ack(spec: OrderSpec, ts: int = T0, venue_order_id: str | None = None) -> ExecutionReport:
    return report(spec, ExecType.NEW, ts, venue_order_id=venue_order_id or f"V-{spec.order_id}")


def fill(
    spec: OrderSpec,
    qty: Any,
    px: Any,
    trade_id: str | None = None,
    ts: int = T0,
    fee: Any = "0",
    fee_currency: str = "USDT",
) -> ExecutionReport:
    f = Fill(
        trade_id or f"T-{next(_ids)}",
        f"V-{spec.order_id}",
        spec.side,
        D(qty),
        D(px),
        D(fee),
        fee_currency,
        LiquiditySide.TAKER,
        ts,
    )
    return report(spec, ExecType.TRADE, ts, fill=f)


def quote(bid: Any, ask: Any, ts: int = T0, instrument: str = BTC.instrument_id) -> QuoteTick:
    return QuoteTick(instrument, D(bid), D("1"), D(ask), D("1"), ts)


def trade(px: Any, ts: int = T0, instrument: str = BTC.instrument_id) -> TradeTick:
    return TradeTick(instrument, D(px), D("1"), AggressorSide.BUYER, f"X-{next(_ids)}", ts)
