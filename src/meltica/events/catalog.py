"""The schema catalog: the `.avsc` contract in `schemas/avro`, parsed once and cached."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import load_schema, to_parsing_canonical_form

from meltica.errors import SchemaError
from meltica.events import decimals
from meltica.resources import resource_dir

NAMESPACE = "meltica.v1"

decimals.install()


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One top-level named schema: its full JSON, parsed form, canonical form and fingerprint."""

    name: str
    schema: dict[str, Any]
    parsed: Any
    canonical: str
    fingerprint: bytes

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def is_event(self) -> bool:
        """Events and commands carry envelope metadata in a `meta` field."""
        return self.schema.get("type") == "record" and any(f["name"] == "meta" for f in self.schema["fields"])

    def json(self) -> str:
        return json.dumps(self.schema, separators=(",", ":"))


def fingerprint_of(canonical: str) -> bytes:
    """CRC-64-AVRO of a parsing canonical form, 8 bytes little-endian (single-object encoding)."""
    return bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO"))


def entry_from_schema(schema: dict[str, Any]) -> SchemaEntry:
    """Parse a self-contained schema (all named types inlined)."""
    try:
        parsed = fastavro.parse_schema(schema, named_schemas={})
    except Exception as err:  # fastavro raises several types for bad schemas
        raise SchemaError(f"schema does not parse: {err}") from err
    canonical = to_parsing_canonical_form(parsed)
    name = parsed["name"] if isinstance(parsed, dict) else str(parsed)
    return SchemaEntry(name, schema, parsed, canonical, fingerprint_of(canonical))


def default_schema_dir() -> Path:
    """The `.avsc` folder: `schemas/avro` of the source tree, packaged into the wheel."""
    return resource_dir("schemas/avro", "schemas/avro")


class SchemaCatalog:
    """Every schema of the contract by full and short name and by fingerprint."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_schema_dir()
        self._by_name: dict[str, SchemaEntry] = {}
        self._by_fingerprint: dict[bytes, SchemaEntry] = {}
        for path in sorted(self.directory.glob(f"{NAMESPACE}.*.avsc")):
            try:
                expanded = load_schema(str(path), _write_hint=False)
            except Exception as err:
                raise SchemaError(f"{path.name}: {err}") from err
            if not isinstance(expanded, dict):
                raise SchemaError(f"{path.name}: expected one named schema")
            entry = entry_from_schema(expanded)
            self._by_name[entry.name] = entry
            self._by_name.setdefault(entry.short_name, entry)
            self._by_fingerprint[entry.fingerprint] = entry
        if not self._by_name:
            raise SchemaError(f"no schemas in {self.directory}")

    def get(self, name: str) -> SchemaEntry:
        """The schema named `name` (full `meltica.v1.X` or short `X`)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(f"unknown schema {name!r}") from None

    def by_fingerprint(self, fp: bytes) -> SchemaEntry | None:
        return self._by_fingerprint.get(fp)

    def entries(self) -> list[SchemaEntry]:
        """Each schema once, sorted by full name."""
        return sorted({e.name: e for e in self._by_name.values()}.values(), key=lambda e: e.name)

    def events(self) -> list[SchemaEntry]:
        """The schemas that travel on topics (they carry envelope metadata)."""
        return [e for e in self.entries() if e.is_event]


@cache
def default_catalog() -> SchemaCatalog:
    """The catalog of the installed contract, loaded once per process."""
    return SchemaCatalog()
