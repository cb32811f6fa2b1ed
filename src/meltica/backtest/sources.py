"""Where a backtest's market data comes from: a data directory's embedded log, Kafka topics, the
Parquet archive, or a recorded file.

`open_source("log:DIR" | "kafka:" | "kafka:HOST:PORT?namespace=NS" | "archive:DIR" | path)` gives a
`Source`; `events(selection)` yields its quotes, trades, bars and book events of the selected time
range, instruments and venues. The recorded sources (log, Kafka, archive) yield them in one
canonical order: by event time, then topic, instrument and recorded order, so the same recording
gives the same backtest from each of them. A file keeps its own order.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
import time
import typing
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from meltica.domain.marketdata import Bar, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.events.codec import Codec
from meltica.events.mapping import DOMAIN_TYPES, from_record
from meltica.marketdata.formats import DataFormat, read
from meltica.topics import MARKET_DATA

MarketEvent = Bar | QuoteTick | TradeTick | OrderBookDelta | OrderBookSnapshot
_RANK = {topic: i for i, topic in enumerate(MARKET_DATA)}
_KAFKA_TIMEOUT_S = 30.0
_CLOCK_SLACK_MS = 60_000  # Kafka record times are producer clocks: start the search a minute early


@dataclass(frozen=True, slots=True)
class Selection:
    """What to replay: event times in [start_ns, end_ns), instruments and venues (empty: all)."""

    start_ns: int | None = None
    end_ns: int | None = None
    instruments: tuple[str, ...] = ()
    venues: tuple[str, ...] = ()

    def wants(self, instrument_id: str, ts: int) -> bool:
        if self.start_ns is not None and ts < self.start_ns:
            return False
        if self.end_ns is not None and ts >= self.end_ns:
            return False
        return self.wants_instrument(instrument_id)

    def wants_instrument(self, instrument_id: str) -> bool:
        if self.instruments and instrument_id not in self.instruments:
            return False
        return not self.venues or instrument_id.rpartition(".")[2] in self.venues


class Source(Protocol):
    """Market data for a backtest."""

    def events(self, selection: Selection) -> list[MarketEvent]:
        """The selected events, in replay order."""
        ...


def _canonical(keyed: Iterable[tuple[int, str, str, int, MarketEvent]]) -> list[MarketEvent]:
    """Events keyed (ts, topic, instrument, recorded order) in the order every recorded source shares."""
    return [e for *_, e in sorted(keyed, key=lambda k: (k[0], _RANK[k[1]], k[2], k[3]))]


def _decoded(
    codec: Codec, topic: str, value: bytes, selection: Selection, order: int
) -> tuple[int, str, str, int, MarketEvent] | None:
    name, fields = codec.decode(value, topic=topic)
    ts = fields["meta"]["ts_event"]
    iid = fields["instrument_id"]
    if not selection.wants(iid, ts):
        return None
    return ts, topic, iid, order, from_record(name, fields)


@dataclass(frozen=True, slots=True)
class FileSource:
    """A recorded file in one of the known formats, for one instrument (today's `backtest run`)."""

    path: Path
    file_format: DataFormat
    instrument_id: str

    def events(self, selection: Selection) -> list[MarketEvent]:
        data: list[MarketEvent] = read(self.path, self.file_format, self.instrument_id)
        return [e for e in data if selection.wants(e.instrument_id, e.ts)]


@dataclass(frozen=True, slots=True)
class LogSource:
    """The embedded log (`<dir>/log.db`) of a data directory, opened read-only: it may belong to a
    running `meltica up`, whose writer lock is left alone."""

    data_dir: Path

    def events(self, selection: Selection) -> list[MarketEvent]:
        path = self.data_dir.expanduser() / "log.db"
        if not path.exists():
            raise ValueError(f"no embedded log at {path}")
        codec = Codec()
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            keyed = []
            with db:  # one read transaction: a consistent view while the owner keeps appending
                rows = db.execute(
                    "SELECT topic, value, seq FROM records WHERE topic IN (?, ?, ?, ?) ORDER BY seq",
                    MARKET_DATA,
                )
                for topic, value, seq in rows:
                    item = _decoded(codec, topic, bytes(value), selection, seq)
                    if item is not None:
                        keyed.append(item)
        finally:
            db.close()
        return _canonical(keyed)


@dataclass(frozen=True, slots=True)
class KafkaSource:
    """Market-data topics of a Kafka cluster (`namespace` prefixes the topic names), read committed
    from the offsets `offsets_for_times` gives for the start of the range up to the end offsets
    seen when the read began."""

    bootstrap: str
    namespace: str = ""
    security: Mapping[str, str] = field(default_factory=dict)

    def events(self, selection: Selection) -> list[MarketEvent]:
        from confluent_kafka import Consumer, KafkaError
        from confluent_kafka import TopicPartition as KafkaTopicPartition

        prefix = f"{self.namespace}." if self.namespace else ""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                **self.security,
                "group.id": f"meltica-backtest-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        codec = Codec()
        keyed = []
        try:
            listed = consumer.list_topics(timeout=_KAFKA_TIMEOUT_S).topics
            partitions = [
                KafkaTopicPartition(prefix + t, p)
                for t in MARKET_DATA
                if prefix + t in listed
                for p in sorted(listed[prefix + t].partitions)
            ]
            if not partitions:
                raise ValueError(f"no market-data topics on {self.bootstrap} (namespace {self.namespace!r})")
            ends = {
                (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=_KAFKA_TIMEOUT_S)[1]
                for tp in partitions
            }
            starts = self._starts(consumer, partitions, selection, ends)
            todo = {k for k, start in starts.items() if start < ends[k]}
            consumer.assign([KafkaTopicPartition(t, p, starts[(t, p)]) for t, p in sorted(todo)])
            deadline = time.monotonic() + _KAFKA_TIMEOUT_S
            while todo:
                batch = consumer.consume(10_000, timeout=0.1)
                if not batch and time.monotonic() > deadline:
                    raise ValueError(
                        f"Kafka gave no records within {_KAFKA_TIMEOUT_S}s; still to read: {todo}"
                    )
                for msg in batch:
                    where = (msg.topic(), msg.partition())
                    if where not in todo:
                        continue
                    err = msg.error()
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        raise ValueError(f"reading {where[0]}[{where[1]}]: {err}")
                    deadline = time.monotonic() + _KAFKA_TIMEOUT_S
                    offset = int(msg.offset() or 0)
                    if err is None and offset < ends[where]:
                        topic = where[0][len(prefix) :]
                        item = _decoded(codec, topic, msg.value() or b"", selection, offset)
                        if item is not None:
                            keyed.append(item)
                    # done at the end noted at the start (EOF there: transaction markers closed it)
                    if offset >= ends[where] - (1 if err is None else 0):
                        todo.discard(where)
        finally:
            consumer.close()
        return _canonical(keyed)

    @staticmethod
    def _starts(
        consumer: Any, partitions: list[Any], selection: Selection, ends: dict[tuple[str, int], int]
    ) -> dict[tuple[str, int], int]:
        from confluent_kafka import OFFSET_BEGINNING
        from confluent_kafka import TopicPartition as KafkaTopicPartition

        if selection.start_ns is None:
            return {
                (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=_KAFKA_TIMEOUT_S)[0]
                for tp in partitions
            }
        # A record is produced after its event happened: nothing before the first record produced
        # at or after the range's start can be in the range.
        ms = max(selection.start_ns // 1_000_000 - _CLOCK_SLACK_MS, 0)
        found = consumer.offsets_for_times(
            [KafkaTopicPartition(tp.topic, tp.partition, ms) for tp in partitions], timeout=_KAFKA_TIMEOUT_S
        )
        starts = {}
        for tp in found:
            key = (tp.topic, tp.partition)
            starts[key] = ends[key] if tp.offset < 0 else tp.offset  # -1: none that late
            if tp.offset == OFFSET_BEGINNING:
                starts[key] = 0
        return starts


@dataclass(frozen=True, slots=True)
class ArchiveSource:
    """The Parquet archive `meltica data archive` writes (instrument=<id>/date=<day>/<topic>.parquet)."""

    root: Path

    def events(self, selection: Selection) -> list[MarketEvent]:
        import pyarrow.parquet as pq

        root = self.root.expanduser()
        if not root.is_dir():
            raise ValueError(f"no archive at {root}")
        keyed = []
        for folder in sorted(root.glob("instrument=*")):
            iid = folder.name.partition("=")[2]
            if not selection.wants_instrument(iid):
                continue
            for day in sorted(folder.glob("date=*")):
                for topic in MARKET_DATA:
                    path = day / f"{topic}.parquet"
                    if not path.exists():
                        continue
                    for order, row in enumerate(pq.read_table(path).to_pylist()):
                        if selection.wants(iid, row["ts_event"]):
                            keyed.append((row["ts_event"], topic, iid, order, _from_row(row)))
        return _canonical(keyed)


@functools.cache
def _nested(name: str) -> dict[str, bool]:
    """The fields of event type `name`, and whether the archive holds each as JSON (tuples, maps)."""
    cls: Any = DOMAIN_TYPES[name]
    hints = typing.get_type_hints(cls)
    return {f.name: typing.get_origin(hints[f.name]) in (tuple, dict) for f in dataclasses.fields(cls)}


def _from_row(row: dict[str, Any]) -> MarketEvent:
    """An archived row as its event: nested values were stored as JSON text, decimals as their text."""
    name = row["type"]
    fields: dict[str, Any] = {"meta": {"ts_event": row["ts_event"], "ts_init": row["ts_init"]}}
    for key, nested in _nested(name).items():
        value = row.get(key)
        if value is None or key == "ts":
            continue
        if isinstance(value, str) and (nested or value == "null"):
            value = json.loads(value)
        fields[key] = value
    event: MarketEvent = from_record(name, fields)
    return event


def open_source(
    spec: str,
    *,
    file_format: DataFormat | None = None,
    instrument_id: str | None = None,
    kafka_bootstrap: str | None = None,
    namespace: str = "",
    kafka_security: Mapping[str, str] | None = None,
) -> Source:
    """The source a `--source` value names; a plain path is a file of `file_format` for `instrument_id`."""
    kind, sep, rest = spec.partition(":")
    if sep and kind == "log":
        return LogSource(Path(rest or "~/.meltica").expanduser())
    if sep and kind == "archive":
        if not rest:
            raise ValueError("archive: needs the archive folder, archive:DIR")
        return ArchiveSource(Path(rest).expanduser())
    if sep and kind == "kafka":
        where, _, query = rest.partition("?")
        options = {k: v[-1] for k, v in parse_qs(query).items()}
        bootstrap = where or kafka_bootstrap
        if not bootstrap:
            raise ValueError("kafka: needs a bootstrap (kafka:HOST:PORT or MELTICA_KAFKA_BOOTSTRAP)")
        return KafkaSource(bootstrap, options.get("namespace", namespace), dict(kafka_security or {}))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ValueError(f"{spec}: not a file, nor log:DIR, kafka:[HOST:PORT][?namespace=NS] or archive:DIR")
    if file_format is None:
        raise ValueError("a file source needs --format")
    if instrument_id is None:
        raise ValueError("a file source needs one --instrument")
    return FileSource(path, file_format, instrument_id)


def instant_ns(value: str | None) -> int | None:
    """An ISO-8601 time (UTC without an offset) as epoch nanoseconds; None stays None."""
    if value is None:
        return None
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    since = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (since.days * 86_400 + since.seconds) * 1_000_000_000 + since.microseconds * 1_000
