"""User strategies (`module:Class`) over REST: loaded for backtest jobs and live strategies only
from modules under the operator's `strategy_modules` prefixes; refused (403 problem+json naming
the setting) otherwise; a missing module or class, or a class that is no Strategy, is a 422 that
says which; a strategy's error names the strategy and the event."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from meltica.api.app import Services, create_app
from meltica.backtest.jobs import FINAL
from meltica.clock import SimulatedClock
from meltica.config import Settings
from meltica.domain.control import ControlStrategy, StrategyAction, StrategyState, StrategyStateChanged
from meltica.domain.marketdata import Bar
from meltica.events.mapping import from_record
from meltica.processors.strategies import StrategyHost
from meltica.topics import STRATEGY_COMMANDS
from tests.api.conftest import Api
from tests.e2e.stack import BTC

DATA = (Path(__file__).parents[1] / "data").resolve()
USER = "tests.backtest.user_strategies"
PROBLEM = "application/problem+json"


class Client:
    """An app on the `api` fixture's log and read models with `strategy_modules` set."""

    def __init__(self, api: Api, modules: tuple[str, ...]) -> None:
        self.api = api
        services = Services(api.log, api.publisher, api.db, replay_dirs=(DATA,), strategy_modules=modules)
        self.app = create_app(services)
        self.client = TestClient(self.app)

    def backtest(self, strategy: str, **params: Any) -> httpx.Response:
        body = {
            "source": str(DATA / "usdjpy-m1-bid-2013.csv"),
            "format": "fxcm",
            "strategy": strategy,
            "params": params,
            "start": "2013-02-04",
            "end": "2013-02-08",
        }
        return self.client.post("/v1/backtests", json=body, headers=self.api.auth())

    def finished(self, job_id: str) -> dict[str, Any]:
        def job() -> dict[str, Any]:
            found: dict[str, Any] = self.client.get(
                f"/v1/backtests/jobs/{job_id}", headers=self.api.auth()
            ).json()
            return found

        self.api.until(lambda: job()["status"] in FINAL, timeout=120)
        return job()

    def create(self, kind: str) -> httpx.Response:
        body = {
            "strategy_id": "mine",
            "kind": kind,
            "account_id": "ACC-1",
            "instrument_id": BTC.instrument_id,
            "params": {"window": 3, "quantity": "1"},
            "start": False,
        }
        return self.client.post("/v1/strategies", json=body, headers=self.api.auth())


@pytest.fixture
def allowed(api: Api) -> Iterator[Client]:
    c = Client(api, ("tests.backtest",))
    yield c
    c.app.state.parts.backtests.close(timeout=60)


def refused(answer: httpx.Response, says: str) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith("strategy-not-allowed")
    assert says in answer.json()["detail"]
    assert "strategy_modules" in answer.json()["detail"]


def test_an_allowed_user_strategy_runs_as_a_backtest_job(allowed: Client) -> None:
    answer = allowed.backtest(f"{USER}:Breakout", window=30)
    assert answer.status_code == 202, answer.text
    job = allowed.finished(answer.json()["job_id"])
    assert (job["status"], job["reason"], job["strategy"]) == ("done", "", f"{USER}:Breakout")
    stored = allowed.client.get(f"/v1/backtests/{job['backtest_id']}", headers=allowed.api.auth()).json()
    assert stored["fills"] > 0


def test_a_user_strategys_error_names_the_strategy_and_the_event(allowed: Client) -> None:
    job = allowed.finished(allowed.backtest(f"{USER}:Fragile").json()["job_id"])
    assert job["status"] == "failed"
    assert job["reason"] == (
        "strategy fragile failed: on_bar raised KeyError: 'no such level', "
        "on Bar USDJPY.SIM at ts 1359936240000000000"
    )


def test_modules_outside_the_allow_list_are_refused(api: Api, allowed: Client) -> None:
    refused(allowed.backtest("os.path:join"), "module os.path is not under the allowed prefixes")
    refused(allowed.backtest("tests.backtestx.evil:Strategy"), "tests.backtestx.evil")
    refused(allowed.create("os.path:join"), "module os.path")
    default = Client(api, ())  # nothing configured: no module at all
    refused(default.backtest(f"{USER}:Breakout"), "not enabled")
    refused(default.create(f"{USER}:Breakout"), "not enabled")


@pytest.mark.parametrize(
    ("strategy", "says"),
    [
        ("tests.backtest.nowhere:Breakout", "cannot import tests.backtest.nowhere"),
        (f"{USER}:Missing", f"{USER} has no Strategy subclass Missing"),
        (f"{USER}:NotAStrategy", f"{USER} has no Strategy subclass NotAStrategy"),
        (f"{USER}:Breakout:x", "not module.path:Class"),
    ],
)
def test_a_strategy_that_cannot_load_is_422_saying_why(allowed: Client, strategy: str, says: str) -> None:
    for answer in (allowed.backtest(strategy), allowed.create(strategy)):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM
        if answer.json()["type"].endswith("validation"):  # the live kind's pattern: before any lookup
            assert strategy.count(":") == 2
            continue
        assert says in answer.json()["detail"]


def test_an_allowed_live_strategy_is_created_and_the_host_runs_it(allowed: Client) -> None:
    assert allowed.create(f"{USER}:Breakout").status_code == 202
    [record] = [
        r
        for p in range(allowed.api.log.partitions(STRATEGY_COMMANDS))
        for r in allowed.api.log.read(STRATEGY_COMMANDS, p, 0)
    ]
    command = from_record(*allowed.api.codec.decode_record(record))
    assert isinstance(command, ControlStrategy)
    assert command.kind == f"{USER}:Breakout"

    clock = SimulatedClock(0)
    host = StrategyHost([], modules=("tests.backtest",))
    [created] = host.handle(STRATEGY_COMMANDS, command, clock)
    assert (created.event.state, created.event.reason) == (StrategyState.STOPPED, "created")
    start = ControlStrategy(StrategyAction.START, "mine", "ACC-1", "trader", 1)
    host.handle(STRATEGY_COMMANDS, start, clock)
    out = []
    for i, close in enumerate(["100", "101", "102", "103", "110"]):
        px = Decimal(close)
        bar = Bar(BTC.instrument_id, "1m", px, px, px, px, Decimal(1), i * 60, i * 60 + 60)
        out += host.handle("bars", bar, clock)
    assert [o.event.order.quantity for o in out] == [Decimal(1)]  # the breakout above the last 3

    closed = StrategyHost([])  # a host without the setting refuses the same command from the log
    [failed] = closed.handle(STRATEGY_COMMANDS, command, clock)
    assert isinstance(failed.event, StrategyStateChanged)
    assert failed.event.state is StrategyState.FAILED
    assert "strategy_modules" in failed.event.reason


def test_the_setting_takes_module_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MELTICA_STRATEGY_MODULES", '["mydesk.strategies", "tests.backtest"]')
    assert Settings().strategy_modules == ["mydesk.strategies", "tests.backtest"]
    assert Settings(strategy_modules=[]).strategy_modules == []
    for bad in ("mydesk/strategies", ".relative", "mydesk.", ""):
        with pytest.raises(ValidationError, match="not a module name"):
            Settings(strategy_modules=[bad])
