"""`GET /v1/analytics/execution`: exact aggregates of a known set of fills per venue, instrument and
strategy and within a time window, scoped to the key's accounts; bad parameters are problem+json;
and a market order through the running stack shows up in them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from meltica.api.keys import create_key
from meltica.domain.portfolio.events import ExecutionAnalyzed
from meltica.domain.values import OrderSide
from meltica.topics import PORTFOLIO_EVENTS
from tests.api.conftest import Api, t

T = 1_800_000_000_000_000_000
PROBLEM = "application/problem+json"
URL = "/v1/analytics/execution"


def fill(
    account: str,
    n: int,
    venue: str,
    instrument: str,
    strategy: str | None,
    qty: str,
    px: str,
    slip: str | None,
    ack: int | None,
    ack_fill: int | None,
    ts: int,
) -> ExecutionAnalyzed:
    return ExecutionAnalyzed(
        account,
        f"{instrument}.{venue}",
        f"O-{n}",
        f"T-{n}",
        venue,
        strategy,
        OrderSide.BUY,
        None if slip is None else Decimal(px),  # the arrival is not read by the aggregates
        Decimal(px),
        Decimal(qty),
        None if slip is None else Decimal(slip),
        ack,
        ack_fill,
        ts,
    )


KNOWN = (
    fill("ACC-1", 1, "SIM", "BTCUSDT", "S1", "1", "100.5", "50", 1000, 500, T + 1),
    fill("ACC-1", 2, "SIM", "BTCUSDT", "S1", "2", "99.9", "-10", 1000, 1500, T + 2),
    fill("ACC-1", 3, "SIM", "ETHUSDT", None, "0.5", "2000", "2.5", None, None, T + 3),
    fill("ACC-1", 4, "BINANCE", "BTCUSDT", "S2", "1", "101", None, 3001, 7, T + 4),
    fill("ACC-2", 5, "SIM", "BTCUSDT", "S9", "10", "100", "100", 2000, 100, T + 2),
)


@pytest.fixture
def known(api: Api) -> Api:
    for e in KNOWN:
        api.publisher.publish(PORTFOLIO_EVENTS, e)
    api.until(
        lambda: {r["trade_id"] for r in api.rows(t.execution_analytics)} >= {f"T-{n}" for n in range(1, 6)}
    )
    return api


def groups(
    api: Api, headers: dict[str, str] | None = None, **params: Any
) -> dict[str | None, dict[str, Any]]:
    r = api.client.get(URL, params=params, headers=headers or api.auth("viewer"))
    assert r.status_code == 200, r.text
    return {g["key"]: {k: v for k, v in g.items() if k != "key"} for g in r.json()["groups"]}


def test_per_venue_aggregates_are_exact(known: Api) -> None:
    found = groups(known, group_by="venue")
    assert list(found) == ["BINANCE", "SIM"]
    assert found["SIM"] == {
        "fills": 4,
        "quantity": "13.5",
        "notional": "2300.3",  # 100.5 + 199.8 + 1000 + 1000
        "slipped": 4,
        "mean_slippage_bps": "35.625",  # (50 - 10 + 2.5 + 100) / 4
        "median_slippage_bps": "26.25",  # (2.5 + 50) / 2
        "p95_slippage_bps": "100",  # nearest rank: the 4th of 4
        "weighted_slippage_bps": "45.8753",  # 105527 / 2300.3, half-even to 0.0001
        "mean_submit_to_ack_ns": 1333,  # 4000 / 3
        "mean_ack_to_fill_ns": 700,
    }
    assert found["BINANCE"] == {
        "fills": 1,
        "quantity": "1",
        "notional": "101",
        "slipped": 0,  # no arrival mid: no slippage
        "mean_slippage_bps": None,
        "median_slippage_bps": None,
        "p95_slippage_bps": None,
        "weighted_slippage_bps": None,
        "mean_submit_to_ack_ns": 3001,
        "mean_ack_to_fill_ns": 7,
    }


def test_per_strategy_and_instrument_within_a_window(known: Api) -> None:
    by_strategy = groups(known, group_by="strategy")
    assert list(by_strategy) == [None, "S1", "S2", "S9"]  # no strategy first
    assert [by_strategy[k]["fills"] for k in by_strategy] == [1, 2, 1, 1]
    window = groups(known, group_by="instrument", start=T + 2, end=T + 4)  # [start, end): T+4 out
    assert {k: (g["fills"], g["quantity"], g["mean_slippage_bps"]) for k, g in window.items()} == {
        "BTCUSDT.SIM": (2, "12", "45"),  # -10 and 100
        "ETHUSDT.SIM": (1, "0.5", "2.5"),
    }
    assert groups(known, start=T + 5) == {}


def test_an_account_bound_key_sees_its_accounts_only(known: Api) -> None:
    mine = {"X-API-Key": create_key(known.db, "acc1", ["read"], ["ACC-1"])}
    sim = groups(known, mine, group_by="venue")["SIM"]
    assert (sim["fills"], sim["quantity"], sim["notional"]) == (3, "3.5", "1300.3")
    assert (sim["mean_slippage_bps"], sim["median_slippage_bps"], sim["p95_slippage_bps"]) == (
        "14.1667",  # 42.5 / 3
        "2.5",
        "50",
    )
    assert sim["weighted_slippage_bps"] == "4.2506"  # 5527 / 1300.3
    assert groups(known, mine, account_id="ACC-2") == {}  # another account's: nothing
    assert groups(known, account_id="ACC-2")["SIM"]["fills"] == 1  # an unbound key: that account
    assert known.client.get(URL).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "side"},
        {"start": -1},
        {"start": 2**63},
        {"start": "yesterday"},
        {"start": T + 2, "end": T + 1},
        {"account_id": "A" * 129},
    ],
)
def test_bad_parameters_are_problems(api: Api, params: dict[str, Any]) -> None:
    r = api.client.get(URL, params=params, headers=api.auth("viewer"))
    assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM), r.text
    assert r.json()["type"] == "urn:meltica:problem:validation"


def test_a_market_order_through_the_stack_is_analyzed(api: Api) -> None:
    r = api.client.post("/v1/orders", json=api.order(type="MARKET", price=None), headers=api.auth())
    assert r.status_code in (200, 201, 202), r.text
    api.until(lambda: api.rows(t.execution_analytics) != [])
    [row] = api.rows(t.execution_analytics)
    assert (row["venue"], row["account_id"], row["arrival_mid"]) == ("SIM", "ACC-1", Decimal("100.01"))
    # bought at the ask, 100.02: 0.01 above the mid, 0.99990001 bps, kept to 0.0001
    assert (row["fill_px"], row["slippage_bps"]) == (Decimal("100.02"), Decimal("0.9999"))
    sim = groups(api)["SIM"]
    assert (sim["fills"], sim["quantity"], sim["slipped"]) == (1, "1", 1)


FILLS = URL + "/fills"


def trades(api: Api, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    r = api.client.get(FILLS, params=params, headers=headers or api.auth("viewer"))
    assert r.status_code == 200, r.text
    return [f["trade_id"] for f in r.json()["items"]]


def test_each_fill_is_listed_with_its_exact_analytics(known: Api) -> None:
    r = known.client.get(FILLS, params={"order_id": "O-1"}, headers=known.auth("viewer"))
    [one] = r.json()["items"]
    assert {k: one[k] for k in ("venue", "strategy_id", "side", "fill_px", "quantity", "slippage_bps")} == {
        "venue": "SIM",
        "strategy_id": "S1",
        "side": "BUY",
        "fill_px": "100.5",
        "quantity": "1",
        "slippage_bps": "50",
    }
    assert (one["submit_to_ack_ns"], one["ack_to_fill_ns"], one["ts_event"]) == (1000, 500, T + 1)
    assert trades(known) == ["T-1", "T-2", "T-5", "T-3", "T-4"]  # by time, then order id
    assert trades(known, start=T + 2, end=T + 4) == ["T-2", "T-5", "T-3"]
    assert trades(known, latest=True, limit=2) == ["T-3", "T-4"]  # the last two, oldest first
    first = known.client.get(FILLS, params={"limit": 2}, headers=known.auth("viewer")).json()
    rest = trades(known, limit=10, cursor=first["next_cursor"])
    assert [f["trade_id"] for f in first["items"]] + rest == trades(known)
    mine = {"X-API-Key": create_key(known.db, "acc1", ["read"], ["ACC-1"])}
    assert trades(known, mine) == ["T-1", "T-2", "T-3", "T-4"]
    assert trades(known, mine, account_id="ACC-2") == []


@pytest.mark.parametrize(
    ("params", "status"),
    [({"start": 5, "end": 4}, 422), ({"limit": 0}, 422), ({"cursor": "not-a-cursor"}, 400)],
)
def test_bad_fill_list_parameters_are_problems(api: Api, params: dict[str, Any], status: int) -> None:
    r = api.client.get(FILLS, params=params, headers=api.auth("viewer"))
    assert (r.status_code, r.headers["content-type"]) == (status, PROBLEM), r.text
