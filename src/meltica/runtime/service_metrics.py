"""Prometheus metrics of one `meltica run` processor service, read from its host and its outputs.

Every series carries a bounded `service` label; nothing is labelled by order or account id.

- `meltica_processor_{records,outputs,dead_letters,transactions,rebalances,snapshots}_total`
- `meltica_processor_ready` (1 once it owns and has rebuilt its partitions), `..._loop_age_seconds`
- `meltica_consumer_lag_records{topic,partition}`: the group's committed offset behind the log end
- `meltica_events_emitted_total{type}`, `meltica_order_denials_total{reason}` (live outputs only)
- `meltica_order_ack_latency_seconds`: OrderSubmitted -> OrderAcknowledged (both written by the
  orders service, by the events' timestamps)
- `meltica_kill_switches_tripped`, `meltica_trading_halted_scopes`: the risk state now
- `meltica_projector_{records,skipped}_total` of the projector service
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from meltica import telemetry
from meltica.config import Settings
from meltica.domain.orders.events import OrderAcknowledged, OrderDenied, OrderSubmitted
from meltica.domain.risk.checks import DenyReason
from meltica.domain.values import TradingState
from meltica.runtime.kafka_host import HostStats
from meltica.runtime.partitions import PartitionedProcessor, PartitionState
from meltica.runtime.processor import Output

_log = logging.getLogger("meltica.metrics")
ACK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PENDING_ACKS_MAX = 100_000
_STAT_COUNTERS = ("records", "outputs", "dead_letters", "transactions", "rebalances", "snapshots")
_REASONS = frozenset(r.value for r in DenyReason)


class Host(Protocol):
    stats: HostStats
    ready: threading.Event
    core: PartitionedProcessor
    states: dict[int, PartitionState]


Lag = Callable[[], Mapping[tuple[str, int], int]]


def reason_label(reason: str) -> str:
    """A denial reason as a bounded label: a `DenyReason`, else `other` (never free text)."""
    return reason if reason in _REASONS else "other"


class ServiceMetrics:
    """Registers the instruments of `service` on `meter` (the process-wide one by default)."""

    def __init__(self, service: str, host: Host, lag: Lag | None = None, meter: Meter | None = None) -> None:
        self.service = service
        self.host = host
        self._lag = lag
        meter = meter or telemetry.meter()
        svc = {"service": service}
        for stat in _STAT_COUNTERS:
            meter.create_observable_counter(
                f"meltica_processor_{stat}",
                [self._stat(stat)],
                description=f"{stat.replace('_', ' ').capitalize()} of the service's processor host",
            )
        meter.create_observable_gauge(
            "meltica_processor_ready",
            [lambda _: [Observation(int(host.ready.is_set()), svc)]],
            description="1 when the service owns its partitions and has rebuilt them",
        )
        meter.create_observable_gauge(
            "meltica_processor_loop_age_seconds",
            [lambda _: [Observation(time.monotonic() - host.stats.last_loop, svc)]],
            description="Seconds since the processing loop last went round",
        )
        meter.create_observable_gauge(
            "meltica_consumer_lag_records",
            [self._lags],
            description="Records in each input partition after the group's committed offset",
        )
        meter.create_observable_gauge(
            "meltica_kill_switches_tripped",
            [self._kill_switches],
            description="Kill switches tripped now (risk service; global, portfolio, account, ...)",
        )
        meter.create_observable_gauge(
            "meltica_trading_halted_scopes",
            [self._halted],
            description="Scopes whose trading state is not active, by state (risk service)",
        )
        self._emitted = meter.create_counter("meltica_events_emitted", description="Events written, by type")
        self._denials = meter.create_counter("meltica_order_denials", description="Orders denied, by reason")
        self._ack = meter.create_histogram(
            "meltica_order_ack_latency_seconds",
            description="OrderSubmitted to OrderAcknowledged, by the events' timestamps",
            explicit_bucket_boundaries_advisory=ACK_BUCKETS_S,
        )
        self._submitted: dict[str, int] = {}  # order id -> OrderSubmitted.ts, until its ack
        host.core.observers.append(self.observe)

    def _stat(self, stat: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        return lambda _: [Observation(getattr(self.host.stats, stat), {"service": self.service})]

    def observe(self, _event: Any, outputs: list[Output]) -> None:
        """Count one live input's outputs (the partitioned core calls this; never on replay)."""
        for out in outputs:
            value = out.event
            self._emitted.add(1, {"service": self.service, "type": type(value).__name__})
            if isinstance(value, OrderDenied):
                self._denials.add(1, {"service": self.service, "reason": reason_label(value.reason)})
            elif isinstance(value, OrderSubmitted):
                self._submitted[value.order_id] = value.ts
                if len(self._submitted) > PENDING_ACKS_MAX:  # acks that never came: forget the oldest
                    del self._submitted[next(iter(self._submitted))]
            elif isinstance(value, OrderAcknowledged):
                submitted = self._submitted.pop(value.order_id, None)
                if submitted is not None:
                    self._ack.record(max(0, value.ts - submitted) / 1e9, {"service": self.service})

    def _lags(self, _: CallbackOptions) -> Iterable[Observation]:
        if self._lag is None:
            return []
        try:
            lags = self._lag()
        except Exception as err:  # a scrape must not fail because the broker is away
            _log.warning("consumer lag unavailable: %s", err)
            return []
        return [
            Observation(n, {"service": self.service, "topic": topic, "partition": str(partition)})
            for (topic, partition), n in sorted(lags.items())
        ]

    def _risk_states(self) -> list[Any]:
        states = [getattr(s.processor, "state", None) for s in list(self.host.states.values())]
        return [s for s in states if hasattr(s, "kill_switches")]

    def _kill_switches(self, _: CallbackOptions) -> Iterable[Observation]:
        states = self._risk_states()
        if not states:
            return []
        tripped = {scope for state in states for scope in state.kill_switches}
        return [Observation(len(tripped), {"service": self.service})]

    def _halted(self, _: CallbackOptions) -> Iterable[Observation]:
        states = self._risk_states()
        if not states:
            return []
        scopes: dict[str, set[Any]] = {s.value: set() for s in TradingState if s is not TradingState.ACTIVE}
        for state in states:
            for scope, trading in state.trading.items():
                if trading.value in scopes:
                    scopes[trading.value].add(scope)
        return [Observation(len(v), {"service": self.service, "state": k}) for k, v in scopes.items()]


