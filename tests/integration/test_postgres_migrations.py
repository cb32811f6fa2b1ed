"""Read-model migrations run on PostgreSQL and SQLite alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from meltica.projections.migrations import downgrade, tables, upgrade


@pytest.mark.postgres
def test_migrations_upgrade_and_downgrade_on_postgres(database_url: str) -> None:
    upgrade(database_url)
    assert "projection_offsets" in tables(database_url)
    downgrade(database_url)
    assert "projection_offsets" not in tables(database_url)
    upgrade(database_url)
    assert "projection_offsets" in tables(database_url)


def test_migrations_upgrade_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    upgrade(url)
    assert "projection_offsets" in tables(url)
    downgrade(url)
    assert "projection_offsets" not in tables(url)
