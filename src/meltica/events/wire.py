"""Framing of Avro bodies on the wire: Avro single-object encoding and the Confluent format.

Single-object: 0xC3 0x01, the schema's 8-byte CRC-64-AVRO fingerprint, the body.
Confluent:     0x00, the registry's 4-byte big-endian schema id, the body.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from meltica.errors import IncompatibleSchemaError, SchemaError
from meltica.events.catalog import SchemaEntry, entry_from_schema

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class Framing(Protocol):
    """How the codec prefixes a body so a reader can find its writer schema."""

    def header(self, entry: SchemaEntry) -> bytes: ...


class SingleObjectFraming:
    """Avro single-object encoding: the fingerprint travels with every record."""

    def header(self, entry: SchemaEntry) -> bytes:
        return SINGLE_OBJECT_MAGIC + entry.fingerprint


class ConfluentFraming:
    """Confluent wire format through a Confluent-compatible schema registry.

    Subjects follow the record-name strategy, so one topic may carry many event types.
    `url` may be `mock://name` for confluent-kafka's in-process registry.
    """

    def __init__(self, url: str, config: dict[str, Any] | None = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        # new_client returns the in-process mock for mock:// URLs and a real client otherwise.
        self._client = SchemaRegistryClient.new_client({"url": url, **(config or {})})
        self._ids: dict[str, int] = {}
        self._entries: dict[int, SchemaEntry] = {}

    def header(self, entry: SchemaEntry) -> bytes:
        schema_id = self._ids.get(entry.name)
        if schema_id is None:
            schema_id = self.register(entry)
        return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")

    def register(self, entry: SchemaEntry) -> int:
        """Register `entry` under its subject, after checking it can read the latest version.

        The check is ours (BACKWARD, naming the field), so an incompatible change is refused
        before anything is written, whatever compatibility level the registry is set to; the
        registry's own check still applies on top."""
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        from meltica.events.compatibility import check_backward

        try:
            latest = self._client.get_latest_version(entry.name)
        except SchemaRegistryError as err:
            if err.http_status_code != 404:
                raise SchemaError(f"registry lookup of {entry.name}: {err.error_message}") from err
        else:
            check_backward(entry.name, entry.schema, json.loads(latest.schema.schema_str or "null"))
        try:
            schema_id = int(self._client.register_schema(entry.name, Schema(entry.json(), "AVRO")))
        except SchemaRegistryError as err:
            if err.http_status_code == 409:
                raise IncompatibleSchemaError(entry.name, "<schema>", err.error_message) from err
            raise SchemaError(f"registry refused {entry.name}: {err.error_message}") from err
        self._ids[entry.name] = schema_id
        self._entries[schema_id] = entry
        return schema_id

    def entry(self, schema_id: int) -> SchemaEntry:
        """The writer schema with registry id `schema_id`."""
        found = self._entries.get(schema_id)
        if found is None:
            from confluent_kafka.schema_registry.error import SchemaRegistryError

            try:
                schema = self._client.get_schema(schema_id)
            except SchemaRegistryError as err:
                raise SchemaError(f"schema id {schema_id}: {err.error_message}") from err
            found = entry_from_schema(json.loads(schema.schema_str or "null"))
            self._entries[schema_id] = found
        return found
