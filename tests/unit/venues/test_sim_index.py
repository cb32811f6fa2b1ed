"""The simulated venue's indexes of resting orders (per price level, per instrument) stay the
same orders, in the same time priority, as `resting` itself, whatever the venue is asked to do."""

from __future__ import annotations

import copy
import pickle  # nosec B403 # the test's own objects
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.events import VenueAmendOrder, VenueCancelOrder, VenueSubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType, TimeInForce
from meltica.venues.sim import SimVenue
from meltica.venues.sim.matching import _level
from tests.unit.domain.support import BTC, ETH, T0

INSTRUMENTS: tuple[Instrument, ...] = (BTC, ETH)
PRICES = [Decimal(p) for p in ("99", "100", "101")]  # few levels: orders share them

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.sampled_from(INSTRUMENTS),
            st.sampled_from(OrderSide),
            st.sampled_from(PRICES),
            st.integers(1, 5),
            st.sampled_from([None, 1, 2]),  # iceberg slice
            st.sampled_from([None, 3, 30]),  # GTD expiry (ticks from T0)
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("amend"), st.integers(0, 30), st.sampled_from([None, *PRICES]), st.integers(0, 6)),
        st.tuples(st.just("trade"), st.sampled_from(INSTRUMENTS), st.sampled_from(PRICES), st.integers(1, 9)),
        st.tuples(st.just("quote"), st.sampled_from(INSTRUMENTS), st.sampled_from(PRICES)),
        st.tuples(st.just("connection"), st.booleans()),
    ),
    max_size=40,
)


def apply(v: SimVenue, op: tuple[Any, ...], n: int, ts: int) -> None:
    kind = op[0]
    if kind == "submit":
        _, inst, side, price, qty, shown, expires = op
        spec = OrderSpec(
            f"O{n}",
            f"O{n}",
            "A",
            inst.instrument_id,
            side,
            OrderType.LIMIT,
            Decimal(qty),
            price,
            time_in_force=TimeInForce.GTC if expires is None else TimeInForce.GTD,
            expire_time_ns=None if expires is None else T0 + expires,
            display_quantity=None if shown is None else Decimal(shown),
        )
        v.on_request(VenueSubmitOrder("SIM", spec, ts))
    elif kind in ("cancel", "amend"):
        order_id = f"O{op[1]}"
        r = v.resting.get(order_id)
        inst = r.spec.instrument_id if r is not None else BTC.instrument_id
        if kind == "cancel":
            v.on_request(VenueCancelOrder("SIM", order_id, None, "A", inst, ts))
        else:
            qty = Decimal(op[3]) if op[3] else None
            v.on_request(VenueAmendOrder("SIM", order_id, None, "A", inst, ts, quantity=qty, price=op[2]))
    elif kind == "trade":
        _, inst, price, size = op
        v.on_market(TradeTick(inst.instrument_id, price, Decimal(size), AggressorSide.BUYER, f"T{n}", ts))
    elif kind == "quote":
        _, inst, mid = op
        v.on_market(QuoteTick(inst.instrument_id, mid - 2, Decimal(1), mid + 2, Decimal(1), ts))
    else:
        v.connection(op[1], "test", ts)


def indexes_agree(v: SimVenue) -> None:
    levels: dict[Any, list[str]] = {}
    instruments: dict[str, list[str]] = {}
    for order_id, r in v.resting.items():  # time priority
        levels.setdefault(_level(r), []).append(order_id)
        instruments.setdefault(r.spec.instrument_id, []).append(order_id)
    assert {k: list(q) for k, q in v._queues.items()} == levels
    assert {k: list(q) for k, q in v._instruments.items()} == instruments


@given(ops)
def test_the_indexes_are_the_resting_orders_in_time_priority(script: list[tuple[Any, ...]]) -> None:
    v = SimVenue("SIM")
    for inst in INSTRUMENTS:
        v.on_instrument(inst)
        v.on_market(QuoteTick(inst.instrument_id, Decimal(98), Decimal(3), Decimal(102), Decimal(3), T0))
    for n, op in enumerate(script):
        apply(v, op, n, T0 + n + 1)
        indexes_agree(v)
    for again in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v)):  # nosec B301 # our own pickle
        indexes_agree(again)
        assert list(again.resting) == list(v.resting)


def test_a_venue_pickled_before_the_indexes_gets_them_back() -> None:
    v = SimVenue("SIM")
    v.on_instrument(BTC)
    v.on_market(QuoteTick(BTC.instrument_id, Decimal(98), Decimal(3), Decimal(102), Decimal(3), T0))
    for n in range(3):  # two at one level, one at another
        apply(v, ("submit", BTC, OrderSide.BUY, Decimal(99 - n // 2), 2, None, None), n, T0)
    state = v.__getstate__()
    assert "_queues" not in state  # never pickled
    assert "_instruments" not in state
    old = SimVenue.__new__(SimVenue)
    old.__setstate__(state)
    indexes_agree(old)
    assert [r.spec.order_id for r in old._same_level(old.resting["O1"])] == ["O0"]
    assert [r.spec.order_id for r in old._on_instrument(BTC.instrument_id)] == ["O0", "O1", "O2"]


def test_an_order_resting_again_under_its_id_replaces_the_first() -> None:
    v = SimVenue("SIM")
    v.on_instrument(BTC)
    v.on_market(QuoteTick(BTC.instrument_id, Decimal(98), Decimal(3), Decimal(102), Decimal(3), T0))
    apply(v, ("submit", BTC, OrderSide.BUY, Decimal(99), 2, None, None), 0, T0)
    apply(v, ("submit", BTC, OrderSide.BUY, Decimal(100), 2, None, None), 0, T0 + 1)  # the same id, again
    indexes_agree(v)
    assert [r.spec.price for r in v.resting.values()] == [Decimal(100)]
