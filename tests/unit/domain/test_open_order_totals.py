"""Risk's running totals over open orders always equal the scan over the orders they replace.

The checks read what open orders hold per asset, may still trade per (instrument, side) and
expose per instrument from `OpenOrders` totals kept as orders are accepted, filled, amended,
replaced, canceled, rejected and expire. By hypothesis (the random order flows of
`test_risk_paths`, with expiries), after every step the totals equal an exact scan of the orders.
"""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings

from meltica.domain.orders.commands import SubmitOrder, SubmitOrderList
from meltica.domain.risk import decider as risk
from meltica.domain.risk.state import EXACT, AccountRisk, OpenOrder, OpenOrders, PendingAmend
from meltica.domain.values import ExecType, OrderSide
from meltica.runtime import state_codec
from tests.state import canonical
from tests.unit.domain.support import BTC, D, order, report
from tests.unit.domain.test_risk_paths import KINDS, RACES, TIGHT, Run, steps

Sums = dict[Any, Decimal]


def _add(sums: Sums, key: object, value: Decimal) -> None:
    sums[key] = EXACT.add(sums.get(key, D(0)), value)


def scan(orders: dict[str, OpenOrder]) -> tuple[Sums, Sums, Sums, Sums]:
    """(held per asset, worst leaves per (instrument, side), gross and net exposure units per
    instrument) summed over the orders one by one, as the checks did before the totals."""
    held: Sums = {}
    leaves: Sums = {}
    gross: Sums = {}
    net: Sums = {}
    for o in orders.values():
        _add(held, o.asset, o.held)
        _add(leaves, (o.instrument_id, o.side), o.worst_leaves)
        units = EXACT.multiply(o.leaves, o.price)
        if o.pending is not None:
            units = max(units, EXACT.multiply(o.pending_leaves, o.pending.price))
        _add(gross, o.instrument_id, EXACT.abs(units))
        _add(net, o.instrument_id, units if o.side is OrderSide.BUY else EXACT.minus(units))
    return held, leaves, gross, net


def assert_totals_match(account: AccountRisk) -> None:
    orders = account.orders()
    held, leaves, gross, net = scan(orders)
    assert {a: orders.held(a) for a in held} == held
    assert {k: orders.leaves(*k) for k in leaves} == leaves
    exposure = orders.exposure()
    assert {i: exposure.get(i, (D(0), D(0)))[0] for i in gross} == gross
    assert {i: exposure.get(i, (D(0), D(0)))[1] for i in net} == net
    totals = orders.totals()
    assert set(totals.shares) == set(orders)
    for kept in (totals.held, totals.leaves, totals.gross, totals.net):
        assert all(v != 0 for v in kept.values())  # an emptied total is dropped, not kept at zero
    assert not totals.held.keys() - held.keys()
    assert not totals.gross.keys() - gross.keys()


class Expiring(Run):
    """The risk-paths flow, where the venue may also expire an order."""

    def step(self, kind: str, qty: Decimal, px: Decimal, pick: int, flag: bool) -> None:
        if kind != "expire":
            super().step(kind, qty, px, pick, flag)
            return
        self.ts += 1_000_000
        book = self.f.book.orders
        live = [s for s in self.specs if s.order_id in book and book[s.order_id].is_open]
        if live:
            self.f.report(report(live[pick % len(live)], ExecType.EXPIRED, ts=self.ts))


def _run(sequence: list[tuple[str, Decimal, Decimal, int, bool]], run: Run) -> None:
    for kind, qty, px, pick, flag in sequence:
        run.step(kind, qty, px, pick, flag)
        for account in run.f.risk.accounts.values():
            assert_totals_match(account)
    assert_totals_match(run.f.risk.accounts["ACC-1"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps([*KINDS, "expire", "expire"]))
def test_totals_equal_the_scan_through_any_order_flow(
    sequence: list[tuple[str, Decimal, Decimal, int, bool]],
) -> None:
    _run(sequence, Expiring())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps([*RACES, "expire"]))
def test_totals_equal_the_scan_through_amend_races(
    sequence: list[tuple[str, Decimal, Decimal, int, bool]],
) -> None:
    _run(sequence, Expiring(TIGHT, usdt="250"))


