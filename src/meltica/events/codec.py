"""The codec: records <-> bytes, with schemas from the catalog and a registry.

Encoding uses single-object framing by default and the Confluent wire format when a
schema registry URL is configured. Decoding reads both, resolves old writer schemas
against the current reader schema, and turns every failure into a `DecodeError` that
names the topic, partition and offset.
"""

from __future__ import annotations

import io
from decimal import InvalidOperation
from typing import Any, NamedTuple

from fastavro import schemaless_reader

from meltica.errors import DecodeError, EncodeError, SchemaError
from meltica.events.catalog import SchemaCatalog, SchemaEntry, default_catalog
from meltica.events.compiled import (
    Decoder,
    Encoder,
    ObjectEncoder,
    compile_decoder,
    compile_encoder,
    compile_object_encoder,
)
from meltica.events.registry import SchemaRegistry
from meltica.events.wire import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MAGIC,
    ConfluentFraming,
    Framing,
    SingleObjectFraming,
)
from meltica.log.base import Record


class Decoded(NamedTuple):
    """A decoded record: the schema's short name (`OrderFilled`) and its fields."""

    name: str
    record: dict[str, Any]


class Codec:
    """Avro encode/decode for every schema of the catalog."""

    def __init__(
        self,
        catalog: SchemaCatalog | None = None,
        *,
        registry: SchemaRegistry | None = None,
        confluent: ConfluentFraming | None = None,
    ) -> None:
        self.catalog = catalog or default_catalog()
        self._registry = registry
        self._confluent = confluent
        self._framing: Framing = confluent or SingleObjectFraming()
        self._writers: dict[str, tuple[bytes, Encoder]] = {}
        self._object_writers: dict[str, tuple[bytes, ObjectEncoder]] = {}
        self._readers: dict[bytes, tuple[str, Decoder | None, Any, Any]] = {}
        if registry is not None:
            for entry in self.catalog.entries():
                if entry.is_event:
                    registry.register(entry)

    # -- encode ---------------------------------------------------------------------------
    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Serialize `record` with the current schema `name` (short or full)."""
        writer = self._writers.get(name)
        if writer is None:
            entry = self.catalog.get(name)
            writer = self._writers[name] = (self._framing.header(entry), compile_encoder(entry.schema))
        header, encoder = writer
        try:
            return header + encoder(record)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, InvalidOperation) as err:
            raise EncodeError(name, f"{type(err).__name__}: {err}") from err

    def encode_object(self, name: str, obj: Any, meta: dict[str, Any]) -> bytes:
        """Serialize a domain object whose attributes are the fields of schema `name`."""
        writer = self._object_writers.get(name)
        if writer is None:
            entry = self.catalog.get(name)
            writer = self._object_writers[name] = (
                self._framing.header(entry),
                compile_object_encoder(entry.schema),
            )
        header, encoder = writer
        try:
            return header + encoder(obj, meta)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, InvalidOperation) as err:
            raise EncodeError(name, f"{type(err).__name__}: {err}") from err

    # -- decode ---------------------------------------------------------------------------
    def decode(self, data: bytes, *, topic: str = "", partition: int = -1, offset: int = -1) -> Decoded:
        """Deserialize bytes written by any known version of a schema."""
        try:
            fast = self._readers.get(data[:10])  # single-object records of a known schema
            name, decoder, writer, reader, start = (*fast, 10) if fast is not None else self._resolve(data)
            if decoder is not None:
                record, end = decoder(data, start)
            else:
                buf = io.BytesIO(data)
                buf.seek(start)
                resolved = schemaless_reader(buf, writer, reader)
                if not isinstance(resolved, dict):
                    raise ValueError("top-level schema is not a record")
                record, end = resolved, buf.tell()
            if end != len(data):
                raise ValueError(f"{len(data) - end} trailing bytes after the record")
        except DecodeError:
            raise
        except Exception as err:  # corrupt input surfaces as many exception types
            raise DecodeError(topic, partition, offset, f"{type(err).__name__}: {err}") from err
        return Decoded(name, record)

    def decode_record(self, record: Record) -> Decoded:
        """Decode a log record, naming its position on failure."""
        return self.decode(record.value, topic=record.topic, partition=record.partition, offset=record.offset)

    def _resolve(self, data: bytes) -> tuple[str, Decoder | None, Any, Any, int]:
        """Reader for the record's writer schema: compiled when it is the current version."""
        prefix = data[:10] if data[:2] == SINGLE_OBJECT_MAGIC else data[:5]
        cached = self._readers.get(prefix)
        if cached is None:
            if data[:2] == SINGLE_OBJECT_MAGIC and len(data) >= 10:
                writer_entry = self._by_fingerprint(data[2:10])
            elif data[:1] == CONFLUENT_MAGIC and len(data) >= 5:
                if self._confluent is None:
                    raise SchemaError("Confluent-framed record but no schema registry URL is configured")
                writer_entry = self._confluent.entry(int.from_bytes(data[1:5], "big"))
            else:
                raise SchemaError("no single-object or Confluent header")
            reader_entry = self._current(writer_entry)
            if reader_entry.fingerprint == writer_entry.fingerprint:
                cached = (reader_entry.short_name, compile_decoder(reader_entry.schema), None, None)
            else:
                cached = (reader_entry.short_name, None, writer_entry.parsed, reader_entry.parsed)
            self._readers[prefix] = cached
        return (*cached, len(prefix))

    def _by_fingerprint(self, fp: bytes) -> SchemaEntry:
        entry = self.catalog.by_fingerprint(fp)
        if entry is None and self._registry is not None:
            reg = self._registry.by_fingerprint(fp)
            entry = None if reg is None else reg.entry
        if entry is None:
            raise SchemaError(f"unknown schema fingerprint {fp.hex()}")
        return entry

    def _current(self, writer: SchemaEntry) -> SchemaEntry:
        """The reader schema for data written with `writer`: this build's version of the name."""
        try:
            return self.catalog.get(writer.name)
        except SchemaError:
            return writer
