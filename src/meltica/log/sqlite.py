"""Embedded event log in one SQLite file (WAL): the zero-setup default.

An append returns only after SQLite committed it, so an acknowledged append survives
`kill -9` of the writer. Several processes may share the file: writers serialize on
SQLite's write lock (`BEGIN IMMEDIATE`) and offsets come from a per-partition head row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

from meltica.errors import LogError, UnknownTopicError
from meltica.log.base import (
    EventLog,
    Headers,
    Message,
    Position,
    Record,
    TopicPartition,
    TopicSpec,
    Transaction,
)

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_SEQ = ("", -1)  # the heads row holding the next global sequence number
_sleep = time.sleep  # between tries for the write lock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
  name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
  key BLOB, value BLOB NOT NULL, headers BLOB, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (topic, partition, "offset")) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
"""


def _pack_headers(headers: Headers) -> bytes | None:
    """Headers as length-prefixed key/value pairs (2-byte key length, 4-byte value length)."""
    if not headers:
        return None
    return b"".join(_packed_key(k) + len(v).to_bytes(4, "big") + v for k, v in headers)


@lru_cache(maxsize=1024)
def _packed_key(key: str) -> bytes:
    raw = key.encode()
    return len(raw).to_bytes(2, "big") + raw


_KEYS: dict[bytes, str] = {}  # header names, decoded once


def _unpack_headers(blob: bytes | None) -> Headers:
    if not blob:
        return ()
    out = []
    pos, size = 0, len(blob)
    while pos < size:
        key_end = pos + 2 + ((blob[pos] << 8) | blob[pos + 1])
        raw = blob[pos + 2 : key_end]
        key = _KEYS.get(raw)
        if key is None:
            key = raw.decode()
            if len(_KEYS) < 1024:
                _KEYS[raw] = key
        pos = key_end + 4 + int.from_bytes(blob[key_end : key_end + 4], "big")
        out.append((key, bytes(blob[key_end + 4 : pos])))
    return tuple(out)


