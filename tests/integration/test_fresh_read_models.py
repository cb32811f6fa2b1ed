"""tests/read_models.py, the fresh read models the API and control-plane tests start on: empty
and at the newest revision, whether copied (SQLite), emptied (PostgreSQL left as migrated) or
migrated again (PostgreSQL changed in between)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import ProgrammingError

from meltica.projections import migrations
from meltica.projections import tables as t
from tests.read_models import FreshReadModels

ROW = {"projection": "p", "topic": "orders.events", "partition": 0, "next_offset": 7}


def write_offset(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(t.projection_offsets.insert().values(**ROW, updated_at=datetime.now(UTC)))
    engine.dispose()


def offsets(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(t.projection_offsets)).scalar_one()
    engine.dispose()
    return int(count)


def revision(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return str(found)


HEAD = ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()


def test_sqlite_read_models_are_separate_migrated_copies(tmp_path: Path) -> None:
    fresh = FreshReadModels(tmp_path)
    first = fresh.sqlite(tmp_path / "a.db")
    write_offset(first)
    second = fresh.sqlite(tmp_path / "b.db")
    assert (offsets(first), offsets(second)) == (1, 0)
    assert revision(second) == HEAD
    assert migrations.tables(second) == migrations.tables(first) >= set(t.metadata.tables)


@pytest.mark.postgres
def test_postgres_read_models_are_emptied_or_migrated_again(database_url: str, tmp_path: Path) -> None:
    fresh = FreshReadModels(tmp_path)
    url = fresh.postgres(database_url)
    migrated = migrations.tables(url)
    write_offset(url)
    assert fresh.postgres(url) == url
    assert offsets(url) == 0, "the rows of the last test are gone"
    assert (revision(url), migrations.tables(url)) == (HEAD, migrated)

    migrations.downgrade(url, "base")  # another test took the schema away
    with pytest.raises(ProgrammingError, match="projection_offsets"):
        write_offset(url)
    fresh.postgres(url)
    assert (revision(url), migrations.tables(url)) == (HEAD, migrated)
    assert offsets(url) == 0
