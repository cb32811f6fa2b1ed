"""docker-compose.yml: the services the distributed shape needs, with health checks and
dependencies, and every Meltica command a real `meltica` command (no Docker engine here)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from meltica.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
MELTICA = {name: s for name, s in SERVICES.items() if s.get("image") == "meltica:latest"}


def test_infrastructure_services_are_there() -> None:
    for name in ("kafka", "schema-registry", "postgres", "otel-collector", "prometheus", "grafana"):
        assert name in SERVICES, name
    for name in ("kafka", "schema-registry", "postgres"):
        assert "healthcheck" in SERVICES[name], name
    kafka = SERVICES["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1


def test_every_meltica_service_is_built_from_the_one_dockerfile() -> None:
    expected = {
        "pipeline",
        "risk",
        "orders",
        "venue",
        "portfolio",
        "strategies",
        "bars",
        "venues",
        "projector",
    }
    expected |= {"api"}
    expected |= {"topics", "migrate"}
    assert expected <= set(MELTICA)
    for name, service in MELTICA.items():
        assert service["build"] == ".", name
    assert (ROOT / "Dockerfile").read_text().count("FROM ") == 1
    assert 'ENTRYPOINT ["meltica"]' in (ROOT / "Dockerfile").read_text()


def test_long_running_services_have_health_checks_and_wait_for_their_dependencies() -> None:
    for name in (
        "pipeline",
        "risk",
        "orders",
        "venue",
        "portfolio",
        "strategies",
        "bars",
        "projector",
        "api",
    ):
        service = MELTICA[name]
        assert "healthcheck" in service, name
        deps = service["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy", name
        assert deps["topics"]["condition"] == "service_completed_successfully", name
    for name in ("projector", "api"):
        assert MELTICA[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_depends_on_names_real_services() -> None:
    for name, service in SERVICES.items():
        deps = service.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"


@pytest.mark.parametrize("name", sorted(MELTICA))
def test_service_command_is_a_real_meltica_command(name: str) -> None:
    args = MELTICA[name]["command"]
    args = shlex.split(args) if isinstance(args, str) else list(args)
    assert parse(args) is not None, name


def parse(args: list[str]) -> dict[str, Any]:
    """Parse `meltica ARGS` down to the leaf command, strictly, without running it."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("meltica", list(args))
    while hasattr(command, "resolve_command"):  # a group: descend into the named command
        sub_name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(sub_name or "", rest, parent=ctx)
    return dict(ctx.params)


@pytest.mark.parametrize(
    "args",
    [["run", "riskk"], ["run", "risk", "--bogus"], ["feed", "synthetic", "--tick-ms", "x"], ["nope"]],
)
def test_the_command_check_refuses_what_meltica_refuses(args: list[str]) -> None:
    with pytest.raises(Exception) as refused:  # noqa: PT011 - typer vendors its own click
        parse(args)
    assert "UsageError" in {c.__name__ for c in type(refused.value).__mro__}


def test_health_ports_match_what_the_checks_and_prometheus_probe() -> None:
    scrape = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    for name in ("pipeline", "risk", "orders", "venue", "router", "portfolio", "strategies", "projector"):
        command = MELTICA[name]["command"]
        assert command[command.index("--health-port") + 1] == "9000"
        assert f"{name}:9000" in scrape
        assert "9000/readyz" in " ".join(MELTICA[name]["healthcheck"]["test"])


def test_the_api_configuration_file_is_valid() -> None:
    from meltica.config import load_settings

    [mount] = MELTICA["api"]["volumes"]
    settings = load_settings(ROOT / mount.split(":")[0])
    assert [v.name for v in settings.venues] == ["sim"]


def test_the_fused_pipeline_runs_by_default_and_the_split_services_only_in_their_profile() -> None:
    assert "profiles" not in MELTICA["pipeline"]
    for name in ("risk", "orders", "venue", "router", "portfolio", "strategies"):
        assert MELTICA[name]["profiles"] == ["split"], name
