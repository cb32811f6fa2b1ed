"""Envelope metadata every event and command carries (the `meta` field of each schema)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from meltica.log.base import Position

# Namespace for deterministic event ids: the same cause and index always give the same id.
EVENT_ID_NAMESPACE = uuid.UUID("6d656c74-6963-6100-8000-6576656e7473")
_KEY = EVENT_ID_NAMESPACE.bytes


def derive_event_id(cause_id: str, index: int = 0) -> str:
    """The id of the `index`-th event caused by `cause_id`; stable across replays and restarts.

    A name-based UUID (BLAKE2b of the namespace, the cause and the index, version and variant
    bits set as for UUIDv8), so ids look like every other id and cost about a microsecond.
    """
    digest = bytearray(hashlib.blake2b(f"{cause_id}/{index}".encode(), digest_size=16, key=_KEY).digest())
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """Ids, causality, timestamps (integer ns), partition key, aggregate version, source position."""

    event_id: str
    correlation_id: str
    ts_event: int
    ts_init: int
    key: str
    version: int = 0
    causation_id: str | None = None
    source: Position | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "causation_id": self.causation_id,
            "correlation_id": self.correlation_id,
            "ts_event": self.ts_event,
            "ts_init": self.ts_init,
            "key": self.key,
            "version": self.version,
            "source": None
            if self.source is None
            else {
                "topic": self.source.topic,
                "partition": self.source.partition,
                "offset": self.source.offset,
            },
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> EventMetadata:
        src = d.get("source")
        return cls(
            event_id=d["event_id"],
            correlation_id=d["correlation_id"],
            ts_event=d["ts_event"],
            ts_init=d["ts_init"],
            key=d["key"],
            version=d.get("version", 0),
            causation_id=d.get("causation_id"),
            source=None if src is None else Position(src["topic"], src["partition"], src["offset"]),
        )

    def caused(
        self,
        index: int,
        *,
        ts_event: int,
        ts_init: int,
        key: str | None = None,
        version: int = 0,
        source: Position | None = None,
    ) -> EventMetadata:
        """Metadata for the `index`-th event this one causes (same correlation)."""
        return EventMetadata(
            event_id=derive_event_id(self.event_id, index),
            correlation_id=self.correlation_id,
            ts_event=ts_event,
            ts_init=ts_init,
            key=self.key if key is None else key,
            version=version,
            causation_id=self.event_id,
            source=source,
        )


def order_id_for(account_id: str, client_order_id: str) -> str:
    """The order id of `client_order_id` on `account_id`, whoever submits it (a REST client, a
    strategy): deterministic, so resubmitting the same client order id is the same order."""
    return derive_event_id(f"order/{account_id}/{client_order_id}")
