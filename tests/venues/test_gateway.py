"""The gateway of a live venue, on the embedded engine, against the in-memory paper venue: orders reach
the venue and its answers reach the order state machine; after every fault (a lost or duplicated
update, a dropped stream, a lost answer, a throttle, fills while the gateway is down) Meltica's
orders and fills equal the venue's: no fill lost, none doubled."""

from __future__ import annotations

import random
import threading
from decimal import Decimal
from typing import Any

import pytest

from meltica.domain.control import VenueState, VenueStateChanged
from meltica.domain.instruments import spot
from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders.commands import AmendOrder, CancelOrder
from meltica.domain.orders.events import OrderFilled, OrderPartiallyFilled
from meltica.domain.orders.model import OrderStatus
from meltica.domain.portfolio.events import BalanceChanged
from meltica.domain.values import OrderSide, OrderType
from meltica.retry import RetryPolicy
from meltica.topics import QUOTES, VENUE_EVENTS, VENUE_REQUESTS
from meltica.venues.gateway import Gateway
from tests.e2e.stack import BTC, Stack
from tests.venues.paper import PaperVenue
from tests.waiting import wait_until

PBTC = spot("BTCUSDT", "PAPER", "BTC", "USDT", price_increment="0.01", size_increment="0.001")
D = Decimal


_NO_STATUS = {"OrderTransitionRejected", "OrderCancelRejected", "OrderAmendRejected", "OrderAmendAccepted"}


