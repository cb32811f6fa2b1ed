"""The distributed shape as a user meets it, under faults: every service its own `meltica run`
process (the README's bring-up: `meltica cluster seed`, `deploy/meltica.yaml`, `--instance`
names) on a broker of the test's own, orders through the REST API service, then each service
SIGKILLed in turn, the broker stopped and started (the only help: restarting what exited), and
the projector SIGKILLed. Afterwards every acknowledged order is in the log once, no market order
is left in a state that should have ended, positions equal the signed fills, and the read models
equal a fresh projection of the log. The recovery times are printed and kept in the test's
report (`recovery.json` in its temporary directory)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.values import RiskScope
from meltica.projections import tables
from meltica.topics import ORDER_COMMANDS, PORTFOLIO_COMMANDS, RISK_COMMANDS, VENUE_REPORTS
from tests.distributed.cluster import LOOSE, PARTITIONS, Broker, Cluster, _free_ports
from tests.distributed.test_services import (  # noqa: F401  (fresh_database is a fixture)
    _reference_models,
    fresh_database,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "meltica.yaml"
FIRST = ("risk", "orders", "venue", "portfolio", "bars", "projector", "api")
LATER = ("strategies", "venues")  # as the README: once the others are ready
SERVICES = (*FIRST, *LATER)
INSTANCED = ("risk", "orders", "venue", "portfolio", "strategies", "bars")
ACCOUNTS = ("LOAD-1", "LOAD-2", "LOAD-3")
TERMINAL = {"FILLED", "DENIED", "REJECTED", "CANCELED", "EXPIRED"}
BTC = "BTCUSDT.SIM"


class UserCluster(Cluster):
    """The harness's cluster with the user's configuration file, an API port and health ports."""

    api_port: int = 0
    health: dict[str, int]

    def env(self) -> dict[str, str]:
        return {**super().env(), "MELTICA_API_PORT": str(self.api_port), "MELTICA_CONFIG_PATH": str(CONFIG)}

    def start_service(self, service: str) -> None:
        extra: list[str] = []
        if service in INSTANCED and service not in ("risk", "orders", "venue", "portfolio"):
            extra += ["--instance", f"{self.namespace}-{service}"]  # (the harness names the others)
        if service != "api":  # a fresh port each start: a test beside this one may have taken the last one
            self.health[service] = _free_ports(1)
            extra += ["--health-port", str(self.health[service])]
        if service == "strategies":
            extra.append("--demo")
        self.start(service, service, *extra)

    def restart(self, name: str) -> str:
        """As `start_service`, with a fresh health port: the one a killed service held may have
        been taken since by a test beside this one (`Address already in use`)."""
        self.start_service(name)
        return name

    def port_of(self, service: str) -> int:
        return self.api_port if service == "api" else self.health[service]

    def ready(self, service: str) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port_of(service)}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def meltica(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "meltica", *args],
            env=self.env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr


def _until(condition: Callable[[], bool], timeout: float, what: str, cluster: Cluster | None = None) -> float:
    """Wait for `condition`; the seconds it took."""
    began = time.monotonic()
    wait_until(condition, timeout, what, every=0.2, detail=cluster.logs if cluster else None)
    return time.monotonic() - began


class Load:
    """Market orders through the REST API, ~8 a second, from a thread; what was acknowledged."""

    def __init__(self, url: str, key: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=5)
        self.acked: dict[str, str] = {}  # order id -> client order id
        self.refused: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(0.12):
            self._n += 1
            body = {
                "account_id": ACCOUNTS[self._n % len(ACCOUNTS)],
                "instrument_id": BTC,
                "side": "BUY" if self._n % 2 else "SELL",
                "type": "MARKET",
                "quantity": "0.001",
                "client_order_id": f"load-{self._n}",
            }
            try:
                response = self.client.post("/v1/orders", json=body)
            except httpx.HTTPError as err:
                self.refused[type(err).__name__] += 1
                continue
            if response.status_code in (200, 201, 202):
                self.acked[response.json()["order_id"]] = body["client_order_id"]
            else:
                self.refused[str(response.status_code)] += 1


def _assigned_after(logfile: Path, since: float) -> float | None:
    """When (epoch seconds) the service's log first says it was assigned partitions after `since`."""
    import datetime as dt

    for line in logfile.read_text(errors="replace").splitlines():
        if "assigned partitions" not in line:
            continue
        stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if stamp >= since:
            return stamp
    return None


