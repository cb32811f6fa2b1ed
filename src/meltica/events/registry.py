"""Schema registries: versions of each subject, ids, and the BACKWARD compatibility rule.

`EmbeddedSchemaRegistry` is our own, for the embedded mode: it keeps every registered
schema as a record of the `_schemas` topic, so it is as durable as the log itself, and
reloads them on start. Subjects follow the record-name strategy (subject = full name).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Protocol

from meltica.errors import SchemaError
from meltica.events.catalog import SchemaEntry, entry_from_schema
from meltica.events.compatibility import check_backward
from meltica.log.base import EventLog, Message, TopicSpec

SCHEMAS_TOPIC = "_schemas"


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """One version of a subject."""

    subject: str
    version: int
    schema_id: int
    entry: SchemaEntry


class SchemaRegistry(Protocol):
    """What the codec needs of a registry."""

    def register(self, entry: SchemaEntry) -> RegisteredSchema:
        """Register `entry` under its name; refuse it if it breaks compatibility."""
        ...

    def by_fingerprint(self, fingerprint: bytes) -> RegisteredSchema | None: ...

    def by_id(self, schema_id: int) -> RegisteredSchema | None: ...


class EmbeddedSchemaRegistry:
    """Schema versions stored durably in the event log (topic `_schemas`)."""

    def __init__(self, log: EventLog, topic: str = SCHEMAS_TOPIC) -> None:
        self._log = log
        self._topic = topic
        self._lock = threading.Lock()
        self._next_offset = 0
        self._by_subject: dict[str, list[RegisteredSchema]] = {}
        self._by_fingerprint: dict[bytes, RegisteredSchema] = {}
        self._by_id: dict[int, RegisteredSchema] = {}
        log.create_topic(TopicSpec(topic, 1, {"cleanup.policy": "compact"}))
        self._catch_up()

    def _catch_up(self) -> None:
        """Load versions other writers appended since we last looked (the end offset first: on
        Kafka a read that finds nothing waits for its timeout, an end-offset query does not)."""
        end = self._log.end_offset(self._topic, 0)
        while self._next_offset < end:
            records = self._log.read(self._topic, 0, self._next_offset, 1000)
            if not records:
                return  # only transaction markers up to the end
            for rec in records:
                self._next_offset = rec.offset + 1
                doc = json.loads(rec.value)
                self._remember(
                    RegisteredSchema(
                        doc["subject"], doc["version"], doc["id"], entry_from_schema(doc["schema"])
                    )
                )

    def _remember(self, reg: RegisteredSchema) -> None:
        self._by_subject.setdefault(reg.subject, []).append(reg)
        self._by_fingerprint.setdefault(reg.entry.fingerprint, reg)
        self._by_id[reg.schema_id] = reg

    def register(self, entry: SchemaEntry) -> RegisteredSchema:
        with self._lock:
            self._catch_up()
            versions = self._by_subject.get(entry.name, [])
            for reg in versions:
                if reg.entry.fingerprint == entry.fingerprint:
                    return reg
            if versions:
                check_backward(entry.name, entry.schema, versions[-1].entry.schema)
            reg = RegisteredSchema(entry.name, len(versions) + 1, len(self._by_id) + 1, entry)
            doc = {
                "subject": reg.subject,
                "version": reg.version,
                "id": reg.schema_id,
                "schema": entry.schema,
            }
            self._log.append(
                [Message(self._topic, json.dumps(doc).encode(), key=entry.name.encode(), partition=0)]
            )
            self._catch_up()
            return self._by_id.get(reg.schema_id, reg)

    def versions(self, subject: str) -> list[RegisteredSchema]:
        with self._lock:
            self._catch_up()
            return list(self._by_subject.get(subject, []))

    def subjects(self) -> list[str]:
        with self._lock:
            self._catch_up()
            return sorted(self._by_subject)

    def by_fingerprint(self, fingerprint: bytes) -> RegisteredSchema | None:
        with self._lock:
            found = self._by_fingerprint.get(fingerprint)
            if found is None:
                self._catch_up()
                found = self._by_fingerprint.get(fingerprint)
            return found

    def by_id(self, schema_id: int) -> RegisteredSchema | None:
        with self._lock:
            if schema_id not in self._by_id:
                self._catch_up()
            return self._by_id.get(schema_id)


def require(reg: RegisteredSchema | None, what: str) -> RegisteredSchema:
    if reg is None:
        raise SchemaError(f"no registered schema for {what}")
    return reg