class SqliteLog(EventLog):
    """The event log in a SQLite database file."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL", busy_timeout_ms: int = 30_000):
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)

    # -- topics ---------------------------------------------------------------------------
    def create_topic(self, spec: TopicSpec) -> None:
        with self._lock, self._write():
            row = self._db.execute("SELECT partitions FROM topics WHERE name = ?", (spec.name,)).fetchone()
            if row is not None:
                if row[0] != spec.partitions:
                    raise LogError(f"topic {spec.name!r} exists with {row[0]} partitions")
                return
            self._db.execute(
                "INSERT INTO topics VALUES (?, ?, ?)",
                (spec.name, spec.partitions, json.dumps(dict(spec.config))),
            )
            self._db.executemany(
                "INSERT INTO heads VALUES (?, ?, 0)", [(spec.name, p) for p in range(spec.partitions)]
            )

    def topics(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT name, partitions FROM topics").fetchall())

    # -- records --------------------------------------------------------------------------
    def append(self, messages: Sequence[Message]) -> list[Position]:
        with self._lock, self._write():
            return self._insert(messages)

    def _insert(self, messages: Sequence[Message]) -> list[Position]:
        if not messages:
            return []
        parts = [self._partition_of(m, self._partitions_cached(m.topic)) for m in messages]
        current = {
            (t, p): off for t, p, off in self._db.execute("SELECT topic, partition, next_offset FROM heads")
        }
        heads: dict[tuple[str, int], int] = {_SEQ: current.get(_SEQ, 0)}
        for m, p in zip(messages, parts, strict=True):
            heads.setdefault((m.topic, p), current.get((m.topic, p), 0))
        seq = heads[_SEQ]
        now = time.time_ns() // 1_000_000
        rows = []
        positions = []
        for m, p in zip(messages, parts, strict=True):
            off = heads[(m.topic, p)]
            heads[(m.topic, p)] = off + 1
            rows.append((m.topic, p, off, m.key, m.value, _pack_headers(m.headers), now, seq))
            seq += 1
            positions.append(Position(m.topic, p, off))
        heads[_SEQ] = seq
        self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._db.executemany(
            "INSERT INTO heads VALUES (?, ?, ?) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(t, p, off) for (t, p), off in heads.items()],
        )
        return positions

    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[Record]:
        self._check_partition(topic, partition)
        with self._lock:
            rows = self._db.execute(
                'SELECT "offset", key, value, headers, ts, seq FROM records '
                'WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (topic, partition, offset, limit),
            ).fetchall()
        new = tuple.__new__  # a Record without the NamedTuple's Python-level constructor call
        return [
            new(Record, (topic, partition, off, key, value, _unpack_headers(h) if h else (), ts, seq))
            for off, key, value, h, ts, seq in rows
        ]

    def end_offset(self, topic: str, partition: int) -> int:
        self._check_partition(topic, partition)
        with self._lock:
            row = self._db.execute(
                "SELECT next_offset FROM heads WHERE topic = ? AND partition = ?", (topic, partition)
            ).fetchone()
        return int(row[0])

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        with self._lock:
            heads = {
                (t, p): off
                for t, p, off in self._db.execute("SELECT topic, partition, next_offset FROM heads")
            }
        return {tp: heads.get((tp.topic, tp.partition), 0) for tp in partitions}

    def last_sequence(self) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT next_offset FROM heads WHERE topic = ? AND partition = ?", _SEQ
            ).fetchone()
        return 0 if row is None else int(row[0])

    def _check_partition(self, topic: str, partition: int) -> None:
        if not 0 <= partition < self._partitions_cached(topic):
            raise UnknownTopicError(f"partition {partition} of {topic!r} does not exist")

    # -- consumer groups ------------------------------------------------------------------
    def committed(self, group: str, tp: TopicPartition) -> int | None:
        with self._lock:
            row = self._db.execute(
                'SELECT "offset" FROM group_offsets WHERE grp = ? AND topic = ? AND partition = ?',
                (group, tp.topic, tp.partition),
            ).fetchone()
        return None if row is None else int(row[0])

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock, self._write():
            self._store_offsets(group, offsets)

    def _store_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        self._db.executemany(
            "INSERT INTO group_offsets VALUES (?, ?, ?, ?) "
            'ON CONFLICT (grp, topic, partition) DO UPDATE SET "offset" = excluded."offset"',
            [(group, tp.topic, tp.partition, off) for tp, off in offsets.items()],
        )

    def transaction(self, group: str | None = None) -> Transaction:
        return _SqliteTransaction(self, group)

    def _commit_transaction(
        self, group: str | None, messages: Sequence[Message], offsets: Mapping[TopicPartition, int]
    ) -> list[Position]:
        if offsets and group is None:
            raise LogError("committing offsets needs a consumer group")
        with self._lock, self._write():
            positions = self._insert(messages)
            if offsets and group is not None:
                self._store_offsets(group, offsets)
            return positions

    # -- plumbing -------------------------------------------------------------------------
    def _write(self) -> _WriteTransaction:
        return _WriteTransaction(self._db, self._busy_timeout_ms)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _WriteTransaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error.

    The write lock is waited for here, in steps of at most a millisecond, not by SQLite's busy
    handler: that one sleeps 1, 2, 5, 10 ... 100 ms between tries, so a writer that meets another
    process's commit (a few hundred microseconds) could lose tens of milliseconds.
    """

    def __init__(self, db: sqlite3.Connection, busy_timeout_ms: int) -> None:
        self._db = db
        self._busy_timeout_ms = busy_timeout_ms

    def __enter__(self) -> None:
        try:
            self._db.execute("PRAGMA busy_timeout=0")
            _begin_immediate(self._db, self._busy_timeout_ms / 1000)
        finally:
            self._db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._db.execute("ROLLBACK")
                raise LogError(f"sqlite commit failed: {err}") from err
        else:
            self._db.execute("ROLLBACK")


def _begin_immediate(db: sqlite3.Connection, timeout_s: float) -> None:
    """Take the write lock, retrying (sleeps from 50 us up to 1 ms) for at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pause = 0.00005
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        _sleep(pause)
        pause = min(pause * 2, 0.001)


class _SqliteTransaction(Transaction):
    def __init__(self, log: SqliteLog, group: str | None) -> None:
        super().__init__()
        self._log = log
        self._group = group

    def _commit(self, messages: Sequence[Message], offsets: Mapping[TopicPartition, int]) -> list[Position]:
        return self._log._commit_transaction(self._group, messages, offsets)
