"""Snapshot encoding of processor state (runtime/state_codec.py): domain state round-trips, caches
are left out, fields added since a snapshot get their defaults, and a snapshot pickled plainly
by the main of issue 14 (whose state classes still had `__setstate__` hooks) still loads."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
from pathlib import Path

from meltica.domain.orders.commands import CancelOrder, SubmitOrder
from meltica.domain.portfolio.decider import PortfolioState
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.risk.state import OpenOrder, RiskState
from meltica.domain.values import OrderSide, OrderType
from meltica.runtime import state_codec
from tests.state import canonical
from tests.unit.domain.flow import Flow
from tests.unit.domain.support import BTC, T0, D, ack, fill, order, quote

# `(flow.risk, flow.book, flow.portfolio)` of `busy_flow()`, pickled with `pickle.dumps` by main
# at 5b7c912 (as runtime/partitions.py wrote snapshots then), gzipped.
MAIN_SNAPSHOT = Path(__file__).parent / "data" / "state_5b7c912.pickle.gz"


def busy_flow() -> Flow:
    """Orders open, partly filled, amended-pending and canceled, with marks and balances."""
    f = Flow(risk=RiskState(defaults=RiskLimits(price_band=D("0.2"))))
    f.define(BTC)
    f.deposit("ACC-1", "USDT", "100000")
    f.deposit("ACC-1", "BTC", "10")
    f.portfolio.mark_interval_ns = 60 * 10**9
    f.market(quote("99.99", "100.01"))
    a = order(qty="2", price="100", order_id="A", client_order_id="CA")
    b = order(side=OrderSide.SELL, qty="1", price="101", order_id="B", client_order_id="CB")
    c = order(
        OrderType.STOP_MARKET,
        price=None,
        trigger_price=D("90"),
        side=OrderSide.SELL,
        order_id="C",
        client_order_id="CC",
    )
    for spec in (a, b, c):
        f.submit(SubmitOrder(spec, T0))
    f.report(ack(a))
    f.report(fill(a, "1", "100", trade_id="T-A"))
    f.report(ack(b))
    f.order_input(CancelOrder(b.order_id, b.account_id, b.instrument_id, T0 + 1))
    f.market(quote("100.49", "100.51", ts=T0 + 120 * 10**9))
    return f


def states(f: Flow) -> tuple[RiskState, object, PortfolioState]:
    return f.risk, f.book, f.portfolio


def test_domain_state_round_trips_by_field_name() -> None:
    f = busy_flow()
    restored = state_codec.loads(state_codec.dumps(states(f)))
    assert restored == states(f)  # dataclass equality: caches (compare=False) aside
    assert canonical(restored[1:]) == canonical(states(f)[1:])
    assert restored[2].published_marks == f.portfolio.published_marks != {}


def test_caches_are_not_written() -> None:
    f = busy_flow()
    assert f.risk.limits_cache, "the flow consulted limits"
    restored = state_codec.loads(state_codec.dumps(f.risk))
    assert restored.limits_cache == {}
    assert restored.effective_limits("ACC-1", BTC.instrument_id) == f.risk.effective_limits(
        "ACC-1", BTC.instrument_id
    )


def test_fields_added_since_a_snapshot_get_their_defaults() -> None:
    state = PortfolioState(mark_interval_ns=5)
    older = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    del older["published_marks"], older["mark_interval_ns"]
    older["a_field_since_removed"] = 1
    restored = state_codec.restore(PortfolioState, older)
    assert (restored.published_marks, restored.mark_interval_ns) == ({}, 0)
    open_order = state_codec.restore(
        OpenOrder,
        {"instrument_id": "X", "side": OrderSide.BUY, "quantity": D(1), "leaves": D(1)}
        | {"price": D(1), "asset": "USDT", "reserved": D(1)},
    )
    assert (open_order.spec, open_order.pending) == (None, None)


def test_a_plain_pickle_from_before_a_field_existed_loads_with_its_default() -> None:
    """As the `__setstate__` hooks the domain classes had did: now the codec's job."""
    f = busy_flow()
    account = f.risk.accounts["ACC-1"]
    open_order = account.open_orders["A"]
    del open_order.spec, open_order.pending  # as pickled before these fields were added
    del f.portfolio.published_marks, f.portfolio.mark_interval_ns
    holder = {"processors": [{"risk": f.risk}, (f.portfolio,)]}
    loaded = state_codec.loads(pickle.dumps(holder, pickle.HIGHEST_PROTOCOL))
    [risk_of, (portfolio_of,)] = loaded["processors"]
    restored = risk_of["risk"].accounts["ACC-1"].open_orders["A"]
    assert (restored.spec, restored.pending, restored.filled) == (None, None, D(1))
    assert (portfolio_of.published_marks, portfolio_of.mark_interval_ns) == ({}, 0)


def test_a_snapshot_written_by_main_before_the_codec_still_loads() -> None:
    old = state_codec.loads(gzip.decompress(MAIN_SNAPSHOT.read_bytes()))
    now = states(busy_flow())
    # execution analytics changed since: they hold the order's account, venue and strategy, which
    # an older entry loads without (their defaults)
    assert sorted(old[2].analytics) == sorted(now[2].analytics) == ["A", "B", "C"]
    assert (old[2].analytics["A"].venue, now[2].analytics["A"].venue) == ("", "SIM")
    old[2].analytics.clear()
    now[2].analytics.clear()
    assert canonical(old) == canonical(now)
    assert state_codec.loads(state_codec.dumps(old)) == old


def test_the_main_snapshot_fixture_is_a_plain_pickle() -> None:
    """The fixture exercises the old path: no `restore` call inside it."""
    assert b"state_codec" not in gzip.decompress(MAIN_SNAPSHOT.read_bytes())
    assert b"state_codec" in state_codec.dumps(busy_flow().portfolio)
    assert pickle.HIGHEST_PROTOCOL >= 5


def test_a_snapshot_of_the_renamed_execution_processor_still_loads() -> None:
    """Main (5b7c912) pickled the execution processor as `meltica.processors.venue.VenueProcessor`."""
    from meltica.processors.execution import ExecutionProcessor

    data = gzip.decompress(
        (Path(__file__).parent / "data" / "venue_processor_5b7c912.pickle.gz").read_bytes()
    )
    assert b"meltica.processors.venue" in data
    restored = state_codec.loads(data)
    assert isinstance(restored, ExecutionProcessor)
    assert list(restored.venues) == ["SIM"]
