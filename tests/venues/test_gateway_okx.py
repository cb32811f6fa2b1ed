"""The gateway with the OKX adapter against the fake OKX, on the embedded engine: instruments from
the venue, submit / partial fill / fill / cancel / amend / a venue reject through the order state
machine, and fills made while the gateway was down reconciled after a restart.

`venues/live.py` does not list `okx` as an executing kind yet (the coordinator wires it): the
engine is told so here, as that wiring will."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from meltica.domain.instruments import Instrument
from meltica.domain.portfolio.events import AdjustBalance
from meltica.topics import PORTFOLIO_COMMANDS
from meltica.venues import live
from meltica.venues.okx import client_ids
from tests.e2e.stack import Stack
from tests.fakes.okx import FakeOkx
from tests.venues import desk as desk_harness
from tests.venues.test_okx_execution import adapter_for

D = Decimal
IID = "BTC-USD.OKX"


def _fund(stack: Stack, instruments: list[Instrument]) -> None:
    stack.setup(*instruments)
    stack.publisher.publish(
        PORTFOLIO_COMMANDS, AdjustBalance("ACC-1", "USD", D("10000"), "test", stack.tick())
    )


class Desk(desk_harness.Desk[FakeOkx]):
    """The engine, the fake OKX and the gateway in a thread."""

    def __init__(self, fake: FakeOkx) -> None:
        super().__init__(fake, adapter_for, name="ok", kind="okx", iid=IID, fund=_fund)

    def open_at_venue(self) -> list[dict[str, Any]]:
        return [o for o in self.fake.orders() if o["state"] in ("live", "partially_filled")]


@pytest.fixture
def desk() -> Iterator[Desk]:
    assert live.EXECUTING_KINDS["okx"] == "OKX"
    with FakeOkx() as fake:
        fake.set_balance("USD", "10000")
        fake.set_balance("BTC", "1")
        fake.set_book("BTC-USD", {"49000": "1"}, {"51000": "1"})
        d = Desk(fake)
        yield d
        d.stop()


def test_submit_partial_fill_fill_reach_the_orders(desk: Desk) -> None:
    oid = desk.submit("0.003", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.fake.fill(client_ids.client_id(oid), "0.001")
    desk.until(oid, "OrderPartiallyFilled")
    desk.fake.fill(client_ids.client_id(oid))
    desk.until(oid, "OrderFilled")
    fills = desk.fills(oid)
    assert sum(f.last_qty for f in fills) == D("0.003")
    assert len({f.trade_id for f in fills}) == len(fills) == 2
    assert not any(f.reconciled for f in fills)


def test_cancel_and_amend_reach_okx(desk: Desk) -> None:
    oid = desk.submit("0.002", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.amend(oid, "49500")
    desk.until(oid, "OrderReplaced")
    assert [o["px"] for o in desk.open_at_venue()] == ["49500"]
    desk.cancel(oid)
    desk.until(oid, "OrderCanceled")
    assert desk.open_at_venue() == []


def test_a_venue_reject_reaches_the_order_with_the_reason(desk: Desk) -> None:
    desk.stack.publisher.publish(
        PORTFOLIO_COMMANDS, AdjustBalance("ACC-1", "USD", D("100000"), "test", desk.stack.tick())
    )  # Meltica's books allow it: only the venue (10k USD) refuses
    oid = desk.submit("0.5", "50000")
    desk.until(oid, "OrderRejected")
    rejected = [e for e in desk.stack.events("orders.events") if type(e).__name__ == "OrderRejected"]
    assert rejected[0].reason.startswith("insufficient_balance"), rejected[0].reason


def test_the_venue_filters_are_checked_before_an_order_leaves(desk: Desk) -> None:
    oid = desk.submit("0.001", "50000.05")  # BTC-USD's tickSz is 0.1
    desk.until(oid, "OrderDenied")
    denied = [e for e in desk.stack.events("orders.events") if type(e).__name__ == "OrderDenied"]
    assert denied[0].reason == "price_precision"
    assert desk.fake.orders() == []


def test_fills_while_the_gateway_is_down_are_reconciled(desk: Desk) -> None:
    oid = desk.submit("0.003", "50000")
    desk.until(oid, "OrderAcknowledged")
    desk.stop()
    desk.fake.fill(client_ids.client_id(oid), "0.001")
    desk.fake.fill(client_ids.client_id(oid))
    desk.start()
    desk.until(oid, "OrderFilled")
    fills = desk.fills(oid)
    assert [f.reconciled for f in fills] == [True, True]
    assert sum(f.last_qty for f in fills) == D("0.003")
