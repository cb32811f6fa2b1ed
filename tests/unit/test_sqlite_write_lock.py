"""The SQLite log waits for another writer's lock in steps of at most a millisecond, not with
SQLite's busy handler (1, 2, 5 ... 100 ms sleeps), and still gives up after its busy timeout."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from meltica.log import sqlite as sqlite_log
from meltica.log.base import Message, TopicSpec
from meltica.log.sqlite import SqliteLog


def test_a_writer_retries_the_lock_in_short_steps_until_the_other_writer_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.db"
    log = SqliteLog(path)
    log.create_topic(TopicSpec("t", 1))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            other.execute("COMMIT")

    monkeypatch.setattr(sqlite_log, "_sleep", sleep)
    [pos] = log.append([Message("t", b"v", b"k")])
    assert (pos.offset, pauses) == (0, [0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.001])
    assert log._db.execute("PRAGMA busy_timeout").fetchone() == (30_000,)  # reads keep the timeout
    other.close()
    log.close()


def test_a_writer_gives_up_after_its_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = SqliteLog(path, busy_timeout_ms=20)
    log.create_topic(TopicSpec("t", 1))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        log.append([Message("t", b"v", b"k")])
    other.execute("ROLLBACK")
    assert log.append([Message("t", b"v", b"k")])[0].offset == 0  # the lock is free again
    assert log._db.execute("PRAGMA busy_timeout").fetchone() == (20,)
    other.close()
    log.close()
