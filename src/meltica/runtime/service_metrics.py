"""Prometheus metrics of a processor host, read from its host and its outputs: each `meltica run`
processor service (`ServiceMetrics`) and the embedded engine of `meltica up` (`EngineMetrics`, with
`service="engine"`), under the same names.

Every series carries a bounded `service` label; nothing is labelled by order or account id.

- `meltica_processor_{records,outputs,dead_letters,transactions,rebalances,snapshots}_total`
- `meltica_processor_ready` (1 once it owns and has rebuilt its partitions), `..._loop_age_seconds`
- `meltica_consumer_lag_records{topic,partition}`: the group's committed offset behind the log end
  (measured every 5 s off the scrape: `PolledLag`)
- `meltica_processor_{commit,step}_latency_seconds`: a transaction's commit and one input's step
  (Kafka hosts, engine)
- `meltica_events_emitted_total{type}`, `meltica_order_denials_total{reason}` (live outputs only),
  `meltica_orders_total{status}` (order events by the status they move an order to),
  `meltica_order_fills_total`, `meltica_order_fill_notional_total{instrument}` (quantity x price)
- `meltica_order_ack_latency_seconds`: OrderSubmitted -> OrderAcknowledged (both written by the
  orders service, by the events' timestamps)
- `meltica_kill_switches_tripped`, `meltica_trading_halted_scopes`: the risk state now
- `meltica_projector_{records,skipped}_total`, `meltica_projector_lag_records{topic}` of the projector
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from meltica import telemetry
from meltica.config import Settings
from meltica.domain.orders import events as oe
from meltica.domain.orders.decider import STATUS_SET_BY
from meltica.domain.orders.events import OrderAcknowledged, OrderDenied, OrderSubmitted
from meltica.domain.orders.model import OrderStatus
from meltica.domain.risk.checks import DenyReason
from meltica.domain.values import TradingState
from meltica.runtime.engine import EngineStats
from meltica.runtime.partitions import PartitionedProcessor, PartitionState
from meltica.runtime.processor import Output, Processor

if TYPE_CHECKING:  # the Kafka host needs the kafka extra; `meltica up` does not
    from meltica.runtime.kafka_host import HostStats

_log = logging.getLogger("meltica.metrics")
ACK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
PENDING_ACKS_MAX = 100_000
_STAT_COUNTERS = ("records", "outputs", "dead_letters", "transactions", "rebalances", "snapshots")
_REASONS = frozenset(r.value for r in DenyReason)
S = OrderStatus
# The status each order event moves its order to (an ack: from SUBMITTED or TRIGGERED). Events whose
# status depends on the order (a replacement, a rejected cancel) are not counted.
STATUS_AFTER: dict[type, OrderStatus] = {**STATUS_SET_BY, OrderAcknowledged: S.NEW}


class Host(Protocol):
    stats: HostStats
    ready: threading.Event
    core: PartitionedProcessor
    states: dict[int, PartitionState]


Lag = Callable[[], Mapping[tuple[str, int], int]]


def reason_label(reason: str) -> str:
    """A denial reason as a bounded label: a `DenyReason`, else `other` (never free text)."""
    return reason if reason in _REASONS else "other"


Timed = Callable[[str, float], None]


class ProcessorMetrics(ABC):
    """The instruments of one processor host named `service` on `meter` (the process-wide one by
    default); subclasses say where the counts, readiness and risk state come from."""

    def __init__(self, service: str, lag: Lag | None = None, meter: Meter | None = None) -> None:
        self.service = service
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
            [lambda _: [Observation(int(self.is_ready()), svc)]],
            description="1 when the service owns its partitions and has rebuilt them",
        )
        meter.create_observable_gauge(
            "meltica_processor_loop_age_seconds",
            [lambda _: [Observation(time.monotonic() - self.last_loop(), svc)]],
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
        # Outputs are tallied in plain dicts on the processing path (an instrument's `add` costs
        # microseconds per output) and read by the scrape; notional stays an exact Decimal until then.
        self._tally_lock = threading.Lock()
        self._tallies: dict[str, dict[str, Any]] = {"type": {}, "reason": {}, "status": {}, "instrument": {}}
        self._fills = 0
        meter.create_observable_counter(
            "meltica_events_emitted", [self._tallied("type")], description="Events written, by type"
        )
        meter.create_observable_counter(
            "meltica_order_denials", [self._tallied("reason")], description="Orders denied, by reason"
        )
        meter.create_observable_counter(
            "meltica_orders",
            [self._tallied("status")],
            description="Order events, by the status they move their order to",
        )
        meter.create_observable_counter(
            "meltica_order_fill_notional",
            [self._tallied("instrument")],
            description="Filled quantity times price, in the instrument's quote currency, by instrument",
        )
        meter.create_observable_counter(
            "meltica_order_fills",
            [lambda _: [Observation(self._fills, svc)]],
            description="Fills (partial and full)",
        )
        self._ack = meter.create_histogram(
            "meltica_order_ack_latency_seconds",
            description="OrderSubmitted to OrderAcknowledged, by the events' timestamps",
            explicit_bucket_boundaries_advisory=ACK_BUCKETS_S,
        )
        self._latency = {
            "commit": meter.create_histogram(
                "meltica_processor_commit_latency_seconds",
                description="One transaction's commit: outputs, dead letters and input positions",
                explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
            ),
            "step": meter.create_histogram(
                "meltica_processor_step_latency_seconds",
                description="One input through the processors, its outputs encoded",
                explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
            ),
        }
        self._submitted: dict[str, int] = {}  # order id -> OrderSubmitted.ts, until its ack

    # -- where the numbers come from ------------------------------------------------------------------
    @abstractmethod
    def counts(self) -> Mapping[str, int]:
        """The host's counters, by the names of `_STAT_COUNTERS`."""

    @abstractmethod
    def is_ready(self) -> bool:
        """Whether the host has rebuilt its state and processes live input."""

    @abstractmethod
    def last_loop(self) -> float:
        """`time.monotonic()` when the processing loop last went round."""

    @abstractmethod
    def processors(self) -> list[Any]:
        """The processors hosted now (risk state is read from them)."""

    # -- live outputs and timings -----------------------------------------------------------------------
    def _stat(self, stat: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        return lambda _: [Observation(self.counts()[stat], {"service": self.service})]

    def timed(self, kind: str, seconds: float) -> None:
        """Record a `commit` or `step` taking `seconds` (the host calls this)."""
        self._latency[kind].record(seconds, {"service": self.service})

    def observe(self, _event: Any, outputs: list[Output]) -> None:
        """Count one live input's outputs (the host calls this; never on replay)."""
        by_type, by_status = self._tallies["type"], self._tallies["status"]
        with self._tally_lock:
            for out in outputs:
                value = out.event
                name = type(value).__name__
                by_type[name] = by_type.get(name, 0) + 1
                status = STATUS_AFTER.get(type(value))
                if status is not None:
                    by_status[status.value] = by_status.get(status.value, 0) + 1
                if isinstance(value, OrderDenied):
                    reasons, reason = self._tallies["reason"], reason_label(value.reason)
                    reasons[reason] = reasons.get(reason, 0) + 1
                elif isinstance(value, oe.OrderFilled | oe.OrderPartiallyFilled):
                    self._fills += 1
                    notional, instrument = self._tallies["instrument"], value.instrument_id
                    notional[instrument] = (
                        notional.get(instrument, 0) + value.fill.last_qty * value.fill.last_px
                    )
        for out in outputs:
            value = out.event
            if isinstance(value, OrderSubmitted):
                self._submitted[value.order_id] = value.ts
                if len(self._submitted) > PENDING_ACKS_MAX:  # acks that never came: forget the oldest
                    del self._submitted[next(iter(self._submitted))]
            elif isinstance(value, OrderAcknowledged):
                submitted = self._submitted.pop(value.order_id, None)
                if submitted is not None:
                    self._ack.record(max(0, value.ts - submitted) / 1e9, {"service": self.service})

    def _tallied(self, label: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            with self._tally_lock:
                counts = sorted(self._tallies[label].items())
            # the notional is an exact Decimal until here: the exporter takes floats
            values = [(key, float(n) if isinstance(n, Decimal) else n) for key, n in counts]
            return [Observation(n, {"service": self.service, label: key}) for key, n in values]

        return observe

    # -- observable callbacks -----------------------------------------------------------------------------
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
        states = [getattr(p, "state", None) for p in self.processors()]
        return [s for s in states if hasattr(s, "kill_switches")]

    def _kill_switches(self, _: CallbackOptions) -> Iterable[Observation]:
        states = self._risk_states()
        if not states:
            return []
        tripped = {scope for state in states for scope in list(state.kill_switches)}
        return [Observation(len(tripped), {"service": self.service})]

    def _halted(self, _: CallbackOptions) -> Iterable[Observation]:
        states = self._risk_states()
        if not states:
            return []
        scopes: dict[str, set[Any]] = {s.value: set() for s in TradingState if s is not TradingState.ACTIVE}
        for state in states:
            for scope, trading in list(state.trading.items()):
                if trading.value in scopes:
                    scopes[trading.value].add(scope)
        return [Observation(len(v), {"service": self.service, "state": k}) for k, v in scopes.items()]


class ServiceMetrics(ProcessorMetrics):
    """The metrics of a `meltica run` processor service, read from its `host`."""

    def __init__(self, service: str, host: Host, lag: Lag | None = None, meter: Meter | None = None) -> None:
        self.host = host
        super().__init__(service, lag, meter)
        host.core.observers.append(self.observe)
        timings: list[Timed] | None = getattr(host, "timings", None)
        if timings is not None:
            timings.append(self.timed)

    def counts(self) -> Mapping[str, int]:
        return {stat: getattr(self.host.stats, stat) for stat in _STAT_COUNTERS}

    def is_ready(self) -> bool:
        return self.host.ready.is_set()

    def last_loop(self) -> float:
        return self.host.stats.last_loop

    def processors(self) -> list[Any]:
        return [s.processor for s in list(self.host.states.values())]


class Engined(Protocol):
    """The embedded engine as its metrics read it."""

    stats: EngineStats
    observers: list[Callable[[Any, list[Output]], None]]
    timings: list[Timed]

    @property
    def recovered(self) -> bool: ...
    @property
    def processors(self) -> list[Processor]: ...


class EngineMetrics(ProcessorMetrics):
    """The metrics of the embedded engine (`meltica up`), as `service="engine"`: inputs are its steps,
    transactions its commits; it has no rebalances, snapshots are made when it stops."""

    def __init__(self, engine: Engined, meter: Meter | None = None, service: str = "engine") -> None:
        self.engine = engine
        super().__init__(service, None, meter)
        engine.observers.append(self.observe)
        engine.timings.append(self.timed)

    def counts(self) -> Mapping[str, int]:
        s = self.engine.stats
        return {
            "records": s.steps,
            "outputs": s.outputs,
            "dead_letters": s.dead_letters,
            "transactions": s.commits,
            "rebalances": 0,
            "snapshots": 0,
        }

    def is_ready(self) -> bool:
        return self.engine.recovered

    def last_loop(self) -> float:
        return self.engine.stats.last_loop

    def processors(self) -> list[Any]:
        return list(self.engine.processors)


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


class LagUnavailableError(RuntimeError):
    """No lag to report: not measured yet, or the last measure failed (a stale lag is not shown)."""


class PolledLag:
    """`source` measured every `every` seconds on a thread of its own; a call answers at once with
    the newest measure, so a metrics scrape never waits on the broker (a lag takes a round trip
    per partition, which a loaded broker can stretch past a scrape's timeout)."""

    def __init__(self, source: Lag, every: float = 5.0) -> None:
        self._source, self.every = source, every
        self._state: tuple[Mapping[tuple[str, int], int] | None, str] = (None, "not measured yet")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meltica-consumer-lag", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self._state = (self._source(), "")
            except Exception as err:  # the broker away: no lag until it answers again
                self._state = (None, f"{type(err).__name__}: {err}")
            if self._stop.wait(self.every):
                return

    def __call__(self) -> Mapping[tuple[str, int], int]:
        latest, why = self._state
        if latest is None:
            raise LagUnavailableError(why)
        return latest

    def close(self) -> None:
        self._stop.set()


class Projecting(Protocol):
    projected: int
    skipped: int

    def lag(self) -> Mapping[str, int] | None: ...


def export_projector_metrics(projector: Projecting, meter: Meter | None = None) -> None:
    """`meltica_projector_records_total`, `meltica_projector_skipped_total` and
    `meltica_projector_lag_records{topic}` of the projector (`meltica run projector`, `meltica up`)."""
    meter = meter or telemetry.meter()

    def lag(_: CallbackOptions) -> Iterable[Observation]:
        try:
            behind = projector.lag()
        except Exception as err:  # a scrape must not fail because the log is away
            _log.warning("projector lag unavailable: %s", err)
            return []
        return [Observation(n, {"topic": topic}) for topic, n in sorted((behind or {}).items())]

    meter.create_observable_gauge(
        "meltica_projector_lag_records",
        [lag],
        description="Records in the log not projected into the read models yet, by topic",
    )
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
        lag = PolledLag(
            kafka_lag(settings.kafka_bootstrap, host.wire_group, topics, client_security(settings))
        )
    return ServiceMetrics(service, host, lag, meter)
