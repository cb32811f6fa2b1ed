"""Fresh read-model databases for tests, without running every migration again for each test:
a SQLite file is a copy of one migrated once per session; a PostgreSQL database still at the
newest revision with the tables and sequences it had when migrated here is emptied (its rows
deleted, its sequences restarted), otherwise migrated down to nothing and up again. The
migrations insert no rows, so either way a test starts on the schema `migrations.upgrade` makes,
with every table empty."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, pool, text
from sqlalchemy.exc import DBAPIError

from meltica.projections import migrations
from meltica.projections.tables import metadata


@dataclass(frozen=True)
class _Schema:
    version: tuple[str, ...]
    tables: frozenset[str]
    sequences: frozenset[str]


def _schema(conn: Connection) -> _Schema:
    tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
    names = frozenset(tables.scalars())
    version: tuple[str, ...] = ()
    if "alembic_version" in names:
        version = tuple(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    sequences = conn.execute(
        text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
    )
    return _Schema(version, names, frozenset(sequences.scalars()))


class FreshReadModels:
    """Hands out empty, fully migrated read-model databases (one instance per test session)."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._template: Path | None = None
        self._migrated: dict[str, _Schema] = {}  # PostgreSQL URL -> its schema, once migrated here

    def sqlite(self, path: Path) -> str:
        """A SQLite database at `path`, a copy of one migrated to the newest revision."""
        if self._template is None:
            template = self._workdir / "migrated.db"
            migrations.upgrade(f"sqlite:///{template}")
            self._template = template
        shutil.copyfile(self._template, path)
        return f"sqlite:///{path}"

    def postgres(self, url: str) -> str:
        """The PostgreSQL database at `url`, at the newest revision with every table empty."""
        expected = self._migrated.get(url)
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            if expected is not None:
                try:
                    with engine.begin() as conn:
                        if _schema(conn) == expected:  # nothing migrated or dropped it since
                            self._empty(conn, expected)
                            return url
                except DBAPIError:  # changed under us after all: migrate it as below
                    pass
            migrations.downgrade(url, "base")
            migrations.upgrade(url)
            with engine.connect() as conn:
                self._migrated[url] = _schema(conn)
            return url
        finally:
            engine.dispose()

    @staticmethod
    def _empty(conn: Connection, schema: _Schema) -> None:
        """Every row deleted (dependents first), every sequence back at its start: a fresh database."""
        ordered = [t.name for t in reversed(metadata.sorted_tables) if t.name in schema.tables]
        others = sorted(schema.tables - set(ordered) - {"alembic_version"})
        for name in [*others, *ordered]:
            conn.execute(text(f'DELETE FROM "{name}"'))
        for name in sorted(schema.sequences):
            conn.execute(text(f'ALTER SEQUENCE "{name}" RESTART'))
