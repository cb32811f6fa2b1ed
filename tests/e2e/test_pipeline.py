"""The embedded pipeline end to end: commands in, order/venue/portfolio events out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import OrderDenied, OrderFilled
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import PositionChanged
from meltica.domain.risk.events import ResetKillSwitch, TripKillSwitch
from meltica.domain.values import ContingencyType, OrderSide, OrderType, RiskScope, TimeInForce, TriggerType
from meltica.log.base import Message
from meltica.topics import ORDER_COMMANDS, RISK_COMMANDS, dead_letter_topic
from meltica.topology import build_engine
from tests.e2e.stack import BTC, Stack


@pytest.fixture
def stack() -> Stack:
    s = Stack()
    s.setup()
    return s


def test_denied_by_risk(stack: Stack) -> None:
    spec = stack.submit(price="150.00")  # 50% away from the market: price band
    assert stack.order_events(spec.order_id) == ["OrderDenied"]
    [denied] = [e for e in stack.events("orders.events") if isinstance(e, OrderDenied)]
    assert denied.reason == "price_band"


def test_marketable_limit_fills_and_moves_the_portfolio(stack: Stack) -> None:
    spec = stack.submit(qty="2", price="100.02")
    assert stack.order_events(spec.order_id) == [
        "OrderAccepted",
        "OrderSubmitted",
        "OrderAcknowledged",
        "OrderFilled",
    ]
    [pos] = [e for e in stack.events("portfolio.events") if isinstance(e, PositionChanged)]
    assert (pos.quantity, pos.avg_px) == (Decimal("2"), Decimal("100.02"))
    [fill] = [e for e in stack.events("orders.events") if isinstance(e, OrderFilled)]
    assert fill.fill.fee == Decimal("2") * Decimal("100.02") * Decimal("0.001")


def test_market_order_walks_the_book_and_cancels_the_rest(stack: Stack) -> None:
    spec = stack.submit(qty="15", price=None, order_type=OrderType.MARKET)
    names = stack.order_events(spec.order_id)
    assert names == [
        "OrderAccepted",
        "OrderSubmitted",
        "OrderAcknowledged",
        "OrderPartiallyFilled",
        "OrderCanceled",
    ]


def test_resting_order_fills_when_trades_eat_the_queue(stack: Stack) -> None:
    spec = stack.submit(qty="1", price="100.00")  # joins 10 at the bid
    assert stack.order_events(spec.order_id)[-1] == "OrderAcknowledged"
    stack.trade("100.00", size="6")
    assert stack.order_events(spec.order_id)[-1] == "OrderAcknowledged"  # 4 still ahead
    stack.trade("100.00", size="4.5")
    assert stack.order_events(spec.order_id)[-1] == "OrderPartiallyFilled"
    stack.trade("99.99", size="3")  # trades through: the rest fills
    assert stack.order_events(spec.order_id)[-1] == "OrderFilled"


def test_cancel_and_amend(stack: Stack) -> None:
    spec = stack.submit(qty="1", price="99.90")
    stack.command(AmendOrder(spec.order_id, "ACC-1", BTC.instrument_id, stack.tick(), quantity=Decimal("2")))
    stack.command(CancelOrder(spec.order_id, "ACC-1", BTC.instrument_id, stack.tick()))
    assert stack.order_events(spec.order_id)[3:] == [
        "OrderAmendAccepted",  # risk judged the order as amended
        "OrderPendingReplace",
        "OrderReplaced",
        "OrderPendingCancel",
        "OrderCanceled",
    ]


def test_stop_loss_is_stopped_out(stack: Stack) -> None:
    stack.submit(qty="1", price="100.02")
    stop = stack.submit(
        OrderSide.SELL,
        qty="1",
        price=None,
        order_type=OrderType.STOP_MARKET,
        trigger_price=Decimal("99.50"),
        trigger_type=TriggerType.LAST,
    )
    assert stack.order_events(stop.order_id) == ["OrderAccepted"]
    stack.trade("99.80")
    stack.trade("99.50")
    assert stack.order_events(stop.order_id)[1:] == [
        "OrderTriggered",
        "OrderSubmitted",
        "OrderAcknowledged",
        "OrderFilled",
    ]
    positions = [e for e in stack.events("portfolio.events") if isinstance(e, PositionChanged)]
    assert positions[-1].quantity == 0
    assert positions[-1].realized_pnl == Decimal("100.00") - Decimal("100.02")


def test_oco_through_the_matching_engine(stack: Stack) -> None:
    stack.submit(qty="1", price="100.02")
    tp = stack.submit(
        OrderSide.SELL,
        qty="1",
        price="100.50",
        order_id="TP",
        contingency_type=ContingencyType.OCO,
        linked_order_ids=("SL",),
    )
    sl = stack.submit(
        OrderSide.SELL,
        qty="1",
        price=None,
        order_type=OrderType.STOP_MARKET,
        order_id="SL",
        trigger_price=Decimal("99.50"),
        contingency_type=ContingencyType.OCO,
        linked_order_ids=("TP",),
    )
    stack.trade("100.60")  # through the take-profit
    assert stack.order_events(tp.order_id)[-1] == "OrderFilled"
    assert stack.order_events(sl.order_id)[-1] == "OrderCanceled"


def test_bracket_through_the_matching_engine(stack: Stack) -> None:
    specs = []
    for kw in (
        {"order_id": "E", "side": OrderSide.BUY, "price": "99.90", "contingency_type": ContingencyType.OTO},
        {
            "order_id": "E-TP",
            "side": OrderSide.SELL,
            "price": "100.40",
            "parent_order_id": "E",
            "contingency_type": ContingencyType.OCO,
            "linked_order_ids": ("E-SL",),
        },
        {
            "order_id": "E-SL",
            "side": OrderSide.SELL,
            "price": None,
            "order_type": OrderType.STOP_MARKET,
            "trigger_price": Decimal("99.60"),
            "parent_order_id": "E",
            "contingency_type": ContingencyType.OCO,
            "linked_order_ids": ("E-TP",),
        },
    ):
        price = kw.pop("price")
        specs.append(
            OrderSpec(
                client_order_id=str(kw["order_id"]),
                account_id="ACC-1",
                instrument_id=BTC.instrument_id,
                quantity=Decimal(1),
                price=None if price is None else Decimal(str(price)),
                order_type=kw.pop("order_type", OrderType.LIMIT),
                **kw,
            )
        )  # type: ignore[arg-type]
    stack.command(SubmitOrderList("B1", "ACC-1", tuple(specs), stack.tick()))
    assert stack.order_events("E-TP") == ["OrderAccepted"]
    stack.trade("99.85")  # entry fills: the take-profit goes to the venue, the stop-loss arms
    assert stack.order_events("E")[-1] == "OrderFilled"
    assert stack.order_events("E-TP")[-1] == "OrderAcknowledged"
    stack.trade("99.60")  # stop-loss fires; its fill cancels the take-profit
    stack.quote("99.55", "99.58")
    assert stack.order_events("E-SL")[-1] == "OrderFilled"
    assert stack.order_events("E-TP")[-2:] == ["OrderPendingCancel", "OrderCanceled"]


def test_ioc_fok_and_post_only(stack: Stack) -> None:
    ioc = stack.submit(qty="15", price="100.02", time_in_force=TimeInForce.IOC)
    assert stack.order_events(ioc.order_id)[-2:] == ["OrderPartiallyFilled", "OrderCanceled"]
    stack.quote("100.00", "100.02")
    fok = stack.submit(qty="15", price="100.02", time_in_force=TimeInForce.FOK)
    assert stack.order_events(fok.order_id)[-1] == "OrderCanceled"
    assert "OrderPartiallyFilled" not in stack.order_events(fok.order_id)
    post = stack.submit(qty="1", price="100.02", post_only=True)
    assert stack.order_events(post.order_id)[-1] == "OrderRejected"


def test_kill_switch_halts_and_cancels(stack: Stack) -> None:
    resting = stack.submit(qty="1", price="99.90")
    stack.command(TripKillSwitch(RiskScope.ACCOUNT, "ACC-1", "test", "ops", stack.tick()), RISK_COMMANDS)
    assert stack.order_events(resting.order_id)[-2:] == ["OrderPendingCancel", "OrderCanceled"]
    later = stack.submit(qty="1", price="99.90")
    assert stack.order_events(later.order_id) == ["OrderDenied"]
    stack.command(ResetKillSwitch(RiskScope.ACCOUNT, "ACC-1", "ops", stack.tick()), RISK_COMMANDS)
    again = stack.submit(qty="1", price="99.90")
    assert stack.order_events(again.order_id)[0] == "OrderAccepted"


def test_poison_record_is_dead_lettered_and_the_pipeline_goes_on(stack: Stack) -> None:
    stack.log.append([Message(ORDER_COMMANDS, b"\x00\x00garbage", b"ACC-1", partition=0)])
    stack.run()
    spec = stack.submit(qty="1", price="100.02")
    assert stack.order_events(spec.order_id)[-1] == "OrderFilled"
    dead = stack.log.read(dead_letter_topic(ORDER_COMMANDS), 0, 0, 10)
    assert [r.value for r in dead] == [b"\x00\x00garbage"]


def test_resubmitting_the_same_command_is_idempotent(stack: Stack) -> None:
    spec = stack.submit(qty="1", price="99.90")
    stack.command(SubmitOrder(spec, stack.tick()))
    assert stack.order_events(spec.order_id).count("OrderAccepted") == 1


def test_a_restarted_engine_rebuilds_state_and_continues(stack: Stack) -> None:
    spec = stack.submit(qty="1", price="99.90")
    before = stack.events("orders.events")
    stack.engine = build_engine(stack.log, stack.codec, clock=stack.clock)
    assert stack.engine.recover() > 0
    assert stack.run() == 0, "nothing is processed twice"
    assert stack.events("orders.events") == before
    stack.trade("99.80")
    assert stack.order_events(spec.order_id)[-1] == "OrderFilled"
    ids = [
        stack.codec.decode_record(r).record["meta"]["event_id"]
        for p in range(2)
        for r in stack.log.read("orders.events", p, 0, 1000)
    ]
    assert len(ids) == len(set(ids))