class Harness:
    """The embedded engine, a paper venue and its gateway in a thread."""

    def __init__(
        self, *, max_request_age_s: float = 1e9, stack: Stack | None = None, timeout: float = 60
    ) -> None:
        self.stack = stack or Stack()
        self.timeout = timeout
        self.venue = PaperVenue()
        self.max_request_age_s = max_request_age_s
        self.stack.setup(BTC, PBTC, cash="1000000", base="0")
        self.stack.publisher.publish(
            QUOTES,
            QuoteTick(PBTC.instrument_id, D("99.99"), D("10"), D("100.01"), D("10"), self.stack.tick()),
        )
        self.stack.publisher.publish(
            VENUE_EVENTS,
            VenueStateChanged(
                "pp",
                "binance",
                {"account": "ACC-1", "venue": "PAPER"},
                VenueState.LIVE,
                "test",
                0,
                0,
                0,
                0,
                0,
                0,
                self.stack.tick(),
            ),
        )
        self.stack.run()
        self.gateway: Gateway | None = None
        self.start()

    def start(self) -> None:
        self.stop_event = threading.Event()
        self.gateway = Gateway(
            "pp",
            self.venue,
            self.stack.log,
            self.stack.codec,
            account="ACC-1",
            clock=self.stack.clock,
            max_request_age_s=self.max_request_age_s,
            retry=RetryPolicy(0.01, 0.01, 0),
        )
        self.thread = threading.Thread(target=self.gateway.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        gateway = self.gateway
        wait_until(
            lambda: gateway.ready.is_set() and self.venue.listening, self.timeout, "the gateway to start"
        )

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()

    def submit(self, qty: str, price: str = "100.00", order_type: OrderType = OrderType.LIMIT) -> str:
        spec = self.stack.submit(OrderSide.BUY, qty, price, order_type, instrument_id=PBTC.instrument_id)
        return spec.order_id

    def settle(self) -> None:
        """Until the engine and the gateway have nothing left to do."""
        log, gateway = self.stack.log, self.gateway
        assert gateway is not None

        def quiet() -> bool:
            ran = self.stack.run()
            positions = dict(gateway.positions)
            caught_up = not any(log.read(tp.topic, tp.partition, pos, 1) for tp, pos in positions.items())
            updates_taken = self.venue.outstanding == 0 or not self.venue.listening
            return ran == 0 and caught_up and updates_taken and self.stack.run() == 0

        wait_until(
            lambda: quiet() and quiet(), self.timeout, "the engine and the gateway to settle", every=0.02
        )

    def fills(self) -> dict[str, list[tuple[str, Decimal]]]:
        out: dict[str, list[tuple[str, Decimal]]] = {}
        for e in self.stack.events("orders.events"):
            if isinstance(e, OrderFilled | OrderPartiallyFilled):
                out.setdefault(e.order_id, []).append((e.fill.trade_id, e.fill.last_qty))
        return out

    def statuses(self) -> dict[str, str]:
        last: dict[str, str] = {}
        for e in self.stack.events("orders.events"):
            if type(e).__name__ in _NO_STATUS:
                continue
            if getattr(e, "order_id", None):
                last[e.order_id] = type(e).__name__
            elif hasattr(e, "order"):
                last[e.order.order_id] = type(e).__name__
        return last

    def btc(self) -> Decimal:
        totals = [
            e.total
            for e in self.stack.events("portfolio.events")
            if isinstance(e, BalanceChanged) and e.asset == "BTC"
        ]
        return totals[-1] if totals else D(0)

    def assert_agrees(self) -> None:
        """Meltica's orders, fills and BTC balance equal the venue's."""
        fills = self.fills()
        statuses = self.statuses()
        for oid, o in self.venue.orders.items():
            venue_trades = sorted((t.trade_id, t.quantity) for t in self.venue.trades if t.order_id == oid)
            assert sorted(fills.get(oid, [])) == venue_trades, f"fills of {oid}"
            expected = {
                OrderStatus.FILLED: "OrderFilled",
                OrderStatus.CANCELED: "OrderCanceled",
            }.get(o.status)
            if expected:
                assert statuses[oid] == expected, (oid, o.status, statuses[oid])
            else:
                assert statuses[oid] in ("OrderAcknowledged", "OrderPartiallyFilled", "OrderReplaced"), (
                    oid,
                    statuses[oid],
                )
        assert self.btc() == sum((t.quantity for t in self.venue.trades), D(0))


@pytest.fixture
def harness() -> Any:
    h = Harness()
    yield h
    h.stop()


def test_an_order_is_acknowledged_filled_in_parts_and_fills_are_never_doubled(harness: Harness) -> None:
    oid = harness.submit("2")
    harness.settle()
    assert harness.statuses()[oid] == "OrderAcknowledged"
    harness.venue.duplicate_next = 1
    harness.venue.fill(oid, D("0.5"), D("100"))
    harness.settle()
    harness.venue.fill(oid, D("1.5"), D("100"))
    harness.settle()
    assert harness.statuses()[oid] == "OrderFilled"
    assert harness.gateway is not None
    assert harness.gateway.stats.duplicate_fills >= 1
    harness.assert_agrees()


def test_a_rejection_by_the_venue_reaches_the_order_with_its_reason(harness: Harness) -> None:
    harness.venue.cash = D("1000")  # Meltica's books say 1 M: the venue's account knows better
    oid = harness.submit("100", "100.00")
    harness.settle()
    rejected = [e for e in harness.stack.events("orders.events") if type(e).__name__ == "OrderRejected"]
    assert [(e.order_id, e.reason.split(":")[0]) for e in rejected] == [(oid, "insufficient_balance")]


def test_cancel_and_amend_reach_the_venue(harness: Harness) -> None:
    oid = harness.submit("1")
    harness.settle()
    harness.stack.command(
        AmendOrder(oid, "ACC-1", PBTC.instrument_id, harness.stack.tick(), price=D("99.50"))
    )
    harness.settle()
    assert harness.venue.orders[oid].price == D("99.50")
    assert harness.statuses()[oid] == "OrderReplaced"
    harness.stack.command(CancelOrder(oid, "ACC-1", PBTC.instrument_id, harness.stack.tick()))
    harness.settle()
    assert harness.venue.orders[oid].status is OrderStatus.CANCELED
    assert harness.statuses()[oid] == "OrderCanceled"


def test_fills_while_the_gateway_is_down_are_reconciled_and_flagged(harness: Harness) -> None:
    oid = harness.submit("3")
    harness.settle()
    harness.stop()
    harness.venue.fill(oid, D("1"), D("100"))
    harness.venue.fill(oid, D("2"), D("100"))
    harness.start()
    harness.settle()
    fills = [
        e for e in harness.stack.events("orders.events") if isinstance(e, OrderFilled | OrderPartiallyFilled)
    ]
    assert [f.fill.reconciled for f in fills] == [True, True]
    harness.assert_agrees()


def test_a_stranger_order_is_reported_and_canceled_by_policy() -> None:
    h = Harness()
    try:
        h.stop()
        stranger = h.venue.place_outside(PBTC.instrument_id, D("1"), D("90"))
        assert h.gateway is not None
        h.gateway = None
        h.stop_event = threading.Event()
        g = Gateway(
            "pp",
            h.venue,
            h.stack.log,
            h.stack.codec,
            account="ACC-1",
            clock=h.stack.clock,
            external_orders="cancel",
            retry=RetryPolicy(0.01, 0.01, 0),
        )
        h.gateway = g
        h.thread = threading.Thread(target=g.run, args=(h.stop_event,), daemon=True)
        h.thread.start()
        wait_until(g.ready.is_set, 60, "the gateway to reconcile")
        assert g.stats.external_orders == 1
        assert h.venue.orders[stranger.order_id].status is OrderStatus.CANCELED
    finally:
        h.stop()


def test_a_request_older_than_the_limit_is_rejected_not_sent_late() -> None:
    h = Harness(max_request_age_s=5)
    try:
        h.stop()
        oid = h.submit("1")
        for _ in range(40):  # 10 s of engine time pass while the gateway is down
            h.stack.tick()
        h.start()
        h.settle()
        assert h.statuses()[oid] == "OrderRejected"
        assert oid not in h.venue.orders
    finally:
        h.stop()


def test_a_throttled_venue_rejects_new_orders_with_the_reason(harness: Harness) -> None:
    harness.venue.throttle_for = 30
    oid = harness.submit("1")
    harness.settle()
    rejected = [e for e in harness.stack.events("orders.events") if type(e).__name__ == "OrderRejected"]
    assert [e.order_id for e in rejected] == [oid]
    assert rejected[0].reason.startswith("throttled")


@pytest.mark.parametrize("seed", range(12))
def test_no_fill_is_lost_or_doubled_under_a_seeded_fault_schedule(seed: int) -> None:
    run_fault_schedule(seed, Harness())


def run_fault_schedule(seed: int, h: Harness) -> None:
    """25 random steps of orders, venue fills and faults; then Meltica must agree with the venue."""
    rng = random.Random(seed)
    try:
        ours: list[str] = []
        for _ in range(25):
            action = rng.choice(
                [
                    "submit",
                    "submit",
                    "fill",
                    "fill",
                    "fill",
                    "cancel",
                    "amend",
                    "lose",
                    "duplicate",
                    "drop",
                    "restart",
                    "unavailable",
                ]
            )
            open_ids = [
                o
                for o in ours
                if h.venue.orders.get(o) is not None
                and h.venue.orders[o].status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
            ]
            if action == "submit":
                ours.append(h.submit(str(rng.randint(1, 4))))
            elif action == "fill" and open_ids:
                oid = rng.choice(open_ids)
                h.venue.fill(oid, D(rng.choice(["0.5", "1", "4"])), D("100"))
            elif action == "cancel" and open_ids:
                h.stack.command(
                    CancelOrder(rng.choice(open_ids), "ACC-1", PBTC.instrument_id, h.stack.tick())
                )
            elif action == "amend" and open_ids:
                h.stack.command(
                    AmendOrder(
                        rng.choice(open_ids), "ACC-1", PBTC.instrument_id, h.stack.tick(), price=D("99.90")
                    )
                )
            elif action == "lose":
                h.venue.lose_next = rng.randint(1, 2)
            elif action == "duplicate":
                h.venue.duplicate_next = rng.randint(1, 2)
            elif action == "drop":
                h.venue.drop_stream()
            elif action == "restart":
                h.stop()
                for oid in open_ids[:2]:  # fills while Meltica is down
                    h.venue.fill(oid, D("1"), D("100"))
                h.start()
            elif action == "unavailable":
                h.venue.unavailable_next = 1
                h.venue.lost_answers = rng.random() < 0.5
            h.stack.run()
        h.venue.lose_next = h.venue.duplicate_next = 0
        h.settle()
        h.stop()  # a last restart reconciles whatever a lost message hid
        h.start()
        h.settle()
        h.assert_agrees()
        assert len(h.venue.orders) == len({o for o in ours if o in h.venue.orders})  # nothing sent twice
    finally:
        h.stop()


def test_requests_of_other_venues_are_left_alone(harness: Harness) -> None:
    spec = harness.stack.submit(OrderSide.BUY, "1", "100.00")  # at the simulator
    harness.settle()
    assert spec.order_id not in harness.venue.orders
    assert harness.statuses()[spec.order_id] in ("OrderAcknowledged", "OrderFilled")
    assert harness.gateway is not None
    ends = {
        p: harness.stack.log.end_offset(VENUE_REQUESTS, p)
        for p in range(harness.stack.log.partitions(VENUE_REQUESTS))
    }
    assert {tp.partition: off for tp, off in harness.gateway.positions.items()} == ends


def test_a_venue_balance_that_differs_from_the_portfolio_is_reported(harness: Harness) -> None:
    from meltica.domain.portfolio.events import BalanceDiscrepancy

    harness.settle()
    assert not [e for e in harness.stack.events("portfolio.events") if isinstance(e, BalanceDiscrepancy)]
    harness.stop()
    harness.venue.cash = D("999000")  # someone withdrew 1000 USDT at the venue
    harness.start()
    harness.settle()
    found = [e for e in harness.stack.events("portfolio.events") if isinstance(e, BalanceDiscrepancy)]
    assert [(e.asset, e.meltica_total, e.venue_total, e.difference) for e in found] == [
        ("USDT", D("1000000"), D("999000"), D("-1000"))
    ]


def test_another_accounts_order_never_reaches_the_connections_venue(harness: Harness) -> None:
    """The connection trades for ACC-1 only: an order of ACC-2 at its venue is rejected, not sent."""
    from dataclasses import replace

    from meltica.domain.orders.commands import SubmitOrder
    from meltica.domain.portfolio.events import AdjustBalance
    from meltica.topics import PORTFOLIO_COMMANDS

    stack = harness.stack
    stack.command(AdjustBalance("ACC-2", "USDT", D("1000000"), "test", stack.tick()), PORTFOLIO_COMMANDS)
    spec = replace(
        stack.submit(OrderSide.BUY, "1", "100.00", instrument_id=PBTC.instrument_id, order_id="theirs"),
        order_id="other",
        client_order_id="other",
        account_id="ACC-2",
    )
    stack.command(SubmitOrder(spec, stack.tick()))
    harness.settle()
    rejected = [e for e in stack.events("orders.events") if type(e).__name__ == "OrderRejected"]
    assert [(e.order_id, "does not trade at PAPER" in e.reason) for e in rejected] == [("other", True)]
    assert "other" not in harness.venue.orders
