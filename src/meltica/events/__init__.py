"""Avro events: the schema catalog, codec, envelope metadata, schema registry, consumers."""

from meltica.events.catalog import SchemaCatalog, SchemaEntry, default_catalog
from meltica.events.codec import Codec, Decoded
from meltica.events.envelope import EventMetadata, derive_event_id
from meltica.events.registry import EmbeddedSchemaRegistry, RegisteredSchema, SchemaRegistry

__all__ = [
    "Codec",
    "Decoded",
    "EmbeddedSchemaRegistry",
    "EventMetadata",
    "RegisteredSchema",
    "SchemaCatalog",
    "SchemaEntry",
    "SchemaRegistry",
    "default_catalog",
    "derive_event_id",
]
