"""Operations as code: every alert has a runbook, every runbook command is a real `meltica` command,
Prometheus scrapes every service, and the alert rules and dashboards only name metrics the code
exports (a static check: names collected from the instrument definitions in src/)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meltica.runtime import service_metrics
from tests.conftest import IN_CI
from tests.unit.test_compose import MELTICA, parse

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RUNBOOKS = ROOT / "docs" / "runbooks"
DASHBOARDS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "json"
RULES: list[dict[str, Any]] = [
    r for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]
]
ALERTS = {r["alert"]: r for r in RULES if "alert" in r}


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    wanted = {
        "MelticaServiceDown",
        "MelticaConsumerLagGrowing",
        "MelticaProjectorBehind",
        "MelticaDeadLetters",
    }
    wanted |= {"MelticaKillSwitchTripped", "MelticaDenialSpike", "MelticaVenueDegraded", "MelticaVenueFailed"}
    wanted |= {"MelticaAckLatencyP99High"}
    assert wanted <= set(ALERTS)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_links_an_existing_runbook_that_names_it(name: str) -> None:
    rule = ALERTS[name]
    assert rule["labels"]["severity"] in ("warning", "critical")
    url = rule["annotations"]["runbook_url"]
    assert url.startswith("docs/runbooks/"), url
    page = ROOT / url
    assert page.is_file(), f"{name}: no runbook {url}"
    assert name in page.read_text(), f"{url} does not name {name}"


def test_runbooks_exist_for_every_situation_and_name_only_real_alerts() -> None:
    for page in ("kill-switch-tripped", "venue-degraded-failed", "consumer-lag", "dead-letters"):
        assert (RUNBOOKS / f"{page}.md").is_file(), page
    for page in ("projector-behind", "restore-from-snapshot", "broker-outage", "postgres-outage"):
        assert (RUNBOOKS / f"{page}.md").is_file(), page
    for page in RUNBOOKS.glob("*.md"):
        for named in re.findall(r"\bMeltica[A-Z]\w+", page.read_text()):
            assert named in ALERTS, f"{page.name} names {named}, which is not an alert"


def runbook_commands() -> list[tuple[str, list[str]]]:
    """Every `meltica ...` line of the runbooks' shell blocks, comments, pipes and `&& ...` dropped."""
    found = []
    for page in sorted(RUNBOOKS.glob("*.md")):
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.DOTALL):
            for line in block.splitlines():
                command = re.split(r"&&|\|", line.split("#")[0])[0].strip()
                if command.startswith("meltica ") and "..." not in command:
                    found.append((page.name, shlex.split(command)[1:]))
    return found


@pytest.mark.parametrize(("page", "args"), runbook_commands())
def test_runbook_commands_are_real_meltica_commands(page: str, args: list[str]) -> None:
    args = [a if a != "PATH" else "snapshot.bin" for a in args]
    assert parse(args) is not None, f"{page}: meltica {' '.join(args)}"


def test_prometheus_scrapes_every_long_running_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name, service in MELTICA.items():
        if service.get("restart") == "no":
            continue  # one-shot jobs (topics, seed, migrate)
        command = service["command"]
        port = command[command.index("--health-port") + 1] if "--health-port" in command else "8080"
        assert f"{name}:{port}" in targets, f"Prometheus does not scrape {name}"


# -- metric names ------------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "by", "on", "without", "ignoring", "group_left", "group_right", "bool"}
_SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def exported_metrics() -> set[str]:
    """Prometheus names of every instrument defined in src/ (OpenTelemetry's exporter adds the
    suffixes), plus the scrape's own `up`."""
    names = {"up"}
    pattern = re.compile(
        r"create_(observable_counter|counter|observable_gauge|gauge|histogram)\(\s*(f?)\"([^\"]+)\""
    )
    for source in (ROOT / "src").rglob("*.py"):
        for instrument, is_f, name in pattern.findall(source.read_text()):
            kind = {"observable_counter": "counter", "observable_gauge": "gauge"}.get(instrument, instrument)
            if is_f:  # the one templated family: the host's counters
                assert name == "meltica_processor_{stat}", f"{source}: unknown templated metric {name}"
                bases = [f"meltica_processor_{s}" for s in service_metrics._STAT_COUNTERS]
            else:
                bases = [name]
            names |= {b + suffix for b in bases for suffix in _SUFFIXES[kind]}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    expr = re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", expr)  # numbers, 1e-9 too
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    tokens = re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)", expr)
    return {name for name, call in tokens if not call and name not in _KEYWORDS}


