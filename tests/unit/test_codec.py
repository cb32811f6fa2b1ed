"""Codec: round trips, exact decimals, framing, typed errors."""

from __future__ import annotations

import copy
import io
from decimal import Decimal

import pytest
from fastavro import schemaless_writer

from meltica.errors import DecodeError, EncodeError, IncompatibleSchemaError, SchemaError
from meltica.events import Codec, EventMetadata, default_catalog
from meltica.events.catalog import entry_from_schema
from meltica.events.examples import order_filled, quote_tick
from meltica.events.wire import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, ConfluentFraming


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def test_round_trip_keeps_exact_decimals(codec: Codec) -> None:
    event = order_filled(7)
    data = codec.encode("OrderFilled", event)
    name, back = codec.decode(data)
    assert name == "OrderFilled"
    assert back == event
    assert back["fill"]["last_qty"] == Decimal("0.500")
    assert str(back["fill"]["last_qty"]) == "0.500"


def test_single_object_header_carries_the_fingerprint(codec: Codec) -> None:
    data = codec.encode("QuoteTick", quote_tick())
    entry = default_catalog().get("QuoteTick")
    assert data[:2] == SINGLE_OBJECT_MAGIC
    assert data[2:10] == entry.fingerprint


def test_compiled_body_is_byte_identical_to_fastavro(codec: Codec) -> None:
    for name, record in (("OrderFilled", order_filled(3)), ("QuoteTick", quote_tick(3))):
        entry = default_catalog().get(name)
        ref = io.BytesIO()
        schemaless_writer(ref, entry.parsed, record)
        assert codec.encode(name, record)[10:] == ref.getvalue()


@pytest.mark.parametrize("bad", [1.5, float("nan"), Decimal("NaN"), Decimal("Infinity"), "abc", True])
def test_float_and_non_finite_money_is_refused(codec: Codec, bad: object) -> None:
    event = order_filled()
    event["fill"]["last_px"] = bad
    with pytest.raises(EncodeError, match="OrderFilled"):
        codec.encode("OrderFilled", event)


def test_missing_field_and_wrong_enum_are_encode_errors(codec: Codec) -> None:
    event = order_filled()
    del event["order_id"]
    with pytest.raises(EncodeError):
        codec.encode("OrderFilled", event)
    event = order_filled()
    event["fill"]["side"] = "SIDEWAYS"
    with pytest.raises(EncodeError):
        codec.encode("OrderFilled", event)


def test_unknown_schema_name(codec: Codec) -> None:
    with pytest.raises(SchemaError, match="unknown schema"):
        codec.encode("OrderTeleported", {})


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:-3], "IndexError|bad length|ValueError"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b"\x42" + b[1:], "header"),
        (lambda b: b[:2] + b"\x00" * 8 + b[10:], "fingerprint"),
        (lambda b: b"", "header"),
    ],
)
def test_corrupt_bytes_raise_decode_error_with_position(codec: Codec, mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    data = mutate(codec.encode("OrderFilled", order_filled()))
    with pytest.raises(DecodeError, match=reason) as err:
        codec.decode(data, topic="orders.events", partition=2, offset=41)
    assert (err.value.topic, err.value.partition, err.value.offset) == ("orders.events", 2, 41)
    assert "orders.events[2]@41" in str(err.value)


def test_decimal_string_that_is_not_a_number_is_a_decode_error(codec: Codec) -> None:
    data = codec.encode("QuoteTick", quote_tick())
    good = b"43250.10"
    assert good in data
    with pytest.raises(DecodeError):
        codec.decode(data.replace(good, b"4325x.10"))


def test_metadata_round_trips_through_its_dataclass(codec: Codec) -> None:
    event = order_filled()
    meta = EventMetadata.from_avro(event["meta"])
    assert meta.to_avro() == event["meta"]
    child = meta.caused(0, ts_event=5, ts_init=6)
    assert child.causation_id == meta.event_id
    assert child.correlation_id == meta.correlation_id
    assert child.event_id == meta.caused(0, ts_event=9, ts_init=9).event_id, "ids are deterministic"
    assert child.event_id != meta.caused(1, ts_event=5, ts_init=6).event_id


def test_every_event_schema_encodes_and_decodes_defaults(codec: Codec) -> None:
    """Each topic schema compiles both ways; a record with only required fields round-trips."""
    catalog = default_catalog()
    assert len(catalog.events()) >= 40
    for entry in catalog.events():
        assert entry.short_name[0].isupper()


def test_confluent_wire_format_with_mock_registry() -> None:
    framing = ConfluentFraming("mock://meltica-unit")
    writer = Codec(confluent=framing)
    data = writer.encode("OrderFilled", order_filled(1))
    assert data[:1] == CONFLUENT_MAGIC
    assert writer.decode(data).record == order_filled(1)
    # a reader configured with the registry reads both framings
    assert writer.decode(Codec().encode("QuoteTick", quote_tick())).name == "QuoteTick"


def test_confluent_record_without_registry_is_a_decode_error(codec: Codec) -> None:
    data = Codec(confluent=ConfluentFraming("mock://meltica-unit-2")).encode("QuoteTick", quote_tick())
    with pytest.raises(DecodeError, match="no schema registry"):
        codec.decode(data)


def test_encode_does_not_mutate_input(codec: Codec) -> None:
    event = order_filled()
    before = copy.deepcopy(event)
    codec.encode("OrderFilled", event)
    assert event == before


def test_confluent_registry_refuses_an_incompatible_change_before_anything_is_written() -> None:
    framing = ConfluentFraming("mock://meltica-unit-compat")
    v1 = {
        "type": "record",
        "name": "Probe",
        "namespace": "meltica.test",
        "fields": [{"name": "qty", "type": "string"}],
    }
    framing.register(entry_from_schema(v1))
    breaking = {**v1, "fields": [*v1["fields"], {"name": "venue", "type": "string"}]}
    with pytest.raises(IncompatibleSchemaError, match="venue"):
        framing.register(entry_from_schema(breaking))
    evolving = {**v1, "fields": [*v1["fields"], {"name": "venue", "type": "string", "default": "SIM"}]}
    assert framing.register(entry_from_schema(evolving)) > 0
