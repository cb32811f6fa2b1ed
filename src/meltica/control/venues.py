"""Market-data connections (the venue registry, `meltica venues`, topics `venues.*`) at run time:
named connections, each an adapter in its own thread. Order execution is the topology's `venue`
processor (`processors/execution.py`), which this module has nothing to do with.

The registry is event-sourced: `ControlVenue` commands in `venues.commands` say what should
exist and run; on start the manager reads them all to rebuild that wish and starts what should
run, then follows new commands. Every change of a connection's state is a `VenueStateChanged`
in `venues.events` (the read model and `/v1/venues` show it), with the reason and the
normalizer's counters; counters are also reported every `report_every` seconds while they move.

The log going away (a broker restart) ends no connection for good and never the manager: a
connection whose writes failed is `FAILED` with the reason and started again by its
`RetryPolicy` (1 s, doubling to at most 30 s, each delay shortened by up to half at random, for
as long as it is wanted; a connection that goes live again starts over at 1 s), and the manager
retries reading commands with the same policy. A failure of the adapter itself (a missing file,
a corrupt row) stays `FAILED` until an operator starts the connection again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import Observation

from meltica import telemetry
from meltica.clock import Clock, LiveClock
from meltica.domain.control import ControlVenue, VenueAction, VenueState, VenueStateChanged
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.base import EventLog, Message, TopicPartition, records_after
from meltica.marketdata import adapters
from meltica.marketdata.adapters import Adapter
from meltica.marketdata.formats import TOPIC_OF
from meltica.marketdata.normalize import Counters, Normalizer
from meltica.retry import RetryPolicy
from meltica.runtime.publisher import Publisher
from meltica.topics import MARKET_DATA, VENUE_COMMANDS, VENUE_EVENTS
from meltica.venues import live
from meltica.venues.gateway import Gateway
from meltica.venues.port import VenueRejectedError

log = logging.getLogger("meltica.venues")
STATES = tuple(VenueState)
SEED_PER_PARTITION = 10_000  # market data remembered per partition at start (duplicate detection)


def _check(adapter: str, params: dict[str, str]) -> None:
    """Refuse an unknown adapter or bad parameters, the gateway's included (a ValueError)."""
    live.check(adapter, params)


class LogUnavailableError(MelticaError):
    """Writing to the log failed: the connection is retried by the policy."""


@dataclass
class Connection:
    """One named connection: its declaration, whether it should run, and how it is doing."""

    name: str
    adapter: str
    params: dict[str, str]
    wanted: bool = False
    state: VenueState = VenueState.STOPPED
    reason: str = "added"
    counters: Counters = field(default_factory=Counters)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    reported: tuple[int, ...] = ()
    attempts: int = 0  # retries since the log last failed it (0: it has not)
    retry_at: float | None = None  # when it is started again (monotonic), after the log failed it
    gateway: Gateway | None = None  # executing connections: the gateway of the current run
    gateway_thread: threading.Thread | None = None
    gateway_stop: threading.Event = field(default_factory=threading.Event)  # outlives market-data restarts