def kafka_lag(
    bootstrap: str, group: str, topics: Sequence[str], security: Mapping[str, str] | None = None
) -> Lag:
    """Lag of consumer group `group` on `topics` (wire names): log end minus committed offset."""
    from confluent_kafka import Consumer, TopicPartition

    lock = threading.Lock()
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, **(security or {})}
    )

    def lag() -> dict[tuple[str, int], int]:
        with lock:
            metadata = consumer.list_topics(timeout=2.0)
            tps = [TopicPartition(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)]
            committed = consumer.committed(tps, timeout=2.0)
            out = {}
            for tp in committed:
                _low, high = consumer.get_watermark_offsets(tp, timeout=2.0, cached=False)
                position = tp.offset if tp.offset >= 0 else _low
                out[(tp.topic, tp.partition)] = max(0, high - position)
            return out

    return lag


class Projecting(Protocol):
    projected: int
    skipped: int


def export_projector_metrics(projector: Projecting, meter: Meter | None = None) -> None:
    """`meltica_projector_records_total` and `meltica_projector_skipped_total` of `meltica run projector`."""
    meter = meter or telemetry.meter()
    meter.create_observable_counter(
        "meltica_projector_records",
        [lambda _: [Observation(projector.projected)]],
        description="Records projected into the read models",
    )
    meter.create_observable_counter(
        "meltica_projector_skipped",
        [lambda _: [Observation(projector.skipped)]],
        description="Records not projected because they do not decode",
    )


class KafkaHosted(Host, Protocol):
    @property
    def wire_group(self) -> str: ...
    @property
    def keyed(self) -> Sequence[str]: ...


def watch_processor(
    service: str, host: KafkaHosted, settings: Settings, meter: Meter | None = None
) -> ServiceMetrics:
    """The metrics of a `meltica run` processor on Kafka: its host's, and its group's lag on its
    keyed inputs (namespaced as on the cluster)."""
    from meltica.log.kafka_security import client_security

    lag = None
    if settings.kafka_bootstrap and host.keyed:
        prefix = f"{settings.namespace}." if settings.namespace else ""
        topics = [prefix + t for t in host.keyed]
        lag = kafka_lag(settings.kafka_bootstrap, host.wire_group, topics, client_security(settings))
    return ServiceMetrics(service, host, lag, meter)