def _order(qty: str, leaves: str, reserved: str, side: OrderSide = OrderSide.BUY) -> OpenOrder:
    return OpenOrder(BTC.instrument_id, side, D(qty), D(leaves), D("100"), "USDT", D(reserved))


def test_a_plain_dict_of_open_orders_gets_its_totals_when_first_asked() -> None:
    account = AccountRisk("ACC-1", open_orders={"A": _order("3", "1", "300"), "B": _order("1", "1", "100")})
    assert account.reserved("USDT") == D(200)
    assert type(account.open_orders) is OpenOrders
    del account.open_orders["A"]  # removing an order as a plain dict would: the totals follow
    assert account.reserved("USDT") == D(100)


def test_an_order_changed_in_place_counts_again_once_recounted() -> None:
    orders = OpenOrders({"A": _order("3", "3", "300")})
    assert orders.held("USDT") == D(300)
    o = orders["A"]
    o.leaves = D(1)
    o.pending = PendingAmend(D(4), D(101), D(404))
    orders.recount("A")
    assert_totals_match(AccountRisk("ACC-1", open_orders=orders))
    assert orders.held("USDT") == D(202)  # the pending amend's 404 x (4 - 2 filled) / 4
    assert orders.leaves(BTC.instrument_id, OrderSide.BUY) == D(2)


def test_copies_and_snapshots_carry_consistent_totals() -> None:
    orders = OpenOrders({"A": _order("3", "1", "7"), "B": _order("2", "2", "2", OrderSide.SELL)})
    orders.totals()
    thirds = orders.held("USDT")
    assert thirds == EXACT.add(D(7) / 3, D(2))  # a third of 7 is rounded once, then summed exactly
    for again in (
        copy.deepcopy(orders),
        pickle.loads(pickle.dumps(orders)),  # our own bytes
        state_codec.loads(state_codec.dumps(orders)),
    ):
        assert again == orders
        assert isinstance(again, OpenOrders)
        assert again.held("USDT") == thirds
        del again["A"]
        assert again.held("USDT") == D(2)
        assert orders.held("USDT") == thirds  # the copy's totals are its own
    without = orders.without("A")
    assert (set(without), without.held("USDT"), orders.held("USDT")) == ({"B"}, D(2), thirds)


def test_every_way_of_removing_orders_keeps_the_totals() -> None:
    orders = OpenOrders({k: _order("1", "1", "100") for k in "ABCDE"})
    orders.totals()
    orders.pop("A")
    orders.popitem()
    assert orders.pop("missing", None) is None
    orders.setdefault("F", _order("1", "1", "50"))
    orders.update({"G": _order("1", "1", "25")})
    orders |= {"B": _order("2", "1", "100")}  # replaced: half of 100 held
    assert_totals_match(AccountRisk("ACC-1", open_orders=orders))
    assert orders.held("USDT") == D(325)  # B 50, C and D 100 each, F 50, G 25
    orders.clear()
    assert orders.held("USDT") == 0


def test_judging_a_list_leaves_the_state_as_it_was() -> None:
    """A list is judged on a scratch state (its accounts copied, not the whole state)."""
    run = Run(usdt="250")
    run.submit(SubmitOrder(order(qty="1", price="100"), run.ts))  # rests, holding 100.1 USDT
    state = run.f.risk
    before = copy.deepcopy(state)
    held = state.accounts["ACC-1"].reserved("USDT")
    first, second, third = (order(qty="1", price=px) for px in ("99", "98", "97"))
    decided = risk.decide(state, SubmitOrderList("L", "ACC-1", (first, second, third), run.ts))
    # each order is judged after those before it: 150 USDT left covers the first only
    assert [type(d).__name__ for d in decided] == ["OrderAccepted", "OrderDenied", "OrderDenied"]
    assert state == before  # the limits cache aside, as deciding a single order fills it too
    assert canonical(state.accounts) == canonical(before.accounts)
    assert state.accounts["ACC-1"].reserved("USDT") == held
    assert_totals_match(state.accounts["ACC-1"])
