"""Metrics of a `meltica run` processor service: host counters, bounded labels, outputs counted only
when live (a restart's replay adds nothing), ack latency, kill switches from the risk state."""

from __future__ import annotations

import random
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from meltica.clock import SimulatedClock
from meltica.domain.orders.events import OrderAcknowledged, OrderDenied, OrderSubmitted
from meltica.domain.risk.state import RiskState
from meltica.domain.values import RiskScope, TradingState
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.processors.risk import RiskProcessor
from meltica.runtime.kafka_host import HostStats
from meltica.runtime.partitions import PartitionState
from meltica.runtime.processor import Output
from meltica.runtime.publisher import Publisher
from meltica.runtime.service_metrics import (
    LagUnavailableError,
    PolledLag,
    ServiceMetrics,
    export_projector_metrics,
    reason_label,
)
from meltica.runtime.step import Step
from meltica.topics import topic_specs
from tests.e2e.stack import BTC
from tests.unit.test_partition_snapshots import Host, P, service, traffic
from tests.waiting import wait_until


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    value = p.count if hasattr(p, "bucket_counts") else p.value
                    out.setdefault(metric.name, []).append((dict(p.attributes or {}), value))
    return out


def metrics_of(host: Any, service: str = "risk") -> tuple[ServiceMetrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    lag = lambda: {("ns.orders.commands", 0): 7, ("ns.orders.commands", 1): 0}  # noqa: E731
    return ServiceMetrics(service, host, lag, meter), reader


def fake_host(states: dict[int, PartitionState] | None = None) -> Any:
    return SimpleNamespace(
        stats=HostStats(records=10, dead_letters=2),
        ready=threading.Event(),
        core=SimpleNamespace(observers=[]),
        states=states or {},
    )


def test_host_counters_readiness_and_lag_carry_only_bounded_labels() -> None:
    host = fake_host()
    host.ready.set()
    _, reader = metrics_of(host)
    got = points(reader)
    assert got["meltica_processor_records"] == [({"service": "risk"}, 10)]
    assert got["meltica_processor_dead_letters"] == [({"service": "risk"}, 2)]
    assert got["meltica_processor_ready"] == [({"service": "risk"}, 1)]
    assert ({"service": "risk", "topic": "ns.orders.commands", "partition": "0"}, 7) in got[
        "meltica_consumer_lag_records"
    ]
    assert "meltica_kill_switches_tripped" not in got  # not a risk service: no state to report


def test_a_scrape_never_waits_for_the_lag_and_never_shows_a_stale_one() -> None:
    answer = threading.Event()
    calls: list[str] = []
    outcome: list[Any] = [{("t", 0): 3}]

    def source() -> Any:
        calls.append("measure")
        answer.wait(60)  # a broker that takes its time
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]

    lag = PolledLag(source, every=0.01)
    try:
        wait_until(lambda: calls, 10, "the first measure begun")
        with pytest.raises(LagUnavailableError, match="not measured yet"):
            lag()  # at once, while the broker has not answered
        reader = InMemoryMetricReader()
        ServiceMetrics("risk", fake_host(), lag, MeterProvider(metric_readers=[reader]).get_meter("t"))
        assert "meltica_consumer_lag_records" not in points(reader)  # no series, and no wait
        answer.set()
        wait_until(lambda: points(reader).get("meltica_consumer_lag_records"), 10, "the lag measured")
        assert points(reader)["meltica_consumer_lag_records"] == [
            ({"service": "risk", "topic": "t", "partition": "0"}, 3)
        ]
        outcome[0] = ConnectionError("broker away")
        wait_until(lambda: "meltica_consumer_lag_records" not in points(reader), 10, "the stale lag dropped")
        with pytest.raises(LagUnavailableError, match="ConnectionError: broker away"):
            lag()
        outcome[0] = {("t", 0): 0}

        def measured() -> Any:
            try:
                return lag()
            except LagUnavailableError:
                return None

        assert wait_until(measured, 10, "the lag back") == {("t", 0): 0}
    finally:
        lag.close()
        answer.set()