class VenueManager:
    """Runs the connections the venue commands ask for, publishing what they receive."""

    def __init__(
        self,
        log_: EventLog,
        codec: Codec,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        report_every: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.log = log_
        self.codec = codec
        self.publisher = publisher
        self.clock = clock or LiveClock()
        self.report_every = report_every
        self.retry = retry or RetryPolicy()
        self.recovered = threading.Event()  # the registry is rebuilt and its connections started
        self.beat = time.monotonic()  # the manager loop's last turn (liveness)
        self.connections: dict[str, Connection] = {}
        self.normalizers: dict[str, Normalizer] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._nothing_below: dict[TopicPartition, int] = {}
        self._lock = threading.RLock()

    # -- commands ---------------------------------------------------------------------------------
    def _commands(self) -> list[ControlVenue]:
        if not self._positions:
            self._positions = {
                TopicPartition(VENUE_COMMANDS, p): 0 for p in range(self.log.partitions(VENUE_COMMANDS))
            }
        records = records_after(self.log, self._positions, self._nothing_below, 10_000)
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            self._positions[tp] = max(self._positions[tp], rec.offset + 1)
        out = []
        for rec in records:
            try:
                name, fields = self.codec.decode_record(rec)
                out.append(from_record(name, fields))
            except (MelticaError, KeyError, TypeError, ValueError) as err:
                log.warning("skipping undecodable venue command at offset %d: %s", rec.offset, err)
        return [c for c in out if isinstance(c, ControlVenue)]

    def recover(self) -> None:
        """Rebuild the registry from every command so far, then start what should run — except
        replays that had reached the end of their data. The venues' duplicate detection is seeded
        with the latest market data in the log, so what a restarted feed sends again is dropped."""
        for cmd in self._commands():
            self._declare(cmd)
        self._seed()
        done = self._finished()
        for conn in self.connections.values():
            if conn.wanted and conn.name not in done:
                self._start(conn)
            elif conn.name in done:
                conn.reason = "end of data (before the restart)"

    def _tail(self, topic: str, per_partition: int) -> list[Any]:
        """The last records of `topic`, decoded, in log order."""
        records = []
        for p in range(self.log.partitions(topic)):
            end = self.log.end_offset(topic, p)
            records += self.log.read(topic, p, max(0, end - per_partition), per_partition)
        events = []
        for rec in sorted(records, key=lambda r: (r.seq, r.partition, r.offset)):
            try:
                events.append(from_record(*self.codec.decode_record(rec)))
            except (MelticaError, KeyError, TypeError, ValueError):
                continue  # dead-lettered elsewhere; nothing to remember
        return events

    def _seed(self) -> None:
        for topic in MARKET_DATA:
            for event in self._tail(topic, SEED_PER_PARTITION):
                venue = event.instrument_id.rpartition(".")[2]
                self.normalizers.setdefault(venue, Normalizer(venue)).remember(event)

    def _finished(self) -> set[str]:
        """Venues whose latest state is the end of their data."""
        last: dict[str, VenueStateChanged] = {}
        for event in self._tail(VENUE_EVENTS, 1000):
            if isinstance(event, VenueStateChanged):
                last[event.venue] = event
        return {
            name
            for name, e in last.items()
            if e.state is VenueState.STOPPED and e.reason.startswith("end of data")
        }

    def poll(self) -> int:
        """Apply new commands; restart connections due for a retry; report moving counters.
        Returns the number of commands applied."""
        self._retry_due()
        cmds = self._commands()
        for cmd in cmds:
            self.apply(cmd)
        self._report()
        return len(cmds)

    def run(self, stop: threading.Event, interval: float = 0.1) -> None:
        """Recover, then poll until `stop`; while the log is away both are retried by the policy."""
        attempt = 0
        while not stop.is_set():
            self.beat = time.monotonic()
            try:
                if not self.recovered.is_set():
                    self.recover()
                    self.recovered.set()
                self.poll()
                attempt = 0
                stop.wait(interval)
            except Exception as err:  # the log is away (any client error): never give up
                attempt += 1
                delay = self.retry.delay(attempt)
                log.warning("venues: %s: %s; retrying in %.1f s", type(err).__name__, err, delay)
                stop.wait(delay)
        self.shutdown()

    def _retry_due(self) -> None:
        """Start again the connections the log failed, once their delay has passed."""
        now = time.monotonic()
        for conn in list(self.connections.values()):
            due = conn.retry_at is not None and now >= conn.retry_at
            if due and conn.wanted and conn.thread is None and conn.state is VenueState.FAILED:
                conn.retry_at = None
                self._start(conn, f"retry {conn.attempts} after the log failed ({conn.adapter})")

    def shutdown(self) -> None:
        """Stop every connection (their state stays wanted, so the next start resumes them)."""
        with self._lock:
            running = [c for c in self.connections.values() if c.thread or c.gateway_thread]
            for conn in running:
                conn.stop.set()
                conn.gateway_stop.set()
        for conn in running:
            for thread in (conn.thread, conn.gateway_thread):
                if thread is not None:
                    thread.join(timeout=10)
            conn.gateway_thread = None

    def _declare(self, cmd: ControlVenue) -> str | None:
        """Record what `cmd` asks for; a refusal is returned as its reason."""
        conn = self.connections.get(cmd.venue)
        if cmd.action is VenueAction.ADD:
            if conn is not None and conn.state is not VenueState.REMOVED:
                return "a venue with this name exists"
            try:
                _check(cmd.adapter, cmd.params)
            except (ValueError, OSError) as err:
                return str(err)
            with self._lock:  # metrics read the registry from another thread
                self.connections[cmd.venue] = Connection(cmd.venue, cmd.adapter, dict(cmd.params))
            return None
        if conn is None or conn.state is VenueState.REMOVED:
            return "no such venue"
        if cmd.action is VenueAction.UPDATE:
            params = {**conn.params, **cmd.params}
            try:
                _check(conn.adapter, params)
            except (ValueError, OSError) as err:
                return str(err)
            conn.params = params
        elif cmd.action is VenueAction.START:
            conn.wanted = True
        elif cmd.action is VenueAction.STOP:
            conn.wanted = False
        else:
            conn.wanted = False
            conn.state = VenueState.REMOVED
        return None

    def apply(self, cmd: ControlVenue) -> None:
        """Apply one command now: declare it, then start, stop or restart the connection."""
        # Only the manager thread applies commands; workers take the lock to report states, so
        # joining a worker here (stop) must happen without holding it.
        before = self.connections.get(cmd.venue)
        was_running = before is not None and before.thread is not None
        refused = self._declare(cmd)
        conn = self.connections.get(cmd.venue)
        if refused is not None:
            if conn is None or (cmd.action is VenueAction.ADD and before is None):
                ghost = Connection(cmd.venue, cmd.adapter, dict(cmd.params), state=VenueState.FAILED)
                self._publish(ghost, VenueState.FAILED, f"{cmd.action.value.lower()} refused: {refused}")
            else:
                self._publish(conn, conn.state, f"{cmd.action.value.lower()} refused: {refused}")
            return
        assert conn is not None  # nosec B101 # typing; declared above
        if cmd.action is VenueAction.ADD:
            self._set(conn, VenueState.STOPPED, f"added ({conn.adapter})")
        elif cmd.action is VenueAction.START:
            if was_running:
                self._publish(conn, conn.state, "start refused: already running")
            else:
                self._start(conn)
        elif cmd.action is VenueAction.UPDATE:
            if was_running:
                self._stop(conn, "restarting with new parameters")
                self._start(conn)
            else:
                self._publish(conn, conn.state, "parameters updated")
        elif cmd.action is VenueAction.STOP:
            self._stop(conn, "stopped by operator")
        else:
            self._stop(conn, "removed", final=VenueState.REMOVED)

    # -- connections ------------------------------------------------------------------------------
    def _start(self, conn: Connection, reason: str | None = None) -> None:
        conn.wanted = True
        conn.retry_at = None
        conn.stop = threading.Event()
        conn.counters = Counters()
        conn.thread = threading.Thread(target=self._work, args=(conn, conn.stop), name=f"venue-{conn.name}")
        self._set(conn, VenueState.CONNECTING, reason or f"connecting ({conn.adapter})")
        conn.thread.start()
        if live.execution_venue(conn.adapter, conn.params) is not None and conn.gateway_thread is None:
            conn.gateway_stop = threading.Event()
            conn.gateway_thread = threading.Thread(
                target=self._execute, args=(conn, conn.gateway_stop), name=f"gateway-{conn.name}"
            )
            conn.gateway_thread.start()

    def _stop(self, conn: Connection, reason: str, final: VenueState = VenueState.STOPPED) -> None:
        conn.stop.set()
        conn.gateway_stop.set()
        thread, conn.thread = conn.thread, None
        gateway, conn.gateway_thread = conn.gateway_thread, None
        for t in (thread, gateway):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=10)
        self._set(conn, final, reason)

    def _work(self, conn: Connection, stop: threading.Event) -> None:
        adapter: Adapter | None = None
        try:
            adapter = adapters.make(conn.adapter, live.market_params(conn.params))
            adapter.connect()
            normalizer = self.normalizers.setdefault(adapter.venue, Normalizer(adapter.venue))
            self._set(conn, VenueState.LIVE, f"connected to {adapter.venue}", unless=stop)
            while not stop.is_set():
                items = adapter.poll()
                if items is None:
                    with self._lock:
                        conn.thread = None
                        self._set(
                            conn, VenueState.STOPPED, f"end of data after {conn.counters.received} records"
                        )
                    return
                batch = [ev for item in items for ev in normalizer.accept(item, conn.counters)]
                self._write(batch)
                if batch and conn.attempts:
                    conn.attempts = 0  # written again: the next outage starts from the first delay
                if normalizer.needs_resync:
                    self._resync(conn, adapter, normalizer, stop)
                if not items:
                    stop.wait(0.005)
        except LogUnavailableError as err:  # an outage: retried by the policy
            with self._lock:
                if not stop.is_set():
                    conn.thread = None
                    conn.attempts += 1
                    delay = self.retry.delay(conn.attempts)
                    conn.retry_at = time.monotonic() + delay
                    self._set(conn, VenueState.FAILED, f"{err}; retrying in {delay:.1f} s")
        except Exception as err:  # any adapter failure: the connection fails, with the reason
            with self._lock:
                if not stop.is_set():
                    conn.thread = None
                    self._set(conn, VenueState.FAILED, f"{type(err).__name__}: {err}")
        finally:
            if adapter is not None:
                adapter.close()

    def _execute(self, conn: Connection, stop: threading.Event) -> None:
        """The connection's gateway: orders of its account to the venue and the venue's answers
        back, restarted with the retry policy when it fails (a refusal of the credentials ends it)."""
        attempt = 0
        params = conn.params
        while not stop.is_set():
            try:
                gateway = Gateway(
                    conn.name,
                    live.make_execution(conn.adapter, params),
                    self.log,
                    self.codec,
                    account=params["account"],
                    external_orders=params.get("external_orders", "ignore"),
                    max_request_age_s=float(params.get("max_request_age_s", "30")),
                    clock=self.clock,
                )
                conn.gateway = gateway
                gateway.run(stop)
                return
            except VenueRejectedError as err:  # the venue refuses these credentials: retrying will not help
                self._publish(conn, conn.state, f"execution stopped: {err}")
                return
            except Exception as err:  # the venue or the log is away: try again later
                attempt += 1
                delay = self.retry.delay(attempt)
                self._publish(
                    conn, conn.state, f"execution: {type(err).__name__}: {err}; retrying in {delay:.1f} s"
                )
                stop.wait(delay)

    def _resync(
        self, conn: Connection, adapter: Adapter, normalizer: Normalizer, stop: threading.Event
    ) -> None:
        for iid in sorted(normalizer.needs_resync):
            self._set(
                conn,
                VenueState.DEGRADED,
                f"book sequence gap on {iid}: resyncing from a snapshot",
                unless=stop,
            )
            snapshot = adapter.snapshot(iid)
            if snapshot is None:
                continue
            self._write(normalizer.accept(snapshot, conn.counters))
            if iid not in normalizer.needs_resync:
                self._set(
                    conn, VenueState.LIVE, f"resynced {iid} at sequence {snapshot.sequence}", unless=stop
                )

    def _write(self, events: list[Any]) -> None:
        if events:
            messages: list[Message] = [self.publisher.message(TOPIC_OF[type(e)], e) for e in events]
            try:
                self.log.append(messages)
            except Exception as err:  # whatever the log's client raises: the log failed
                raise LogUnavailableError(f"log unavailable: {type(err).__name__}: {err}") from err

    # -- state ------------------------------------------------------------------------------------
    def _set(
        self, conn: Connection, state: VenueState, reason: str, unless: threading.Event | None = None
    ) -> None:
        with self._lock:
            if unless is not None and unless.is_set():
                return  # stopped meanwhile: the stop reports the state
            conn.state, conn.reason = state, reason
            self._publish(conn, state, reason)

    def _publish(self, conn: Connection, state: VenueState, reason: str) -> None:
        c = conn.counters
        conn.reported = (c.received, c.published, c.duplicates, c.gaps, c.out_of_order, c.resyncs)
        event = VenueStateChanged(
            conn.name, conn.adapter, dict(conn.params), state, reason, *conn.reported, self.clock.now_ns()
        )
        log.info("venue %s: %s (%s)", conn.name, state.value, reason)
        try:
            self.publisher.publish(VENUE_EVENTS, event)
        except Exception as err:  # the log is away: the state is reported when it next changes
            log.warning(
                "venue %s: state %s not published: %s: %s", conn.name, state.value, type(err).__name__, err
            )

    def _report(self) -> None:
        now = time.monotonic()
        if now - getattr(self, "_last_report", 0.0) < self.report_every:
            return
        self._last_report = now
        with self._lock:
            for conn in self.connections.values():
                c = conn.counters
                current = (c.received, c.published, c.duplicates, c.gaps, c.out_of_order, c.resyncs)
                if current != conn.reported and conn.state is not VenueState.REMOVED:
                    self._publish(conn, conn.state, conn.reason)

    def states(self) -> dict[str, VenueState]:
        """Each connection's current state (for metrics)."""
        with self._lock:
            return {name: c.state for name, c in self.connections.items()}

    def observations(self) -> list[Observation]:
        """One per venue and state: 1 for the state it is in, 0 for the others."""
        return [
            Observation(int(state is current), {"venue": name, "state": state.value.lower()})
            for name, current in self.states().items()
            for state in STATES
            if state is not VenueState.REMOVED
        ]

    def counters(self) -> list[Observation]:
        with self._lock:
            return [
                Observation(getattr(c.counters, kind), {"venue": name, "kind": kind})
                for name, c in self.connections.items()
                for kind in ("received", "published", "duplicates", "gaps", "out_of_order", "resyncs")
            ]

    def gateway_counters(self) -> list[Observation]:
        """Each executing connection's gateway counters and the venue's request weight in use."""
        with self._lock:
            gateways = [(name, c.gateway) for name, c in self.connections.items() if c.gateway is not None]
        out = []
        for name, gateway in gateways:
            counters = {**vars(gateway.stats), "weight_used": gateway.adapter.weight_used}
            counters.pop("last_reconcile_ns")
            out += [Observation(v, {"venue": name, "kind": k}) for k, v in counters.items()]
        return out

    def export_metrics(self) -> None:
        """`meltica_venue_state{venue,state}` and `meltica_venue_marketdata{venue,kind}` gauges."""
        meter = telemetry.meter()
        meter.create_observable_gauge(
            "meltica_venue_state",
            [lambda _: self.observations()],
            description="1 for each venue's current state (stopped, connecting, live, degraded, failed)",
        )
        meter.create_observable_gauge(
            "meltica_venue_marketdata",
            [lambda _: self.counters()],
            description="Market data of each venue since it connected: received, published, duplicates, ...",
        )
        meter.create_observable_gauge(
            "meltica_venue_gateway",
            [lambda _: self.gateway_counters()],
            description="A live venue's gateway: requests, reports, duplicate and reconciled fills, "
            "throttled, reconnects, the venue's request weight in use (weight_used)",
        )
