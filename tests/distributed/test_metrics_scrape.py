"""Scrape every processor service of the distributed shape, on the real broker, after orders went
through: every metric the alert rules and dashboards name from the processors is exported.
(`meltica_venue_*`, `meltica_api_requests_total` and `meltica_projector_records_total` come
from the venues, API and projector processes; tests/unit/test_operations.py covers them statically.)"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from meltica.domain.risk.events import TripKillSwitch
from meltica.domain.values import RiskScope
from meltica.topics import ORDER_COMMANDS, RISK_COMMANDS
from tests.distributed.cluster import PROCESSORS, Cluster
from tests.e2e.stack import T0
from tests.unit.test_operations import RULES, dashboard_exprs, metric_names

pytestmark = pytest.mark.distributed
ELSEWHERE = {"up", "meltica_api_requests_total", "meltica_projector_records_total"}
ELSEWHERE |= {"meltica_venue_state", "meltica_venue_marketdata", "meltica_venue_gateway"}  # venues service
ELSEWHERE |= {"meltica_projector_lag_records"}  # the projector service
ELSEWHERE |= {"meltica_processor_step_latency_seconds_bucket"}  # the embedded engine (meltica up)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def test_every_processor_metric_of_the_rules_and_dashboards_is_scraped(cluster: Cluster) -> None:
    ports = {service: free_port() for service in PROCESSORS}
    for service, port in ports.items():
        cluster.start(service, service, "--health-port", str(port))
    cluster.setup_market()
    cluster.wait_ready()
    cluster.publish(ORDER_COMMANDS, cluster.submissions(7, 20))
    cluster.publish(RISK_COMMANDS, [TripKillSwitch(RiskScope.ACCOUNT, "ACC-1", "test", "ops", T0 + 10**9)])

    used = set().union(*(metric_names(e) for e in [r["expr"] for r in RULES] + dashboard_exprs()))
    wanted = used - ELSEWHERE
    deadline = time.monotonic() + 120
    while True:
        scraped = [scrape(port) for port in ports.values()]
        names = set().union(*scraped)
        acked = sum(s.get("meltica_order_ack_latency_seconds_count", 0) for s in scraped)
        tripped = max(s.get("meltica_kill_switches_tripped", 0) for s in scraped)
        if (wanted <= names and acked > 0 and tripped > 0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # polling the scrape: the condition is the metrics themselves
    assert wanted - names == set(), f"no process exports {sorted(wanted - names)}\n{cluster.logs()}"
    assert acked > 0
    assert tripped == 1
    risk = scrape(ports["risk"])
    assert risk["meltica_processor_ready"] == 1
    assert risk["meltica_events_emitted_total"] > 0
