"""SQLite read models are in WAL mode after a migration: the API's reads never wait for the
projector's writes (in rollback-journal mode a reader meets SQLITE_BUSY during every commit)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meltica.projections import migrations


def test_a_migrated_sqlite_read_model_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "rm.db"
    migrations.upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
