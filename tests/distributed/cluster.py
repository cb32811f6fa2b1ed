"""The distributed shape for tests: every service as its own `meltica run` process on real Kafka
(and Postgres for the projector), in a namespace of its own, with a reproducible workload."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

from meltica.domain.marketdata import QuoteTick
from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import OrderSide, OrderType, RiskScope
from meltica.events.codec import Codec
from meltica.events.registry import EmbeddedSchemaRegistry
from meltica.log.base import TopicPartition
from meltica.log.kafka import KafkaLog
from meltica.projections import tables
from meltica.runtime.publisher import Publisher
from meltica.topics import (
    ORDER_COMMANDS,
    ORDER_EVENTS,
    PORTFOLIO_COMMANDS,
    PORTFOLIO_EVENTS,
    QUOTES,
    RISK_COMMANDS,
    VENUE_REPORTS,
    VENUE_REQUESTS,
    journal_topic,
    topic_specs,
)
from meltica.topology import inputs_of
from tests.e2e.stack import BTC, T0
from tests.waiting import records_from, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(n: int) -> int:
    """The first of `n` consecutive free ports."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(30_000, 45_000)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


@dataclass
class Broker:
    """A broker of the test's own (scripts/kafka.sh on other ports, storage in a temp dir), for
    tests that stop and start it: the broker the other tests share is never touched."""

    run_dir: Path
    port: int = field(default_factory=lambda: _free_ports(3))
    acls: bool = False  # ACLs enforced (deny by default; the PLAINTEXT listener is a super user)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "MELTICA_KAFKA_PORT": str(self.port),
            "MELTICA_KAFKA_SASL_PORT": str(self.port + 2),
            "MELTICA_KAFKA_RUN": str(self.run_dir),
            "MELTICA_KAFKA_ACLS": "1" if self.acls else "",
        }
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "kafka.sh"), action],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self) -> None:
        done = self._script("start")
        assert done.returncode == 0, done.stderr[-3000:]

    def stop(self) -> None:
        self._script("stop")
        assert self._script("status").returncode != 0, "the broker still answers after stop"


