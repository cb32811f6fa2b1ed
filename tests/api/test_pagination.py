"""Every list endpoint answers pages with a cursor: nothing is cut short without a next_cursor, and
a cursor that was not given by the list (edited, from another list, out of range) is 400."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert

from meltica.api import pagination
from meltica.cli import rest
from meltica.projections import tables as t
from tests.api.conftest import Api

FILLS = 1091  # the count: 1,000 came back, with no cursor


def add_fills(api: Api, n: int) -> None:
    rows = [
        {
            "trade_id": f"T{i:05d}",
            "order_id": f"O{i % 7}",
            "account_id": "ACC-1",
            "instrument_id": "BTCUSDT.SIM",
            "side": "BUY",
            "quantity": Decimal("0.001"),
            "price": Decimal("100.01"),
            "fee": Decimal(0),
            "fee_currency": "USDT",
            "liquidity_side": "TAKER",
            "ts_event": 1_000 + i // 3,  # ties on the time: the trade id orders them
        }
        for i in range(n)
    ]
    with api.db.begin() as conn:
        conn.execute(insert(t.fills), rows)


def every(api: Api, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = api.client.get(path, params=query, headers=api.auth())
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_1091_fills_come_back_complete_across_pages(api: Api) -> None:
    add_fills(api, FILLS)
    first = api.client.get("/v1/fills", headers=api.auth()).json()
    assert len(first["items"]) == pagination.DEFAULT_LIMIT
    assert first["next_cursor"]
    for limit in (500, 7):
        found = every(api, "/v1/fills", limit, account_id="ACC-1")
        assert [f["trade_id"] for f in found] == [f"T{i:05d}" for i in range(FILLS)]


def test_the_cli_follows_the_cursors(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    add_fills(api, FILLS)

    def call(method: str, path: str, *, params: dict[str, Any] | None = None, **_: Any) -> Any:
        r = api.client.request(method, path, params=params, headers=api.auth())
        assert r.status_code == 200, r.text
        return r.json()

    monkeypatch.setattr(rest, "call", call)
    assert len(rest.items("/v1/fills")) == FILLS
    assert len(rest.items("/v1/fills", limit=501)) == 501
    assert [f["trade_id"] for f in rest.items("/v1/fills", {"order_id": "O3"})] == [
        f"T{i:05d}" for i in range(FILLS) if i % 7 == 3
    ]


def seed(api: Api) -> None:
    """Two rows in every read model behind a list (the stack already has an instrument)."""
    now = datetime.now(UTC)
    zero = Decimal(0)
    with api.db.begin() as conn:
        for n in (1, 2):
            conn.execute(
                insert(t.positions).values(
                    account_id=f"A{n}",
                    instrument_id="BTCUSDT.SIM",
                    side="LONG",
                    quantity=Decimal(n),
                    avg_px=Decimal(100),
                    realized_pnl=zero,
                    unrealized_pnl=zero,
                    fees=zero,
                    currency="USDT",
                    ts_event=n,
                )
            )
            conn.execute(
                insert(t.pnl).values(
                    account_id=f"A{n}",
                    instrument_id="",
                    realized_pnl=zero,
                    unrealized_pnl=zero,
                    fees=zero,
                    equity=zero,
                    currency="USDT",
                    ts_event=n,
                )
            )
            conn.execute(
                insert(t.risk_events).values(
                    event_id=f"r{n}",
                    type="KillSwitchTripped",
                    scope="GLOBAL",
                    scope_id="",
                    ts_event=n,
                    payload="{}",
                )
            )
            conn.execute(insert(t.strategies).values(_strategy_row(f"s{n}")))
            conn.execute(insert(t.venues).values(_venue_row(f"v{n}")))
            conn.execute(
                insert(t.order_events).values(
                    event_id=f"e{n}",
                    order_id="O1",
                    account_id="ACC-1",
                    type="OrderDenied",
                    ts_event=n,
                    topic="orders.events",
                    partition=0,
                    offset=n,
                    payload="{}",
                )
            )
            conn.execute(insert(t.backtests).values(_backtest_row(f"b{n}", now)))
        conn.execute(
            insert(t.instruments).values(
                instrument_id="ETHUSDT.SIM",
                symbol="ETHUSDT",
                venue="SIM",
                asset_class="CRYPTO",
                quote_currency="USDT",
                price_increment=Decimal("0.01"),
                size_increment=Decimal("0.001"),
                maker_fee=zero,
                taker_fee=zero,
            )
        )
        for order_id in ("O1", "O2"):
            conn.execute(
                insert(t.orders).values(
                    order_id=order_id,
                    client_order_id=f"c-{order_id}",
                    account_id="ACC-1",
                    instrument_id="BTCUSDT.SIM",
                    side="BUY",
                    order_type="LIMIT",
                    time_in_force="GTC",
                    quantity=Decimal(1),
                    price=Decimal(1),
                    status="DENIED",
                    filled_qty=zero,
                    ts_created=1,
                    ts_updated=1,
                    version=1,
                )
            )
    add_fills(api, 2)


def _strategy_row(strategy_id: str) -> dict[str, Any]:
    return {
        "strategy_id": strategy_id,
        "account_id": "ACC-1",
        "kind": "logging",
        "instrument_id": "BTCUSDT.SIM",
        "params": "{}",
        "state": "STOPPED",
        "reason": "",
        "operator": "test",
        "ts_event": 1,
    }


def _venue_row(venue: str) -> dict[str, Any]:
    counters = dict.fromkeys(("received", "published", "duplicates", "gaps", "out_of_order", "resyncs"), 0)
    return {
        "venue": venue,
        "adapter": "synthetic",
        "params": "{}",
        "state": "STOPPED",
        "reason": "",
        **counters,
        "ts_event": 1,
    }


def _backtest_row(backtest_id: str, now: datetime) -> dict[str, Any]:
    zero = Decimal(0)
    return {
        "backtest_id": backtest_id,
        "strategy": "sma-cross",
        "params": "{}",
        "instrument_id": "BTCUSDT.SIM",
        "source": "test",
        "commission": zero,
        "fills": 0,
        "realized_pnl": zero,
        "open_position": zero,
        "stats": "{}",
        "equity": "[]",
        "created_at": now,
    }


LISTS = [
    "/v1/orders",
    "/v1/orders/O1/events",
    "/v1/fills",
    "/v1/positions",
    "/v1/balances",
    "/v1/pnl",
    "/v1/instruments",
    "/v1/risk/events",
    "/v1/backtests",
    "/v1/strategies",
    "/v1/venues",
]


def test_every_list_pages_and_refuses_a_tampered_cursor(api: Api) -> None:
    seed(api)
    cursors = {}
    for path in LISTS:

        def two(path: str = path) -> bool:
            r = api.client.get(path, headers=api.auth("ops"))
            assert r.status_code == 200, (path, r.text)
            return len(r.json()["items"]) >= 2

        try:
            api.until(two)  # balances come from the projector
        except AssertionError:
            raise AssertionError(f"{path}: fewer than two items") from None
        found = every(api, path, 1)
        assert len(found) >= 2, path
        page = api.client.get(path, params={"limit": 1}, headers=api.auth("ops")).json()
        cursors[path] = page["next_cursor"]
    for path, cursor in cursors.items():
        body, _, checksum = cursor.partition(".")
        other = next(c for p, c in cursors.items() if p != path)
        for bad in (
            cursor[:-1] + ("0" if cursor[-1] != "0" else "1"),  # edited
            body[:-2] + "." + checksum,  # truncated
            other,  # another list's
            "12:x",  # the old, readable form
            "x" * 600,
        ):
            r = api.client.get(path, params={"cursor": bad}, headers=api.auth("ops"))
            assert (r.status_code, r.json()["type"]) == (400, "urn:meltica:problem:bad-cursor"), (path, bad)


def test_an_out_of_range_value_in_a_well_formed_cursor_is_refused(api: Api) -> None:
    for values in (
        [2**63, "T1"],
        [-(2**63) - 1, "T1"],
        ["1", "T1"],
        [1.5, "T1"],
        [1, 7],
        [1, "x" * 129],
        [1],
    ):
        r = api.client.get(
            "/v1/fills", params={"cursor": pagination.encode("fills", values)}, headers=api.auth()
        )
        assert (r.status_code, r.json()["type"]) == (400, "urn:meltica:problem:bad-cursor"), values
    add_fills(api, 3)
    ok = pagination.encode("fills", [2**63 - 1, "T1"])
    assert api.client.get("/v1/fills", params={"cursor": ok}, headers=api.auth()).json()["items"] == []