def test_outputs_are_counted_by_type_and_denials_by_reason_code() -> None:
    host = fake_host()
    metrics, reader = metrics_of(host)
    [observe] = host.core.observers
    denied = OrderDenied("O1", "C1", "ACC", "BTC", 5, "kill_switch", "tripped")
    odd = OrderDenied("O2", "C2", "ACC", "BTC", 5, "a reason with O2 in it", "")
    observe(object(), [Output("orders.events", "ACC", denied), Output("orders.events", "ACC", odd)])
    submitted = OrderSubmitted("O3", "C3", "ACC", "BTC", 1_000_000_000, "SIM")
    acked = OrderAcknowledged("O3", "C3", "ACC", "BTC", 1_250_000_000, "V1")
    observe(object(), [Output("orders.events", "ACC", submitted)])  # accepted -> submitted
    observe(object(), [Output("orders.events", "ACC", acked)])  # the venue's report -> acked
    observe(object(), [Output("orders.events", "ACC", acked)])  # a second ack: no second latency
    got = points(reader)
    assert ({"service": "risk", "type": "OrderDenied"}, 2) in got["meltica_events_emitted"]
    assert sorted(a["reason"] for a, _ in got["meltica_order_denials"]) == ["kill_switch", "other"]
    [(labels, count)] = got["meltica_order_ack_latency_seconds"]
    assert (labels, count) == ({"service": "risk"}, 1)
    [histogram] = [
        m
        for m in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
        if m.name == "meltica_order_ack_latency_seconds"
    ]
    assert histogram.data.data_points[0].sum == 0.25  # seconds
    assert reason_label("trading_halted") == "trading_halted"
    assert metrics.service == "risk"


def test_kill_switches_and_halted_scopes_come_from_the_risk_state() -> None:
    state = RiskState()
    state.kill_switches[(RiskScope.GLOBAL, "*")] = "ops"
    state.trading[(RiskScope.ACCOUNT, "ACC-1")] = TradingState.HALTED
    other = RiskState()
    other.kill_switches[(RiskScope.GLOBAL, "*")] = "ops"  # a broadcast scope, seen by both partitions
    states = {
        p: PartitionState(p, Step([RiskProcessor(s)], {"risk": ()}, codec=Codec()), {})
        for p, s in enumerate([state, other])
    }
    _, reader = metrics_of(fake_host(states))
    got = points(reader)
    assert got["meltica_kill_switches_tripped"] == [({"service": "risk"}, 1)]
    assert ({"service": "risk", "state": "HALTED"}, 1) in got["meltica_trading_halted_scopes"]
    assert ({"service": "risk", "state": "REDUCING"}, 0) in got["meltica_trading_halted_scopes"]


def test_the_partitioned_core_reports_live_outputs_and_never_a_replay() -> None:
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(4):
        log.create_topic(spec)
    publisher = Publisher(log, codec, SimulatedClock(0))
    publisher.define([BTC])
    host = Host(log, codec)
    seen: list[int] = []
    host.core.observers.append(lambda event, outputs: seen.append(len(outputs)))
    traffic(publisher, random.Random(1), 60, 0)
    host.poll()
    assert seen
    assert sum(seen) > 0
    replay = service(log, codec)  # a restart: the same inputs again, rebuilt from the journal
    replay_seen: list[int] = []
    replay.observers.append(lambda event, outputs: replay_seen.append(len(outputs)))
    replay.restore(P)
    assert replay.replayed > 0
    assert not replay_seen


def test_the_projector_exports_what_it_projected() -> None:
    reader = InMemoryMetricReader()
    projector = SimpleNamespace(projected=12, skipped=1)
    export_projector_metrics(projector, MeterProvider(metric_readers=[reader]).get_meter("test"))
    got = points(reader)
    assert got["meltica_projector_records"] == [({}, 12)]
    assert got["meltica_projector_skipped"] == [({}, 1)]
