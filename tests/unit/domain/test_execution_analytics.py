"""Execution analytics: one `ExecutionAnalyzed` per fill, slippage signed against the order,
latencies from the order's own events, and the per-order state dropped when the order ends."""

from __future__ import annotations

from decimal import Decimal

from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.portfolio.analytics import slippage_bps
from meltica.domain.portfolio.events import ExecutionAnalyzed
from meltica.domain.values import ExecType, OrderSide, OrderType, TriggerType
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote, report, trade


def funded() -> Flow:
    f = Flow()
    f.define(BTC)
    f.deposit("ACC-1", "USDT", "10000")
    f.deposit("ACC-1", "BTC", "10")
    f.market(quote("99.99", "100.01"))  # arrival mid 100.00
    return f


def analyzed(f: Flow) -> list[ExecutionAnalyzed]:
    return [e for e in f.events if isinstance(e, ExecutionAnalyzed)]


def test_one_event_per_fill_with_latencies_and_buy_slippage() -> None:
    f = funded()
    spec = order(qty="2", price="101", strategy_id="S-1")
    f.submit(SubmitOrder(spec, T0))
    f.report(ack(spec, ts=T0 + 1_500_000))
    f.report(fill(spec, "1", "100.5", trade_id="T-a", ts=T0 + 2_000_000))
    f.report(fill(spec, "1", "99.9", trade_id="T-b", ts=T0 + 3_000_000))
    first, second = analyzed(f)
    assert first == ExecutionAnalyzed(
        "ACC-1",
        BTC.instrument_id,
        spec.order_id,
        "T-a",
        "SIM",
        "S-1",
        OrderSide.BUY,
        D("100.00"),
        D("100.5"),
        D("1"),
        D("50.0000"),  # paid 0.5 above a 100 arrival: 50 bps worse
        1_500_000,
        500_000,
        T0 + 2_000_000,
    )
    assert (second.slippage_bps, second.ack_to_fill_ns) == (D("-10.0000"), 1_500_000)  # 10 bps better
    assert spec.order_id not in f.portfolio.analytics  # filled: the order's analytics end


def test_sell_slippage_is_positive_when_sold_below_arrival() -> None:
    f = funded()
    spec = order(side=OrderSide.SELL, qty="1", price="99.5")
    f.submit(SubmitOrder(spec, T0))
    f.report(fill(spec, "1", "99.5"))
    [e] = analyzed(f)
    assert (e.side, e.slippage_bps) == (OrderSide.SELL, D("50.0000"))
    assert (e.submit_to_ack_ns, e.ack_to_fill_ns) == (None, None)  # no acknowledgement seen


def test_slippage_is_rounded_half_even_to_a_ten_thousandth_of_a_bps() -> None:
    assert slippage_bps(OrderSide.BUY, D("3"), D("3.0000001")) == D("0.0003")  # 0.000333...
    assert slippage_bps(OrderSide.BUY, D("1"), D("1.0000000125")) == D("0.0001")  # 0.000125: even
    assert slippage_bps(OrderSide.SELL, D("1"), D("1.0000000375")) == D("-0.0004")  # -0.000375
    assert slippage_bps(OrderSide.BUY, None, D("1")) is None
    assert slippage_bps(OrderSide.BUY, D("0"), D("1")) is None
    assert slippage_bps(OrderSide.BUY, D("1E-18"), D("1E+18")) is None  # too large to hold


def test_no_arrival_mid_without_a_mark() -> None:
    f = Flow()
    f.define(BTC)
    f.deposit("ACC-1", "USDT", "10000")
    spec = order(qty="1", price="100")
    f.submit(SubmitOrder(spec, T0))
    f.report(ack(spec, ts=T0 + 7))
    f.report(fill(spec, "1", "100", ts=T0 + 10))
    [e] = analyzed(f)
    assert (e.arrival_mid, e.slippage_bps, e.submit_to_ack_ns, e.ack_to_fill_ns) == (None, None, 7, 3)


def test_a_stop_arrives_at_its_trigger_price() -> None:
    f = funded()
    spec = order(
        OrderType.STOP_MARKET,
        side=OrderSide.SELL,
        price=None,
        trigger_price=D("99"),
        trigger_type=TriggerType.LAST,
    )
    f.submit(SubmitOrder(spec, T0))
    f.market(trade("99", ts=T0 + 5))  # triggers: sent as a market order now
    f.report(ack(spec, ts=T0 + 8))
    f.report(fill(spec, "1", "98.802", ts=T0 + 9))
    [e] = analyzed(f)
    assert (e.arrival_mid, e.slippage_bps) == (D("99"), D("20.0000"))  # sold 0.198 below 99
    assert (e.submit_to_ack_ns, e.ack_to_fill_ns) == (3, 1)  # sent at the trigger, not at acceptance


def test_a_partly_filled_order_is_analyzed_and_forgotten_when_canceled() -> None:
    f = funded()
    spec = order(qty="2", price="100")
    f.submit(SubmitOrder(spec, T0))
    f.report(ack(spec))
    f.report(fill(spec, "1", "100"))
    assert [e.quantity for e in analyzed(f)] == [Decimal(1)]
    assert spec.order_id in f.portfolio.analytics
    f.report(report(spec, ExecType.CANCELED))
    assert spec.order_id not in f.portfolio.analytics
