"""Running the Alembic migrations of the read models from code and the CLI."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, make_url

from meltica.resources import resource_dir


def alembic_config(url: str) -> Config:
    """Alembic configuration for the database at `url` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("alembic", "alembic")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        write_ahead(url)


def write_ahead(url: str) -> None:
    """Put a SQLite file in WAL mode (it stays so): readers (the API) never wait for the projector's
    writes, and a commit syncs the log once instead of the rollback journal and the file."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
