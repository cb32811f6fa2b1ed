"""Domain events map one to one onto the Avro schemas and round-trip through the codec."""

from __future__ import annotations

import dataclasses

import pytest

from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.commands import SubmitOrder, SubmitOrderList
from meltica.domain.orders.events import OrderAccepted, OrderDenied, OrderFilled, OrderTransitionRejected
from meltica.domain.orders.model import OrderStatus
from meltica.domain.portfolio.events import Lot, PositionChanged, PositionSide
from meltica.domain.risk.checks import DenyReason
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import DEFAULT_LIMITS
from meltica.domain.values import ContingencyType, RiskScope
from meltica.events import Codec, default_catalog
from meltica.events.examples import metadata
from meltica.events.mapping import DOMAIN_TYPES, from_record, to_record
from tests.unit.domain.support import BTC, T0, D, fill, order


@pytest.mark.parametrize("name", sorted(DOMAIN_TYPES))
def test_fields_match_the_schema(name: str) -> None:
    schema = default_catalog().get(name).schema
    avro = {f["name"] for f in schema["fields"]} - {"meta"}
    domain = {f.name for f in dataclasses.fields(DOMAIN_TYPES[name])} - {"ts"}
    assert avro == domain


def samples() -> list[object]:
    spec = order(contingency_type=ContingencyType.OCO, linked_order_ids=("X",), tags={"k": "v"})
    rep = fill(spec, "0.5", "100.25", fee="0.01")
    assert rep.fill is not None
    return [
        SubmitOrder(spec, T0),
        SubmitOrderList("L", "ACC-1", (spec, order()), T0),
        OrderAccepted(spec, T0),
        OrderFilled(
            spec.order_id,
            spec.client_order_id,
            "ACC-1",
            spec.instrument_id,
            T0,
            rep.fill,
            D("0.5"),
            D("0.5"),
            D("100.25"),
        ),
        OrderTransitionRejected(
            spec.order_id, "", "ACC-1", spec.instrument_id, T0, OrderStatus.FILLED, "x", "y"
        ),
        OrderDenied(
            spec.order_id, spec.client_order_id, "ACC-1", spec.instrument_id, T0, DenyReason.PRICE_BAND, "m"
        ),
        rep,
        PositionChanged(
            "ACC-1",
            spec.instrument_id,
            PositionSide.LONG,
            D(1),
            D(100),
            D(0),
            D(0),
            D(0),
            "USDT",
            T0,
            None,
            None,
            (Lot(D(1), D(100)),),
        ),
        SetRiskLimits(RiskScope.PORTFOLIO, "P", DEFAULT_LIMITS, "ops", T0, ("A", "B")),
        QuoteTick(BTC.instrument_id, D(1), D(2), D(3), D(4), T0),
        TradeTick(BTC.instrument_id, D(1), D(2), AggressorSide.SELLER, "t", T0),
        BTC,
    ]


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_round_trip_through_the_codec(event: object) -> None:
    codec = Codec()
    meta = metadata("ACC-1")
    meta["ts_event"] = getattr(event, "ts", meta["ts_event"])
    name, record = to_record(event, meta)
    decoded_name, decoded = codec.decode(codec.encode(name, record))
    assert decoded_name == name
    assert from_record(decoded_name, decoded) == event


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_object_encoder_writes_what_the_record_encoder_writes(event: object) -> None:
    codec = Codec()
    meta = metadata("ACC-1")
    name, record = to_record(event, meta)
    assert codec.encode_object(name, event, meta) == codec.encode(name, record)


def test_a_denial_carries_its_reason_as_the_enum_and_writes_it_as_the_same_string() -> None:
    codec = Codec()
    meta = metadata("ACC-1")
    denied = OrderDenied("O", "C", "ACC-1", BTC.instrument_id, T0, DenyReason.MAX_POSITION, "")
    name, record = to_record(denied, meta)
    assert record["reason"] == "max_position"
    assert type(record["reason"]) is str
    wire = codec.encode_object(name, denied, meta)
    assert wire == codec.encode(name, {**record, "reason": "max_position"})
    back = from_record(*codec.decode(wire))
    assert back.reason is DenyReason.MAX_POSITION