def test_the_promql_name_parser() -> None:
    assert metric_names('sum by (le) (rate(x_bucket{le="1"}[5m])) > on() vector(0) and up == 0') == {
        "x_bucket",
        "up",
    }
    assert metric_names("a_total / clamp_min(b, 1e-9) > 0.2") == {"a_total", "b"}
    assert metric_names("histogram_quantile(0.99, sum by (service) (rate(a_seconds_bucket[1m])))") == {
        "a_seconds_bucket"
    }


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def test_alerts_and_dashboards_only_name_metrics_the_code_exports() -> None:
    exported = exported_metrics()
    assert "meltica_venue_state" in exported
    assert "meltica_order_ack_latency_seconds_bucket" in exported
    assert "meltica_processor_dead_letters_total" in exported
    for name in ("commit", "step"):  # the engine's and the Kafka hosts' latencies
        assert f"meltica_processor_{name}_latency_seconds_bucket" in exported
    assert {"meltica_projector_lag_records", "meltica_orders_total", "meltica_order_fills_total"} <= exported
    assert "meltica_order_fill_notional_total" in exported
    exprs = [r["expr"] for r in RULES] + dashboard_exprs()
    assert len(exprs) > len(RULES)  # the dashboards were read
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no metric names parsed"
    assert used - exported == set(), f"named but never exported: {sorted(used - exported)}"


def test_promtool_checks_the_rules_and_their_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("CI must check the alert rules: install promtool (apt-get install prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus; scripts/test.sh does)")
    for args in (["check", "config", "prometheus.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


_SCRAPE = """
import threading
from types import SimpleNamespace
from meltica import telemetry
from meltica.domain.risk.state import RiskState
from decimal import Decimal
from meltica.domain.orders.events import Fill, OrderAcknowledged, OrderDenied, OrderFilled, OrderSubmitted
from meltica.domain.values import LiquiditySide, OrderSide
from meltica.processors.risk import RiskProcessor
from meltica.runtime.kafka_host import HostStats
from meltica.runtime.partitions import PartitionState
from meltica.runtime.processor import Output
from meltica.runtime.step import Step
from meltica.events.codec import Codec
from meltica.runtime.service_metrics import ServiceMetrics, export_projector_metrics
risk = Step([RiskProcessor(RiskState())], {"risk": ()}, codec=Codec())
host = SimpleNamespace(stats=HostStats(), ready=threading.Event(), core=SimpleNamespace(observers=[]),
                       states={0: PartitionState(0, risk, {})}, timings=[])
ServiceMetrics("risk", host, lambda: {("orders.commands", 0): 3})
export_projector_metrics(SimpleNamespace(projected=1, skipped=0, lag=lambda: {"orders.events": 0}))
observe = host.core.observers[0]
host.timings[0]("commit", 0.002)
host.timings[0]("step", 0.0001)
one, hundred, zero = Decimal("1"), Decimal("100"), Decimal("0")
fill = Fill("T1", "V", OrderSide.BUY, one, hundred, zero, "USDT", LiquiditySide.TAKER, 4)
filled = OrderFilled("O", "C", "A", "I", 4, fill, one, zero, hundred)
observe(None, [Output("orders.events", "A", OrderSubmitted("O", "C", "A", "I", 1, "SIM"))])
observe(None, [Output("orders.events", "A", OrderDenied("O2", "C", "A", "I", 2, "kill_switch"))])
observe(None, [Output("orders.events", "A", OrderAcknowledged("O", "C", "A", "I", 3, "V"))])
observe(None, [Output("orders.events", "A", filled)])
print(telemetry.prometheus_text().decode())
"""


def test_the_prometheus_exporter_names_the_service_metrics_as_the_rules_expect() -> None:
    """The real exporter (in a fresh process) turns the service instruments into the names the
    alerts and dashboards use; the venue and API instruments are covered by the static check."""
    done = subprocess.run([sys.executable, "-c", _SCRAPE], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    scraped = {
        line.split("{")[0].split(" ")[0] for line in done.stdout.splitlines() if not line.startswith("#")
    }
    exprs = [r["expr"] for r in RULES] + dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    elsewhere = {"up", "meltica_venue_state", "meltica_venue_marketdata", "meltica_venue_gateway"}
    elsewhere.add("meltica_api_requests_total")
    assert used - elsewhere - scraped == set()


def test_compose_gives_prometheus_its_rules_and_grafana_its_dashboards() -> None:
    from tests.unit.test_compose import SERVICES

    mounts = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["prometheus"]["volumes"]}
    assert mounts["./deploy/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    grafana = {v.split(":")[0]: v.split(":")[1] for v in SERVICES["grafana"]["volumes"]}
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((DASHBOARDS.parent / "meltica.yml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/json"
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == [
        "overview.json",
        "pipeline.json",
        "risk.json",
        "venues.json",
    ]


def test_the_panels_runbooks_point_to_are_on_the_dashboard() -> None:
    titles = {
        p["title"] for path in DASHBOARDS.glob("*.json") for p in json.loads(path.read_text())["panels"]
    }
    named = set()
    for page in RUNBOOKS.glob("*.md"):
        for line in re.findall(r"\*\*Panels?:\*\*([^\n]*(?:\n[^\n*#][^\n]*)?)", page.read_text()):
            named |= set(re.findall(r"(?<!\*)\*([^*]+)\*(?!\*)", line))
    assert len(named) >= 8
    assert named <= titles, f"runbooks name missing panels: {sorted(named - titles)}"
