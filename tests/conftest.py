"""Shared fixtures: real Kafka and Postgres when configured, testcontainers when Docker is
reachable, a clear skip otherwise — and a failure instead of a skip under CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from tests.read_models import FreshReadModels

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property tests run 500 examples each in CI, 100 on a developer's machine.
settings.register_profile("ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def _docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def _unavailable(what: str, env: str) -> None:
    reason = f"{what} not available: set {env} (scripts/test.sh starts one) or run a Docker engine"
    if IN_CI:
        pytest.fail(f"CI must run the {what} tests, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker."""
    configured = os.environ.get("MELTICA_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_reachable():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    _unavailable("Kafka", "MELTICA_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL database."""
    configured = os.environ.get("MELTICA_DATABASE_URL")
    if configured:
        yield configured
        return
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as pg:
            yield pg.get_connection_url()
        return
    _unavailable("PostgreSQL", "MELTICA_DATABASE_URL")


@pytest.fixture(scope="session")
def fresh_read_models(tmp_path_factory: pytest.TempPathFactory) -> FreshReadModels:
    """Empty, fully migrated read-model databases without migrating from scratch for every test."""
    from tests.read_models import FreshReadModels

    return FreshReadModels(tmp_path_factory.mktemp("read-models"))


@pytest.fixture(autouse=True)
def _no_configuration_file() -> Iterator[None]:
    """`meltica --config` sets MELTICA_CONFIG_PATH for its process; CLI tests run in this one."""
    before = os.environ.pop("MELTICA_CONFIG_PATH", None)
    yield
    os.environ.pop("MELTICA_CONFIG_PATH", None)
    if before is not None:
        os.environ["MELTICA_CONFIG_PATH"] = before
