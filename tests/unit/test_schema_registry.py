"""Embedded schema registry: durable versions, BACKWARD compatibility, old writers still read."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from meltica.errors import IncompatibleSchemaError
from meltica.events import Codec, EmbeddedSchemaRegistry, SchemaCatalog, default_catalog
from meltica.events.catalog import entry_from_schema
from meltica.events.compatibility import check_backward
from meltica.events.examples import quote_tick
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog


def quote_schema() -> dict[str, Any]:
    return copy.deepcopy(default_catalog().get("QuoteTick").schema)


def with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    schema["fields"].append(field)
    return schema


def test_adding_a_field_with_default_is_backward_compatible() -> None:
    old = quote_schema()
    new = with_field(old, {"name": "venue_seq", "type": "long", "default": 0})
    check_backward("QuoteTick", new, old)


def test_adding_a_field_without_default_names_the_field() -> None:
    old = quote_schema()
    new = with_field(old, {"name": "venue_seq", "type": "long"})
    with pytest.raises(IncompatibleSchemaError, match="venue_seq") as err:
        check_backward("QuoteTick", new, old)
    assert err.value.field == "venue_seq"


def test_type_change_inside_nested_record_names_the_path() -> None:
    old = quote_schema()
    new = copy.deepcopy(old)
    meta = new["fields"][0]["type"]
    next(f for f in meta["fields"] if f["name"] == "ts_event")["type"] = "string"
    with pytest.raises(IncompatibleSchemaError, match=r"meta\.ts_event"):
        check_backward("QuoteTick", new, old)


def test_promotion_and_removed_field_are_allowed() -> None:
    old = {
        "type": "record",
        "name": "X",
        "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}],
    }
    new = {"type": "record", "name": "X", "fields": [{"name": "a", "type": "long"}]}
    check_backward("X", new, old)


def test_removing_an_enum_symbol_without_default_is_refused() -> None:
    old = {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}
    new = {"type": "enum", "name": "Side", "symbols": ["BUY"]}
    with pytest.raises(IncompatibleSchemaError, match="SELL"):
        check_backward("Side", new, old)
    check_backward("Side", {**new, "default": "BUY"}, old)


def test_union_must_keep_every_old_branch() -> None:
    old = {"type": "record", "name": "X", "fields": [{"name": "a", "type": ["null", "string"]}]}
    new = {"type": "record", "name": "X", "fields": [{"name": "a", "type": "string"}]}
    with pytest.raises(IncompatibleSchemaError, match="'a'"):
        check_backward("X", new, old)


def test_registry_is_durable_and_refuses_breaking_versions(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.db")
    registry = EmbeddedSchemaRegistry(log)
    v1 = registry.register(default_catalog().get("QuoteTick"))
    assert (v1.version, registry.register(default_catalog().get("QuoteTick")).version) == (1, 1)
    v2 = registry.register(
        entry_from_schema(with_field(quote_schema(), {"name": "n", "type": "int", "default": 0}))
    )
    assert (v2.version, v2.schema_id) == (2, v1.schema_id + 1)
    with pytest.raises(IncompatibleSchemaError, match="'m'"):
        registry.register(entry_from_schema(with_field(v2.entry.schema, {"name": "m", "type": "int"})))
    log.close()

    reopened = EmbeddedSchemaRegistry(SqliteLog(tmp_path / "log.db"))
    assert [r.version for r in reopened.versions(v1.subject)] == [1, 2]
    assert reopened.by_fingerprint(v2.entry.fingerprint) == v2
    assert reopened.by_id(v1.schema_id) == v1


def test_data_written_with_an_old_version_decodes_with_the_new_one(tmp_path: Path) -> None:
    """A build with an extra field (default) reads records an older build wrote."""
    log = MemoryLog()
    old_codec = Codec(registry=EmbeddedSchemaRegistry(log))
    data = old_codec.encode("QuoteTick", quote_tick())

    new_dir = tmp_path / "avro"
    new_dir.mkdir()
    for path in default_catalog().directory.glob("*.avsc"):
        (new_dir / path.name).write_text(path.read_text())
    schema = (new_dir / "meltica.v1.QuoteTick.avsc").read_text()
    schema = schema.replace(
        '"fields": [', '"fields": [{"name": "venue_seq", "type": "long", "default": -1},', 1
    )
    (new_dir / "meltica.v1.QuoteTick.avsc").write_text(schema)
    new_codec = Codec(SchemaCatalog(new_dir), registry=EmbeddedSchemaRegistry(log))

    name, record = new_codec.decode(data)
    assert name == "QuoteTick"
    assert record["venue_seq"] == -1
    assert record["bid_px"] == quote_tick()["bid_px"]


def test_incompatible_build_is_refused_at_start(tmp_path: Path) -> None:
    log = MemoryLog()
    Codec(registry=EmbeddedSchemaRegistry(log))
    bad_dir = tmp_path / "avro"
    bad_dir.mkdir()
    for path in default_catalog().directory.glob("*.avsc"):
        (bad_dir / path.name).write_text(path.read_text())
    target = bad_dir / "meltica.v1.TradeTick.avsc"
    target.write_text(
        target.read_text().replace('"fields": [', '"fields": [{"name": "venue", "type": "string"},', 1)
    )
    with pytest.raises(IncompatibleSchemaError, match="TradeTick: field 'venue'"):
        Codec(SchemaCatalog(bad_dir), registry=EmbeddedSchemaRegistry(log))
