"""The gateway with the Binance adapter against the protocol-true fake Binance, on the embedded engine:
instruments from the venue, submit / partial fill / fill / cancel / amend / venue rejects through the
order state machine, and fills made while the gateway was down reconciled after a restart."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

import pytest

from meltica.domain.orders.events import OrderFilled, OrderPartiallyFilled
from meltica.venues.binance.client_ids import order_id_of
from tests.fakes.binance import FakeBinance
from tests.venues import desk as desk_harness
from tests.venues.test_binance_execution import adapter_for
from tests.waiting import wait_until

D = Decimal
IID = "BTCUSDT.BINANCE"


class Desk(desk_harness.Desk[FakeBinance]):
    """The engine, the fake Binance and the gateway in a thread."""

    def __init__(self, fake: FakeBinance) -> None:
        super().__init__(
            fake,
            adapter_for,
            name="bn",
            kind="binance",
            iid=IID,
            fund=lambda stack, instruments: stack.setup(*instruments, cash="10000", base="1"),
        )


@pytest.fixture
def desk(fake_binance: FakeBinance) -> Iterator[Desk]:
    fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})
    d = Desk(fake_binance)
    yield d
    d.stop()


def venue_order_id(desk: Desk, order_id: str) -> int:
    acks = [
        e
        for e in desk.stack.events("orders.events")
        if type(e).__name__ == "OrderAcknowledged" and e.order_id == order_id
    ]
    return int(acks[-1].venue_order_id)


def test_submit_partial_fill_fill_reach_the_orders(desk: Desk) -> None:
    oid = desk.submit("0.003", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.fake.fill_order(venue_order_id(desk, oid), "0.001")
    desk.until(oid, "OrderPartiallyFilled")
    desk.fake.fill_order(venue_order_id(desk, oid))
    desk.until(oid, "OrderFilled")
    fills = desk.fills(oid)
    assert sum(f.last_qty for f in fills) == D("0.003")
    assert len({f.trade_id for f in fills}) == len(fills)
    assert not any(f.reconciled for f in fills)


def test_cancel_and_amend_reach_binance(desk: Desk) -> None:
    oid = desk.submit("0.002", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.amend(oid, "49500")
    desk.until(oid, "OrderReplaced")
    assert [o.price for o in desk.fake.open_orders()] == [D("49500")]
    desk.cancel(oid)
    desk.until(oid, "OrderCanceled")
    assert desk.fake.open_orders() == []


def test_a_venue_reject_reaches_the_order_with_the_reason(desk: Desk) -> None:
    desk.stack.setup(cash="100000")  # Meltica's own books allow 25k USDT: only the venue (10k) refuses
    oid = desk.submit("0.5", "50000")
    desk.until(oid, "OrderRejected")
    rejected = [e for e in desk.stack.events("orders.events") if type(e).__name__ == "OrderRejected"]
    assert rejected[0].reason.startswith("insufficient_balance"), rejected[0].reason


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [("0.00005", "50000", "notional_below_min"), ("0.001", "50000.005", "price_precision")],
)
def test_the_venue_filters_are_checked_before_an_order_leaves(
    desk: Desk, qty: str, price: str, reason: str
) -> None:
    oid = desk.submit(qty, price)  # the instrument came from Binance's exchangeInfo, filters included
    desk.until(oid, "OrderDenied")
    denied = [e for e in desk.stack.events("orders.events") if type(e).__name__ == "OrderDenied"]
    assert denied[0].reason == reason
    assert desk.fake.open_orders() == []


def test_fills_while_the_gateway_is_down_are_reconciled(desk: Desk) -> None:
    oid = desk.submit("0.003", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.stop()
    desk.fake.fill_order(venue_order_id(desk, oid), "0.001")
    desk.fake.fill_order(venue_order_id(desk, oid))
    desk.start()
    desk.until(oid, "OrderFilled")
    fills = desk.fills(oid)
    assert [f.reconciled for f in fills] == [True, True]
    assert sum(f.last_qty for f in fills) == D("0.003")


def test_a_lost_and_a_duplicated_user_message_lose_and_double_nothing(desk: Desk) -> None:
    oid = desk.submit("0.003", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.fake.lose_next_user_message(1)
    desk.fake.fill_order(venue_order_id(desk, oid), "0.001")
    desk.fake.duplicate_next_user_message(2)
    desk.fake.fill_order(venue_order_id(desk, oid))  # the venue reports FILLED: the lost fill is fetched
    desk.until(oid, "OrderFilled")
    fills = desk.fills(oid)
    assert sum(f.last_qty for f in fills) == D("0.003")
    assert len({f.trade_id for f in fills}) == len(fills) == 2


def test_a_5xx_on_submit_is_retried_and_the_order_placed_once(desk: Desk) -> None:
    desk.fake.fail_next(1, 503)
    oid = desk.submit("0.002", "50000")
    desk.until(oid, "OrderAcknowledged")
    assert len(desk.fake.open_orders()) == 1


def test_a_429_rejects_the_order_with_the_reason_and_nothing_reaches_the_venue(desk: Desk) -> None:
    desk.fake.throttle_next(100, retry_after=30)  # whichever request comes first is answered 429
    oid = desk.submit("0.002", "50000")
    desk.until(oid, "OrderRejected")
    rejected = [e for e in desk.stack.events("orders.events") if type(e).__name__ == "OrderRejected"]
    assert rejected[0].reason.startswith("throttled"), rejected[0].reason
    assert desk.fake.open_orders() == []


def test_an_ack_delayed_past_a_cancel_ends_canceled_at_both(desk: Desk) -> None:
    desk.fake.hold_next_ack()
    oid = desk.submit("0.002", "50000")
    wait_until(lambda: len(desk.fake.open_orders()) == 1, 30, "the order live at the venue, its ack held")
    desk.cancel(oid)
    desk.fake.release_ack()
    desk.until(oid, "OrderCanceled")
    assert desk.fake.open_orders() == []


def test_a_skewed_venue_clock_is_measured_and_orders_still_go_through(desk: Desk) -> None:
    desk.fake.skew_clock(-20_000)  # the venue's clock 20 s behind ours: beyond recvWindow's 10 s
    desk.stop()
    desk.start()  # the adapter measures the difference when it connects
    oid = desk.submit("0.002", "50000")
    desk.until(oid, "OrderAcknowledged")


def agreement(desk: Desk) -> str:
    """'' when Meltica's orders and fills equal the fake Binance's, else the first difference."""
    desk.stack.run()
    fills: dict[str, list[tuple[str, Decimal]]] = {}
    last: dict[str, str] = {}
    for e in desk.stack.events("orders.events"):
        name = type(e).__name__
        oid = e.order.order_id if hasattr(e, "order") else getattr(e, "order_id", "")
        if isinstance(e, OrderFilled | OrderPartiallyFilled):
            fills.setdefault(oid, []).append((e.fill.trade_id, e.fill.last_qty))
        if name not in ("OrderTransitionRejected", "OrderAmendAccepted", "OrderCancelRejected"):
            last[oid] = name
    at_venue = {order_id_of(o.client_order_id): o for o in desk.fake.all_orders()}
    trades: dict[str, list[tuple[str, Decimal]]] = {}
    for f in desk.fake.fills():
        trades.setdefault(order_id_of(f.order.client_order_id), []).append((str(f.trade_id), f.qty))
    expected = {"FILLED": ("OrderFilled",), "CANCELED": ("OrderCanceled",)}
    for oid, o in at_venue.items():
        if sorted(fills.get(oid, [])) != sorted(trades.get(oid, [])):
            return f"{oid}: fills {fills.get(oid)} at Meltica, {trades.get(oid)} at the venue"
        allowed = expected.get(o.status, ("OrderAcknowledged", "OrderPartiallyFilled", "OrderPendingCancel"))
        if last.get(oid) not in allowed:
            return f"{oid}: {last.get(oid)} at Meltica, {o.status} at the venue"
    for oid, name in last.items():
        if oid not in at_venue and name not in ("OrderRejected", "OrderDenied"):
            return f"{oid}: {name} at Meltica, unknown at the venue"
    return ""


@pytest.mark.parametrize("seed", range(4))
def test_no_fill_is_lost_or_doubled_against_binance_under_a_seeded_fault_schedule(
    fake_binance: FakeBinance, seed: int
) -> None:
    rng = random.Random(seed)
    fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})
    desk = Desk(fake_binance)
    try:
        for _ in range(14):
            action = rng.choice(
                ["submit", "submit", "fill", "fill", "cancel", "lose", "duplicate", "drop", "restart", "5xx"]
            )
            live = fake_binance.open_orders()
            if action == "submit":
                desk.submit(rng.choice(["0.001", "0.002", "0.003"]), "50000")
            elif action == "fill" and live:
                fake_binance.fill_order(rng.choice(live).order_id, rng.choice([None, "0.001"]))
            elif action == "cancel" and live:
                oid = order_id_of(rng.choice(live).client_order_id)
                desk.cancel(oid)
            elif action == "lose":
                fake_binance.lose_next_user_message(1)
            elif action == "duplicate":
                fake_binance.duplicate_next_user_message(1)
            elif action == "drop":
                fake_binance.drop_user_stream()
            elif action == "restart":
                desk.stop()
                for o in live[:2]:  # fills while Meltica is down
                    fake_binance.fill_order(o.order_id, "0.001")
                desk.start()
            elif action == "5xx":
                fake_binance.fail_next(1, 503)
            desk.stack.run()
        desk.stop()  # a last restart reconciles what a lost message hid
        desk.start()
        wait_until(
            lambda: agreement(desk) == "",
            60,
            "Meltica to agree with the venue",
            detail=lambda: agreement(desk),
        )
    finally:
        desk.stop()
