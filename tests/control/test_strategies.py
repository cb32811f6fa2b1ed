"""Strategy lifecycle at run time: create, reconfigure, start, stop and remove through the API;
states in the read models; the operator's logging and delay strategies."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import pytest

from meltica.clock import SimulatedClock
from meltica.domain.control import ControlStrategy, StrategyAction, StrategyState
from meltica.domain.marketdata import QuoteTick
from meltica.domain.values import OrderSide
from meltica.processors.strategies import StrategyHost
from meltica.projections import tables as t
from meltica.strategies.base import Strategy, StrategyContext
from meltica.topics import QUOTES
from tests.control.conftest import ControlStack
from tests.e2e.stack import BTC

MS = 1_000_000


def quote(stack: ControlStack, ts: int, bid: str = "100.00") -> None:
    b = Decimal(bid)
    stack.publisher.publish(
        QUOTES, QuoteTick(BTC.instrument_id, b, Decimal(10), b + Decimal("0.02"), Decimal(10), ts)
    )


def strategy(stack: ControlStack, strategy_id: str) -> dict[str, Any]:
    return stack.get(f"/v1/strategies/{strategy_id}", "trader")


def wait_state(
    stack: ControlStack, strategy_id: str, state: str, reason: str | None = None
) -> dict[str, Any]:
    def reached() -> bool:
        rows = [
            s
            for s in stack.get("/v1/strategies?include_removed=true", "trader")["items"]
            if s["strategy_id"] == strategy_id
        ]
        return bool(rows) and rows[0]["state"] == state and (reason is None or rows[0]["reason"] == reason)

    stack.until(reached)
    return next(
        s
        for s in stack.get("/v1/strategies?include_removed=true", "trader")["items"]
        if s["strategy_id"] == strategy_id
    )


def orders_of(stack: ControlStack, strategy_id: str) -> list[dict[str, Any]]:
    return [o for o in stack.rows(t.orders) if o["strategy_id"] == strategy_id]


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_delay_strategy_lifecycle_through_the_api(
    make_stack: Any, db: str, request: pytest.FixtureRequest
) -> None:
    stack = make_stack(url=None if db == "sqlite" else request.getfixturevalue("database_url"))
    catalog = stack.get("/v1/strategies/catalog", "trader")
    assert catalog["delay"]["delay_ms"] == "1000"
    assert "logging" in catalog
    body = {
        "strategy_id": "later",
        "kind": "delay",
        "account_id": "ACC-1",
        "instrument_id": BTC.instrument_id,
        "params": {"delay_ms": 500, "quantity": "1", "repeat_ms": 1000},
        "start": False,
    }
    assert stack.client.post("/v1/strategies", json=body, headers=stack.auth("viewer")).status_code == 403
    assert stack.client.post("/v1/strategies", json=body, headers=stack.auth()).status_code == 202
    created = wait_state(stack, "later", "STOPPED")
    assert created["params"] == {"delay_ms": "500", "quantity": "1", "repeat_ms": "1000"}
    assert stack.client.post("/v1/strategies", json=body, headers=stack.auth()).status_code == 409

    t0 = time.time_ns()
    quote(stack, t0)
    quote(stack, t0 + 600 * MS)  # stopped: sees nothing
    assert stack.client.post("/v1/strategies/later/start", headers=stack.auth()).status_code == 202
    wait_state(stack, "later", "RUNNING")
    quote(stack, t0 + 700 * MS)  # its first tick: the delay starts now
    quote(stack, t0 + 1100 * MS)
    assert orders_of(stack, "later") == []
    quote(stack, t0 + 1200 * MS)  # 500 ms later: a market order
    stack.until(lambda: len(orders_of(stack, "later")) == 1)
    assert orders_of(stack, "later")[0]["order_type"] == "MARKET"

    patch = {"params": {"quantity": "2"}}
    assert stack.client.patch("/v1/strategies/later", json=patch, headers=stack.auth()).status_code == 202
    wait_state(stack, "later", "RUNNING", "parameters updated")
    assert strategy(stack, "later")["params"]["quantity"] == "2"
    bad = stack.client.patch(
        "/v1/strategies/later", json={"params": {"side": "SIDEWAYS"}}, headers=stack.auth()
    )
    assert bad.status_code == 422
    assert "side must be BUY or SELL" in bad.json()["detail"]

    assert stack.client.post("/v1/strategies/later/stop", headers=stack.auth()).status_code == 202
    wait_state(stack, "later", "STOPPED", "stopped")
    # a running probe acts on the same quote as "later" would (500 ms after its first tick):
    # once the probe's order is in, that quote has been handled
    probe = {**body, "strategy_id": "probe", "params": {"delay_ms": 1000}, "start": True}
    assert stack.client.post("/v1/strategies", json=probe, headers=stack.auth()).status_code == 202
    wait_state(stack, "probe", "RUNNING")
    quote(stack, t0 + 5000 * MS)
    quote(stack, t0 + 6000 * MS)
    stack.until(lambda: len(orders_of(stack, "probe")) == 1)
    assert len(orders_of(stack, "later")) == 1  # stopped strategies do not act
    assert stack.client.delete("/v1/strategies/probe", headers=stack.auth()).status_code == 202
    wait_state(stack, "probe", "REMOVED")
    assert stack.client.delete("/v1/strategies/later", headers=stack.auth()).status_code == 202
    wait_state(stack, "later", "REMOVED")
    assert stack.get("/v1/strategies", "trader")["items"] == []
    assert stack.client.get("/v1/strategies/later", headers=stack.auth()).status_code == 404


def test_bad_strategy_requests_are_refused(make_stack: Any) -> None:
    stack = make_stack()
    base = {"strategy_id": "s", "account_id": "ACC-1", "instrument_id": BTC.instrument_id}
    cases = [
        ({**base, "kind": "astrology"}, "unknown strategy 'astrology'"),
        ({**base, "kind": "grid"}, "grid needs step"),
        ({**base, "kind": "delay", "params": {"delay_ms": "soon"}}, "delay_ms must be an integer"),
        ({**base, "kind": "delay", "params": {"colour": "red"}}, "delay has no parameter 'colour'"),
        ({**base, "kind": "grid", "params": {"step": "abc"}}, "not a decimal number"),
    ]
    for body, detail in cases:
        r = stack.client.post("/v1/strategies", json=body, headers=stack.auth())
        assert r.status_code == 422, body
        assert detail in r.json()["detail"]
    assert stack.client.post("/v1/strategies/ghost/start", headers=stack.auth()).status_code == 404


def test_logging_strategy_records_what_it_sees(make_stack: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="meltica.strategies")
    stack = make_stack()
    body = {
        "strategy_id": "watch",
        "kind": "logging",
        "account_id": "ACC-1",
        "instrument_id": BTC.instrument_id,
    }
    assert (
        stack.client.post(
            "/v1/strategies", json={**body, "params": {"every": 2}}, headers=stack.auth()
        ).status_code
        == 202
    )
    wait_state(stack, "watch", "RUNNING")
    t0 = time.time_ns()
    for i in range(4):
        quote(stack, t0 + i * MS, bid=f"10{i}.00")
    stack.until(lambda: sum(r.name == "meltica.strategies.watch" for r in caplog.records) == 2)
    lines = [r.getMessage() for r in caplog.records if r.name == "meltica.strategies.watch"]
    assert lines[0].startswith("quote #2: QuoteTick(instrument_id='BTCUSDT.SIM', bid_px=Decimal('101.00')")


def test_lifecycle_commands_replay_to_the_same_state() -> None:
    """The host's state comes from the commands alone: a second host fed the same commands agrees."""
    clock = SimulatedClock(0)
    commands = [
        ControlStrategy(StrategyAction.CREATE, "a", "ACC", "op", 1, "logging", "X.SIM", {"every": "3"}),
        ControlStrategy(StrategyAction.START, "a", "ACC", "op", 2),
        ControlStrategy(StrategyAction.START, "a", "ACC", "op", 3),  # refused: already running
        ControlStrategy(StrategyAction.UPDATE, "a", "ACC", "op", 4, params={"every": "0"}),  # refused
        ControlStrategy(StrategyAction.STOP, "a", "OTHER", "op", 5),  # refused: another account's
        ControlStrategy(StrategyAction.CREATE, "b", "ACC", "op", 6, "delay", "X.SIM", {"delay_ms": "-1"}),
    ]
    hosts = [StrategyHost([]), StrategyHost([])]
    outputs = [[o.event for c in commands for o in h.handle("strategies.commands", c, clock)] for h in hosts]
    assert outputs[0] == outputs[1]
    assert [(e.state, e.reason) for e in outputs[0]] == [
        (StrategyState.STOPPED, "created"),
        (StrategyState.RUNNING, "started"),
        (StrategyState.RUNNING, "start refused: already running"),
        (StrategyState.RUNNING, "update refused: every must be at least 1"),
        (StrategyState.RUNNING, "stop refused: strategy belongs to account ACC"),
        (StrategyState.FAILED, "delay_ms and repeat_ms must not be negative"),
    ]
    assert [s.strategy_id for s in hosts[0].strategies] == ["a"]


class Broken(Strategy):
    strategy_id, account_id = "broken", "ACC"

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        ctx.submit("X.SIM", OrderSide.BUY, Decimal(1))
        raise ZeroDivisionError("division by zero")


class Counting(Strategy):
    strategy_id, account_id = "counting", "ACC"
    seen = 0

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self.seen += 1


def test_a_strategy_that_raises_fails_alone() -> None:
    broken, counting = Broken(), Counting()
    host = StrategyHost([broken, counting])
    clock = SimulatedClock(0)
    q = QuoteTick("X.SIM", Decimal(1), Decimal(1), Decimal(2), Decimal(1), 5)
    [out] = host.handle("marketdata.quotes", q, clock)
    assert (out.event.strategy_id, out.event.state, out.event.reason) == (
        "broken",
        StrategyState.FAILED,
        "on_quote raised ZeroDivisionError: division by zero, on QuoteTick X.SIM at ts 5",
    )
    assert host.handle("marketdata.quotes", q, clock) == []  # failed: no more callbacks, no orders
    assert counting.seen == 2