def _fills_after(cluster: Cluster, offsets: dict[int, int]) -> bool:
    """Whether venue.reports has a trade past `offsets`."""
    for p, start in offsets.items():
        for rec in cluster.log.read(VENUE_REPORTS, p, start, 10_000):
            if cluster.codec.decode_record(rec)[1].get("exec_type") == "TRADE":
                return True
    return False


def _report_ends(cluster: Cluster) -> dict[int, int]:
    return {p: cluster.log.end_offset(VENUE_REPORTS, p) for p in range(PARTITIONS)}


def _read(url: str) -> dict[str, list[Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            orders = conn.execute(select(tables.orders)).mappings().all()
            fills = conn.execute(select(tables.fills)).mappings().all()
            positions = conn.execute(select(tables.positions)).mappings().all()
    finally:
        engine.dispose()
    return {"orders": list(orders), "fills": list(fills), "positions": list(positions)}


def test_every_service_rides_out_kills_and_a_broker_restart(
    broker: Broker,
    fresh_database: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    cluster = UserCluster(broker.bootstrap, tmp_path / "cluster", database_url=fresh_database)
    cluster.health = {s: _free_ports(1) for s in SERVICES if s != "api"}
    cluster.api_port = _free_ports(1)
    times: dict[str, Any] = {"takeover_s": {}}
    load: Load | None = None
    try:
        # -- the README's bring-up ------------------------------------------------------------
        cluster.meltica("db", "upgrade")
        assert "seeded: instruments BTCUSDT.SIM" in cluster.meltica("cluster", "seed")
        for account in ACCOUNTS:  # an operator's set-up of the accounts the load trades on
            cluster.publisher.publish(
                RISK_COMMANDS, SetRiskLimits(RiskScope.ACCOUNT, account, LOOSE, "test", time.time_ns())
            )
            for asset, amount in (("USDT", 10**7), ("BTC", 100)):
                cluster.publisher.publish(
                    PORTFOLIO_COMMANDS, AdjustBalance(account, asset, Decimal(amount), "test", time.time_ns())
                )
        for service in FIRST:
            cluster.start_service(service)
        _until(lambda: all(cluster.ready(s) for s in FIRST), 180, "the services ready", cluster)
        for service in LATER:
            cluster.start_service(service)
        _until(lambda: all(cluster.ready(s) for s in SERVICES), 120, "strategies and venues ready", cluster)
        created = cluster.meltica("keys", "create", "--name", "load", "--scopes", "read,trade,admin")
        key = next(word for word in created.split() if word.startswith("mk_"))
        load = Load(f"http://127.0.0.1:{cluster.api_port}", key)
        ends = _report_ends(cluster)
        load.start()
        times["first_fill_s"] = _until(lambda: _fills_after(cluster, ends), 60, "a first fill", cluster)

        # -- SIGKILL each service in turn; the restarted one takes over ---------------------
        times["assigned_s"] = {}
        for service in SERVICES:
            killed, wall = time.monotonic(), time.time()
            cluster.kill(service, signal.SIGKILL)
            cluster.restart(service)
            _until(partial(cluster.ready, service), 120, f"{service} ready after SIGKILL", cluster)
            times["takeover_s"][service] = round(time.monotonic() - killed, 1)
            if service in INSTANCED:  # its partitions back: the restarted member's assignment
                assigned = _assigned_after(cluster.workdir / f"{service}.log", wall)
                times["assigned_s"][service] = None if assigned is None else round(assigned - wall, 1)
            ends = _report_ends(cluster)
            _until(partial(_fills_after, cluster, ends), 60, f"a fill after {service} came back", cluster)

        # -- the broker stops and starts; only what exited is restarted --------------------
        broker.stop()
        time.sleep(5)  # the outage itself: the services meet a broker that is away
        broker.start()
        back = time.monotonic()
        revived: list[str] = []
        ends = _report_ends(cluster)

        def trading_again() -> bool:
            revived.extend(cluster.revive())
            return _fills_after(cluster, ends)

        _until(trading_again, 180, "a fill after the broker restart", cluster)
        times["broker_back_to_first_fill_s"] = round(time.monotonic() - back, 1)
        _until(
            lambda: not cluster.revive() and all(cluster.ready(s) for s in SERVICES),
            180,
            "every service ready after the broker restart",
            cluster,
        )
        times["revived_after_broker_restart"] = sorted(set(revived))
        times["broker_back_to_all_ready_s"] = round(time.monotonic() - back, 1)

        # -- the projector SIGKILLed while the load runs -----------------------------------
        # From here on the harness keeps supervising: a transactional call that hung through the
        # outage ends its service (the watchdog, after 60 s) well after every service looked ready.
        def supervised(condition: Callable[[], bool]) -> Callable[[], bool]:
            return lambda: (cluster.revive(), condition())[1]

        acked = len(load.acked)
        _until(
            supervised(lambda: len(load.acked) >= acked + 10),
            60,
            "orders acknowledged before the kill",
            cluster,
        )
        cluster.kill("projector", signal.SIGKILL)
        cluster.restart("projector")
        _until(supervised(partial(cluster.ready, "projector")), 120, "projector ready after SIGKILL", cluster)
        acked = len(load.acked)
        _until(
            supervised(lambda: len(load.acked) >= acked + 10),
            60,
            "orders acknowledged after the kill",
            cluster,
        )
        load.stop()

        # -- afterwards: the market stops (else the processors never go quiet), all settles ---
        for service in ("strategies", "venues"):
            cluster.kill(service, signal.SIGTERM)
        cluster.wait_quiet(timeout_s=180, supervise=True)
        times["acknowledged"], times["refused"] = len(load.acked), dict(load.refused)
        times["revived"] = cluster.revived  # over the whole run, in order
        (tmp_path / "recovery.json").write_text(json.dumps(times, indent=2))
        print("recovery:", json.dumps(times))
        expected = _reference_models(cluster, tmp_path)
        _until(lambda: _same_as(fresh_database, expected), 180, "read models = a fresh projection", cluster)
        models = _read(fresh_database)
        _check(cluster, load, models)
    finally:
        if load is not None and not load._stop.is_set():
            load.stop()
        cluster.close()


def _same_as(url: str, expected: dict[str, list[tuple[object, ...]]]) -> bool:
    from tests.distributed.cluster import read_models

    return read_models(url) == expected


def _check(cluster: Cluster, load: Load, models: dict[str, list[Any]]) -> None:
    # every acknowledged order is in the log once, and in the read models
    submitted: Counter[str] = Counter()
    for p in range(PARTITIONS):
        offset = 0
        while batch := cluster.log.read(ORDER_COMMANDS, p, offset, 5000):
            offset = batch[-1].offset + 1
            for rec in batch:
                name, fields = cluster.codec.decode_record(rec)
                if name.endswith("SubmitOrder"):
                    submitted[fields["order"]["order_id"]] += 1
    assert len(load.acked) > 100, load.refused
    missing = [o for o in load.acked if submitted[o] == 0]
    doubled = [o for o in load.acked if submitted[o] > 1]
    assert not missing, f"{len(missing)} acknowledged orders not in the log"
    assert not doubled, f"{len(doubled)} acknowledged orders in the log twice"
    outcome = cluster.outcome()
    twice = [e for e, n in outcome.items() if n > 1]
    assert not twice, f"{len(twice)} events written twice: {twice[:2]}"
    rows = {r["order_id"]: r for r in models["orders"]}
    assert all(o in rows for o in load.acked)
    # no market order of the load left in a state that should have ended
    stuck = [(o, rows[o]["status"]) for o in load.acked if rows[o]["status"] not in TERMINAL]
    assert not stuck, f"{len(stuck)} orders stuck: {stuck[:5]}"
    assert Counter(rows[o]["status"] for o in load.acked)["FILLED"] > len(load.acked) // 2
    # positions = signed fills
    signed: dict[tuple[str, str], Decimal] = {}
    for f in models["fills"]:
        sign = 1 if f["side"] == "BUY" else -1
        key = (f["account_id"], f["instrument_id"])
        signed[key] = signed.get(key, Decimal(0)) + sign * Decimal(f["quantity"])
    for pos in models["positions"]:  # (a position's quantity is signed: short is negative)
        key = (pos["account_id"], pos["instrument_id"])
        assert Decimal(pos["quantity"]) == signed.get(key, Decimal(0)), key
    for key, qty in signed.items():
        if qty != 0:
            assert any((p["account_id"], p["instrument_id"]) == key for p in models["positions"]), key