class OwnPostgres:
    """A PostgreSQL server of the test's own (scripts/postgres.sh with another cluster name and
    port), for a test that stops and starts it: the server the other tests share is never touched."""

    def __init__(self) -> None:
        self.port = _free_ports(1)
        self.name = f"mt{uuid.uuid4().hex[:8]}"
        self.url = ""

    def _run(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MELTICA_PG_CLUSTER": self.name, "MELTICA_PG_PORT": str(self.port)}
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres.sh"), action],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def script(self, action: str) -> str:
        """`scripts/postgres.sh action` on this cluster; what it printed (the URL, for `start`)."""
        done = self._run(action)
        assert done.returncode == 0, f"postgres.sh {action}: {done.stderr[-3000:]}"
        return done.stdout.strip()

    def answers(self) -> bool:
        return self._run("status").returncode == 0


PROCESSORS = ("risk", "orders", "venue", "portfolio")
OUTPUTS = (ORDER_EVENTS, VENUE_REQUESTS, VENUE_REPORTS, PORTFOLIO_EVENTS)
ACCOUNTS = tuple(f"ACC-{i}" for i in range(8))
PARTITIONS = 4
LOOSE = RiskLimits(
    throttle_rate=Decimal(1_000_000),
    throttle_burst=1_000_000,
    max_order_notional=Decimal(10**12),
    max_position=Decimal(10**9),
    max_gross_exposure=Decimal(10**15),
    max_net_exposure=Decimal(10**15),
    max_open_orders=1_000_000,
    price_band=Decimal("0.9"),
    circuit_breaker_breaches=1_000_000,
)


@dataclass
class Cluster:
    bootstrap: str
    workdir: Path
    database_url: str | None = None
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    revived: list[str] = field(default_factory=list)  # every service `revive` restarted, in order
    specs: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    on_faust: tuple[str, ...] = ()
    processors: tuple[str, ...] = PROCESSORS  # ("pipeline",): the fused shape

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = KafkaLog(self.bootstrap, client_id="test-client", namespace=self.namespace)
        for spec in topic_specs(PARTITIONS):
            self.log.create_topic(spec)
        self.codec = Codec(registry=EmbeddedSchemaRegistry(self.log))
        self.publisher = Publisher(self.log, self.codec, id_seed="workload")  # the same ids every run

    # -- processes --------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
        env.update(
            MELTICA_KAFKA_BOOTSTRAP=self.bootstrap,
            MELTICA_NAMESPACE=self.namespace,
            MELTICA_PARTITIONS=str(PARTITIONS),
            MELTICA_DATA_DIR=str(self.workdir / "data"),
            MELTICA_SNAPSHOT_EVERY="150",  # often: rebuilds under chaos start from snapshots
            APP_DATADIR=str(self.workdir / "{conf.name}-data"),  # faust's, else in the current directory
            PYTHONUNBUFFERED="1",
        )
        if self.database_url:
            env["MELTICA_DATABASE_URL"] = self.database_url
        return env

    def start(self, service: str, name: str | None = None, *extra: str) -> str:
        name = name or service
        self.specs[name] = (service, extra)
        logfile = (self.workdir / f"{name}.log").open("ab")
        args = [sys.executable, "-m", "meltica", "run", service]
        if service in self.processors:
            args += ["--instance", f"{self.namespace}-{name}"]
        self.procs[name] = subprocess.Popen(
            [*args, *extra], env=self.env(), stdout=logfile, stderr=subprocess.STDOUT
        )
        return name

    def restart(self, name: str) -> str:
        service, extra = self.specs[name]
        return self.start(service, name, *extra)

    def start_all(self, *, projector: bool = False, faust: tuple[str, ...] = ()) -> None:
        """Every processor; those named in `faust` on the faust-streaming host."""
        self.on_faust = faust
        for service in self.processors:
            self.start(service, service, *(("--host", "faust") if service in faust else ()))
        if projector:
            self.start("projector")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # did not stop in time: kill it
            proc.kill()
            proc.wait()

    def revive(self) -> list[str]:
        """Restart every service that has exited, as a supervisor does (Compose's `restart:
        unless-stopped`; a service whose watchdog found it wedged exits for this); their names.
        Services stopped through `kill` are not restarted."""
        dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
        for name in dead:
            self.procs.pop(name)
            self.restart(name)
        self.revived += dead
        return dead

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.workdir.glob("*.log"))

    def close(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait()
        self.procs.clear()
        self.log.close()

    # -- workload -----------------------------------------------------------------------------
    def setup_market(self) -> None:
        """Instrument, funds and loose limits for every account, and one deep quote."""
        self.publisher.define([BTC])
        for acct in ACCOUNTS:
            self.publisher.publish(RISK_COMMANDS, SetRiskLimits(RiskScope.ACCOUNT, acct, LOOSE, "test", T0))
            for asset, amount in (("USDT", 10**9), ("BTC", 10**6)):
                self.publisher.publish(
                    PORTFOLIO_COMMANDS, AdjustBalance(acct, asset, Decimal(amount), "test", T0)
                )
        big = Decimal(10**6)
        self.publisher.publish(
            QUOTES, QuoteTick(BTC.instrument_id, Decimal("100.00"), big, Decimal("100.02"), big, T0)
        )

    def submissions(self, seed: int, n: int) -> list[SubmitOrder]:
        """Market orders (fill at once) and limit orders away from the quote (rest)."""
        rng = random.Random(seed)
        out = []
        for i in range(n):
            acct = rng.choice(ACCOUNTS)
            side = rng.choice((OrderSide.BUY, OrderSide.SELL))
            market = rng.random() < 0.5
            away = Decimal(rng.randint(5, 40))
            price = (
                None if market else (Decimal(100) - away if side is OrderSide.BUY else Decimal(100) + away)
            )
            spec = OrderSpec(
                client_order_id=f"S{seed}-{i}",
                account_id=acct,
                instrument_id=BTC.instrument_id,
                side=side,
                order_type=OrderType.MARKET if market else OrderType.LIMIT,
                quantity=Decimal(rng.randint(1, 20)) / 1000,
                price=price,
                order_id=f"S{seed}-{i}",
            )
            out.append(SubmitOrder(spec, T0 + (i + 1) * 1000))
        return out

    def follow_ups(self, seed: int, orders: list[SubmitOrder]) -> list[Any]:
        """Cancels and amends of the resting (limit) orders."""
        rng = random.Random(seed + 1)
        out: list[Any] = []
        for i, cmd in enumerate(o for o in orders if o.order.order_type is OrderType.LIMIT):
            o = cmd.order
            ts = T0 + 10**9 + i * 1000
            roll = rng.random()
            if roll < 0.4:
                out.append(CancelOrder(o.order_id, o.account_id, o.instrument_id, ts))
            elif roll < 0.7:
                assert o.price is not None
                step = Decimal("0.5") if o.side is OrderSide.BUY else Decimal("-0.5")
                out.append(AmendOrder(o.order_id, o.account_id, o.instrument_id, ts, price=o.price + step))
        return out

    def publish(self, topic: str, events: list[Any], *, chunk: int = 50, pause: float = 0.0) -> None:
        for i in range(0, len(events), chunk):
            self.publisher.publish_many(topic, events[i : i + chunk])
            if pause:
                time.sleep(pause)  # the workload's pace: commands flow while faults strike

    # -- observing ----------------------------------------------------------------------------
    def lag(self) -> int:
        """Records of keyed inputs the processors have not committed yet, over every group."""
        from meltica.runtime.partitions import keyed_and_broadcast

        total = 0
        for proc in self.processors:
            keyed, _ = keyed_and_broadcast(inputs_of(proc))
            for topic in keyed:
                for p in range(PARTITIONS):
                    group = f"meltica-faust-{proc}" if proc in self.on_faust else f"meltica-{proc}"
                    done = self.log.committed(group, TopicPartition(topic, p)) or 0
                    total += records_from(self.log, topic, p, done)  # (not markers, aborted records)
        return total

    def sizes(self) -> tuple[int, ...]:
        return tuple(
            self.log.end_offset(t, p)
            for t in (*OUTPUTS, *map(journal_topic, self.processors))
            for p in range(PARTITIONS)
        )

    def wait_quiet(self, *, quiet_s: float = 3.0, timeout_s: float = 180.0, supervise: bool = False) -> None:
        """Until no output grows for `quiet_s` and every group has caught up; with `supervise`,
        services that exit meanwhile are restarted (`revive`)."""
        deadline = time.monotonic() + timeout_s
        last, since = self.sizes(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if supervise and self.revive():
                since = time.monotonic()
            now = self.sizes()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s and self.lag() == 0:
                return
        raise AssertionError(f"the services did not settle within {timeout_s}s\n{self.logs()}")

    def applied(self, processor: str, partition: int) -> dict[TopicPartition, int]:
        """How far the journal of `processor`'s `partition` has applied each input."""
        ends: dict[TopicPartition, int] = {}
        offset = 0
        while batch := self.log.read(journal_topic(processor), partition, offset, 5000):
            offset = batch[-1].offset + 1
            for rec in batch:
                for seg in self.codec.decode_record(rec).record["segments"]:
                    tp = TopicPartition(seg["topic"], seg["partition"])
                    ends[tp] = max(ends.get(tp, 0), seg["end"])
        return ends

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until every processor partition has applied every broadcast record written so far."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # a faust agent applies the broadcast topics when its first keyed record comes
            waited = [p for p in self.processors if p not in self.on_faust]
            # and the keyed set-up (funds) too: a consumer takes topics in no fixed order, so an
            # order fetched before its account's funds after a restart would be denied
            if all(self._caught_up(p, q) for p in waited for q in range(PARTITIONS)) and self.lag() == 0:
                if self.on_faust:  # the set-up (funds, limits) must have gone through them too
                    self.wait_quiet(timeout_s=timeout_s)
                return
            dead = [n for n, pr in self.procs.items() if pr.poll() is not None]
            if dead:
                raise AssertionError(f"services exited: {dead}\n{self.logs()}")
            time.sleep(0.3)
        raise AssertionError(f"services not ready within {timeout_s}s\n{self.logs()}")

    def _caught_up(self, processor: str, partition: int) -> bool:
        from meltica.runtime.partitions import keyed_and_broadcast

        applied = self.applied(processor, partition)
        _, broadcast = keyed_and_broadcast(inputs_of(processor))
        for topic in broadcast:
            for p in range(PARTITIONS):
                end, done = self.log.end_offset(topic, p), applied.get(TopicPartition(topic, p), 0)
                if end > done and self.log.read(topic, p, done, 1):  # a record not applied yet
                    return False
        return True

    def outcome(self) -> Counter[str]:
        """Every output event, canonical, and the final balances.

        Left out: the times and input offsets a re-run changes, and the running balance in each
        BalanceChanged — risk and the order processor both write `orders.events`, so how
        reservations and fills interleave there (and so the balance after each) depends on
        timing; the deltas and the final balances do not.
        """
        seen: Counter[str] = Counter()
        final: dict[tuple[str, str], dict[str, Any]] = {}
        running = ("free", "locked", "total")
        for topic in OUTPUTS:
            for p in range(PARTITIONS):
                offset = 0
                while batch := self.log.read(topic, p, offset, 5000):
                    offset = batch[-1].offset + 1
                    for rec in batch:
                        name, fields = self.codec.decode_record(rec)
                        meta = dict(fields["meta"])
                        meta.pop("ts_init", None)
                        meta.pop("source", None)
                        if name.endswith("BalanceChanged"):
                            final[(fields["account_id"], fields["asset"])] = {k: fields[k] for k in running}
                            fields = {k: v for k, v in fields.items() if k not in running}
                        event = {"topic": topic, **fields, "meta": meta}
                        seen[json.dumps(event, sort_keys=True, default=str)] += 1
        for (account, asset), balance in sorted(final.items()):
            seen[json.dumps({"final_balance": [account, asset], **balance}, sort_keys=True, default=str)] += 1
        return seen


WORKLOAD_SEED = 11
ORDERS = 120


def uninterrupted(cluster: Cluster) -> Counter[str]:
    """The outcome of the workload with nothing going wrong (the reference a faulty run must equal)."""
    try:
        cluster.start_all()
        outcome = run_workload(cluster)
        cluster.stop_all()
        return outcome
    finally:
        cluster.close()


def run_workload(cluster: Cluster, chaos: Chaos | None = None) -> Counter[str]:
    """Set up, submit, settle, cancel/amend, settle; chaos (if any) strikes while commands flow."""
    cluster.setup_market()
    cluster.wait_ready()
    subs = cluster.submissions(WORKLOAD_SEED, ORDERS)
    for phase in (subs, cluster.follow_ups(WORKLOAD_SEED, subs)):
        if chaos is not None:
            chaos.begin()
        cluster.publish(ORDER_COMMANDS, phase, chunk=4, pause=0.15)
        if chaos is not None:
            chaos.end()
        cluster.wait_quiet()
    return cluster.outcome()


class Chaos:
    """SIGKILLs a random service every so often and restarts it after a random pause."""

    def __init__(self, cluster: Cluster, seed: int, services: tuple[str, ...] | None = None) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.services = cluster.processors if services is None else services
        self.kills = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(0.3, 1.5)):
            victim = self.rng.choice(self.services)
            if victim not in self.cluster.procs:
                continue
            self.cluster.kill(victim, signal.SIGKILL)
            self.kills += 1
            self._stop.wait(self.rng.uniform(0.0, 1.0))
            self.cluster.restart(victim)

    def end(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        for service in self.services:  # everyone is back before the run settles
            if service not in self.cluster.procs:
                self.cluster.restart(service)


def read_models(url: str) -> dict[str, list[tuple[object, ...]]]:
    """The orders, fills, positions and balances in the read models at `url`, in a fixed order."""
    engine = create_engine(url)
    with engine.connect() as conn:
        orders = conn.execute(
            select(
                tables.orders.c.order_id,
                tables.orders.c.status,
                tables.orders.c.filled_qty,
                tables.orders.c.quantity,
                tables.orders.c.price,
            ).order_by(tables.orders.c.order_id)
        ).all()
        fills = conn.execute(
            select(tables.fills.c.trade_id, tables.fills.c.quantity, tables.fills.c.price).order_by(
                tables.fills.c.trade_id
            )
        ).all()
        positions = conn.execute(
            select(
                tables.positions.c.account_id, tables.positions.c.instrument_id, tables.positions.c.quantity
            ).order_by(tables.positions.c.account_id, tables.positions.c.instrument_id)
        ).all()
        balances = conn.execute(
            select(tables.balances.c.account_id, tables.balances.c.asset, tables.balances.c.total).order_by(
                tables.balances.c.account_id, tables.balances.c.asset
            )
        ).all()
    engine.dispose()
    return {
        "orders": [tuple(r) for r in orders],
        "fills": [tuple(r) for r in fills],
        "positions": [tuple(r) for r in positions],
        "balances": [tuple(r) for r in balances],
    }


def baseline_fills(baseline: Counter[str]) -> int:
    return sum(1 for k in baseline if '"venue.reports"' in k and '"exec_type": "TRADE"' in k)


def assert_rides_out_a_broker_restart(cluster: Cluster, broker: Broker, baseline: Counter[str]) -> None:
    """The workload on `broker` (the cluster's), stopped and started halfway through the
    submissions: the services ride it out (one that gave up is restarted) and lose and double nothing."""
    cluster.start_all()
    cluster.setup_market()
    cluster.wait_ready()
    subs = cluster.submissions(WORKLOAD_SEED, ORDERS)
    cluster.publish(ORDER_COMMANDS, subs[: ORDERS // 2], chunk=4, pause=0.1)
    broker.stop()  # (asserts that it no longer answers: else nothing restarts)
    time.sleep(3)  # the outage itself
    broker.start()
    cluster.publish(ORDER_COMMANDS, subs[ORDERS // 2 :], chunk=4, pause=0.1)
    # a service that gave up while the broker was away (or whose watchdog found a call wedged
    # through the outage, up to a minute later) is restarted, as a supervisor would
    cluster.wait_quiet(timeout_s=240, supervise=True)
    cluster.publish(ORDER_COMMANDS, cluster.follow_ups(WORKLOAD_SEED, subs), chunk=4, pause=0.1)
    cluster.wait_quiet(supervise=True)
    revived = cluster.revived
    outcome = cluster.outcome()
    missing, extra = baseline - outcome, outcome - baseline
    assert not missing, f"{len(missing)} missing (revived: {revived})\n" + "\n".join(list(missing)[:3])
    assert not extra, f"{len(extra)} extra (revived: {revived})\n" + "\n".join(list(extra)[:3])


def assert_projects_through_a_postgres_restart(
    cluster: Cluster, postgres: OwnPostgres, baseline: Counter[str]
) -> None:
    """The workload with the projector on `postgres`, stopped and started halfway through the
    submissions: the processors lose and double nothing, and the projector catches up after."""
    database = postgres.url
    cluster.database_url = database
    cluster.start_all(projector=True)
    cluster.setup_market()
    cluster.wait_ready()
    subs = cluster.submissions(WORKLOAD_SEED, ORDERS)
    cluster.publish(ORDER_COMMANDS, subs[: ORDERS // 2], chunk=4, pause=0.1)
    postgres.script("stop")
    assert not postgres.answers(), "the server still answers after stop: nothing restarts"
    cluster.publish(ORDER_COMMANDS, subs[ORDERS // 2 :], chunk=4, pause=0.1)
    time.sleep(2)  # the outage itself
    postgres.script("start")
    cluster.wait_quiet()
    cluster.publish(ORDER_COMMANDS, cluster.follow_ups(WORKLOAD_SEED, subs), chunk=4, pause=0.1)
    cluster.wait_quiet()
    assert cluster.outcome() == baseline

    def projected() -> bool:
        models = read_models(database)
        return len(models["orders"]) == ORDERS and len(models["fills"]) == baseline_fills(baseline)

    wait_until(projected, 60, f"{ORDERS} orders and their fills in the read models", every=1)
    assert "retrying" in cluster.logs()  # the projector saw the database go and come back
