"""Metrics of the embedded engine (`meltica up`) under the names the Kafka services use, its step and
commit latencies, and the projector's lag behind the log."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from sqlalchemy import create_engine

from meltica.domain.risk.events import TripKillSwitch
from meltica.domain.values import RiskScope
from meltica.log.base import Message
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.service_metrics import EngineMetrics, export_projector_metrics
from meltica.topics import ORDER_COMMANDS, RISK_COMMANDS
from meltica.topology import build_engine
from tests.e2e.stack import BTC, Stack
from tests.unit.test_service_metrics import points

ENGINE = {"service": "engine"}


def meter_and_reader() -> tuple[Any, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]).get_meter("test"), reader


def histograms(reader: InMemoryMetricReader) -> dict[str, HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        m.name: p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
        if isinstance(p, HistogramDataPoint)
    }


def test_the_engine_exports_the_processor_metrics_of_the_services_and_its_latencies() -> None:
    stack = Stack()
    assert stack.engine is not None
    meter, reader = meter_and_reader()
    EngineMetrics(stack.engine, meter)
    stack.setup()
    filled = stack.submit(qty="2", price="100.02")
    denied = stack.submit(price="150.00")  # far from the market: price band
    assert stack.order_events(filled.order_id)[-1] == "OrderFilled"
    assert stack.order_events(denied.order_id) == ["OrderDenied"]
    stack.command(TripKillSwitch(RiskScope.ACCOUNT, "ACC-1", "test", "ops", stack.tick()), RISK_COMMANDS)

    got = points(reader)
    stats = stack.engine.stats
    assert got["meltica_processor_records"] == [(ENGINE, stats.steps)]
    assert got["meltica_processor_outputs"] == [(ENGINE, stats.outputs)]
    assert got["meltica_processor_transactions"] == [(ENGINE, stats.commits)]
    assert got["meltica_processor_ready"] == [(ENGINE, 1)]
    assert got["meltica_order_fills"] == [(ENGINE, 1)]
    assert got["meltica_order_fill_notional"] == [({**ENGINE, "instrument": BTC.instrument_id}, 200.04)]
    by_status = {labels["status"]: n for labels, n in got["meltica_orders"]}
    assert by_status == {"ACCEPTED": 1, "SUBMITTED": 1, "NEW": 1, "FILLED": 1, "DENIED": 1}
    assert got["meltica_order_denials"] == [({**ENGINE, "reason": "price_band"}, 1)]
    assert got["meltica_kill_switches_tripped"] == [(ENGINE, 1)]
    assert got["meltica_order_ack_latency_seconds"] == [(ENGINE, 1)]
    latency = histograms(reader)
    assert latency["meltica_processor_step_latency_seconds"].count == stats.steps
    assert latency["meltica_processor_commit_latency_seconds"].count == stats.commits
    assert 0 < latency["meltica_processor_step_latency_seconds"].sum < 60 * stats.steps
    labels = {k for series in got.values() for attributes, _ in series for k in attributes}
    assert labels <= {"service", "type", "status", "reason", "instrument", "state"}  # no order ids


def test_a_replay_counts_nothing_and_a_failed_step_is_not_observed() -> None:
    stack = Stack()
    stack.setup()
    stack.submit(qty="2", price="100.02")
    assert stack.engine is not None
    engine = build_engine(stack.log, stack.codec, clock=stack.clock)  # a restart on the same log
    meter, reader = meter_and_reader()
    EngineMetrics(engine, meter)
    seen: list[int] = []
    engine.observers.append(lambda event, outputs: seen.append(len(outputs)))
    assert engine.recover() > 0
    got = points(reader)
    assert "meltica_events_emitted" not in got
    assert not seen
    assert got["meltica_processor_records"] == [(ENGINE, 0)]
    assert "meltica_processor_step_latency_seconds" not in histograms(reader)
    stack.log.append([Message(ORDER_COMMANDS, b"not a record", b"ACC-1")])
    assert engine.drain() == 1
    got = points(reader)
    assert got["meltica_processor_dead_letters"] == [(ENGINE, 1)]
    assert "meltica_events_emitted" not in got  # the dead-lettered step wrote nothing
    assert not seen


def projector_on(stack: Stack) -> Projector:
    db = create_engine("sqlite://")
    t.metadata.create_all(db)
    return Projector(stack.log, stack.codec, db)


def test_the_projector_lag_is_the_log_ahead_of_the_projected_positions() -> None:
    stack = Stack()
    projector = projector_on(stack)
    assert projector.lag() is None  # no position known before the first poll
    stack.setup()
    projector.catch_up()
    assert set(projector.lag() or {}) >= {"orders.events", "orders.commands", "portfolio.events"}
    assert sum((projector.lag() or {}).values()) == 0
    stack.submit(qty="2", price="100.02")
    behind = projector.lag() or {}
    order_events = sum(stack.log.end_offset("orders.events", p) for p in range(2))
    assert behind["orders.commands"] == 1
    assert 0 < behind["orders.events"] <= order_events
    meter, reader = meter_and_reader()
    export_projector_metrics(projector, meter)
    lag = {labels["topic"]: n for labels, n in points(reader)["meltica_projector_lag_records"]}
    assert lag == behind
    projector.catch_up()
    assert sum((projector.lag() or {}).values()) == 0


def test_a_projector_lag_that_cannot_be_read_is_left_out_of_the_scrape() -> None:
    def away() -> dict[str, int]:
        raise OSError("log away")

    meter, reader = meter_and_reader()
    export_projector_metrics(SimpleNamespace(projected=3, skipped=0, lag=away), meter)
    got = points(reader)
    assert got["meltica_projector_records"] == [({}, 3)]
    assert "meltica_projector_lag_records" not in got
