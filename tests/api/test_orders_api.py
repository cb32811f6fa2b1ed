"""The REST API as a client sees it: the Done-when flow, idempotency, waits, paging, errors."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from meltica.domain.portfolio.events import AdjustBalance
from meltica.log.base import Record
from meltica.projections import tables as t
from meltica.topics import PORTFOLIO_COMMANDS
from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def test_submit_see_filled_position_and_audit_trail(api: Api) -> None:
    r = api.client.post(
        "/v1/orders?wait=filled&timeout=10", json=api.order(client_order_id="c-1"), headers=api.auth()
    )
    assert r.status_code == 202, r.text
    order_id = r.json()["order_id"]
    assert r.json()["status"] == "FILLED"
    assert r.headers["location"] == f"/v1/orders/{order_id}"
    api.until(  # the answer comes from the committed events; the read models follow
        lambda: api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()["status"] == "FILLED"
    )
    order = api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()
    assert (order["status"], order["filled_qty"], order["avg_px"]) == ("FILLED", "1", "100.02")
    events = api.client.get(f"/v1/orders/{order_id}/events", headers=api.auth()).json()["items"]
    assert [e["type"] for e in events] == [
        "OrderAccepted",
        "OrderSubmitted",
        "OrderAcknowledged",
        "OrderFilled",
    ]
    api.until(
        lambda: api.client.get("/v1/positions?account_id=ACC-1", headers=api.auth()).json()["items"] != []
    )
    [position] = api.client.get("/v1/positions?account_id=ACC-1", headers=api.auth()).json()["items"]
    assert (position["quantity"], position["side"]) == ("1", "LONG")
    fills = api.client.get(f"/v1/fills?order_id={order_id}", headers=api.auth()).json()["items"]
    assert [f["quantity"] for f in fills] == ["1"]
    balances = {
        b["asset"]: b
        for b in api.client.get("/v1/balances?account_id=ACC-1", headers=api.auth()).json()["items"]
    }
    assert balances["BTC"]["total"] == "101"


def test_resubmitting_a_client_order_id_is_the_same_order(api: Api) -> None:
    body = api.order(client_order_id="same", price="99.50")
    first = api.client.post("/v1/orders?wait=acknowledged&timeout=10", json=body, headers=api.auth()).json()
    second = api.client.post("/v1/orders?wait=acknowledged&timeout=10", json=body, headers=api.auth()).json()
    assert first["order_id"] == second["order_id"]
    events = api.client.get(f"/v1/orders/{first['order_id']}/events", headers=api.auth()).json()["items"]
    assert [e["type"] for e in events].count("OrderAccepted") == 1


def test_risk_denial_is_a_problem(api: Api) -> None:
    r = api.client.post(
        "/v1/orders?wait=accepted&timeout=10", json=api.order(price="150.00"), headers=api.auth()
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:meltica:problem:risk-denied"
    assert r.json()["detail"] == "price_band"


def test_amend_then_cancel(api: Api) -> None:
    r = api.client.post(
        "/v1/orders?wait=acknowledged&timeout=10", json=api.order(price="99.50"), headers=api.auth()
    )
    order_id = r.json()["order_id"]
    assert (
        api.client.patch(f"/v1/orders/{order_id}", json={"quantity": "2"}, headers=api.auth()).status_code
        == 202
    )
    api.until(lambda: api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()["quantity"] == "2")
    assert api.client.delete(f"/v1/orders/{order_id}", headers=api.auth()).status_code == 202
    api.until(
        lambda: api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()["status"] == "CANCELED"
    )
    again = api.client.delete(f"/v1/orders/{order_id}", headers=api.auth())
    assert (again.status_code, again.json()["type"]) == (409, "urn:meltica:problem:conflict")


def test_list_filters_and_cursor_pagination(api: Api) -> None:
    ids = {
        api.client.post(
            "/v1/orders?wait=acknowledged&timeout=10",
            json=api.order(price="99.50", client_order_id=f"p{i}"),
            headers=api.auth(),
        ).json()["order_id"]
        for i in range(3)
    }
    api.until(  # the answers come from the committed events; the read models follow
        lambda: all(
            api.client.get(f"/v1/orders/{i}", headers=api.auth()).json().get("status") == "NEW" for i in ids
        )
    )
    seen: list[str] = []
    url = "/v1/orders?account_id=ACC-1&status=NEW&limit=2"
    while url:
        page = api.client.get(url, headers=api.auth()).json()
        assert len(page["items"]) <= 2
        seen += [o["order_id"] for o in page["items"]]
        url = (
            f"/v1/orders?account_id=ACC-1&status=NEW&limit=2&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else ""
        )
    assert set(seen) == ids
    assert len(seen) == len(set(seen))


def test_kill_switch_needs_admin_and_halts(api: Api) -> None:
    body = {"action": "trip", "account_id": "ACC-1"}
    assert api.client.post("/v1/risk/kill-switch", json=body, headers=api.auth()).status_code == 403
    assert api.client.post("/v1/risk/kill-switch", json=body, headers=api.auth("ops")).status_code == 202
    api.until(
        lambda: any(
            e["type"] == "KillSwitchTripped"
            for e in api.client.get("/v1/risk/events", headers=api.auth()).json()["items"]
        )
    )
    r = api.client.post("/v1/orders?wait=accepted&timeout=10", json=api.order(), headers=api.auth())
    assert (r.status_code, r.json()["detail"]) == (422, "kill_switch")


def test_health(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ready"}


def test_rebuild_reproduces_the_read_models(api: Api) -> None:
    for i in range(3):
        api.client.post(
            "/v1/orders?wait=filled&timeout=10", json=api.order(client_order_id=f"r{i}"), headers=api.auth()
        )
    api.stop.set()
    for thread in api.threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), thread
    api.projector.catch_up()
    tables = (t.orders, t.order_events, t.fills, t.positions, t.balances, t.instruments)
    before = {tb.name: sorted(map(repr, api.rows(tb))) for tb in tables}
    api.projector.rebuild()
    after = {tb.name: sorted(map(repr, api.rows(tb))) for tb in tables}
    assert after == before


BAD = [
    (
        "malformed json",
        {"content": b"{bad json", "headers": {"content-type": "application/json"}},
        400,
        "malformed-json",
    ),
    ("wrong type", {"json": {"quantity": {"x": 1}}}, 422, "validation"),
    ("negative quantity", {"json": {"quantity": "-1"}}, 422, "validation"),
    ("zero quantity", {"json": {"quantity": "0"}}, 422, "validation"),
    ("too many decimals", {"json": {"quantity": "1.0000000000000000001"}}, 422, "validation"),
    ("unknown field", {"json": {"colour": "red"}}, 422, "validation"),
    ("unknown instrument", {"json": {"instrument_id": "DOGE.SIM"}}, 422, "unknown-instrument"),
    ("limit without price", {"json": {"price": None}}, 422, "validation"),
    (
        "huge payload",
        {"content": b"{" + b" " * 70_000 + b"}", "headers": {"content-type": "application/json"}},
        413,
        "too-large",
    ),
]


@pytest.mark.parametrize(("case", "request_kw", "status", "kind"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clear_problem(api: Api, case: str, request_kw: dict, status: int, kind: str) -> None:  # type: ignore[type-arg]
    kw = dict(request_kw)
    if "json" in kw:
        kw["json"] = {k: v for k, v in {**api.order(), **kw["json"]}.items() if v is not None}
    r = api.client.post("/v1/orders", headers={**api.auth(), **kw.pop("headers", {})}, **kw)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == f"urn:meltica:problem:{kind}"
    assert api.client.get("/v1/orders", headers=api.auth()).json()["items"] == [], "nothing was submitted"


@pytest.mark.parametrize(
    ("headers", "status", "kind"),
    [
        ({}, 401, "unauthorized"),
        ({"X-API-Key": "mk_nope_nope"}, 401, "unauthorized"),
        ({"X-API-Key": "garbage"}, 401, "unauthorized"),
    ],
)
def test_missing_or_invalid_key(api: Api, headers: dict[str, str], status: int, kind: str) -> None:
    r = api.client.post("/v1/orders", json=api.order(), headers=headers)
    assert (r.status_code, r.json()["type"]) == (status, f"urn:meltica:problem:{kind}")


def test_wrong_scope_and_not_found(api: Api) -> None:
    r = api.client.post("/v1/orders", json=api.order(), headers=api.auth("viewer"))
    assert (r.status_code, r.json()["type"]) == (403, "urn:meltica:problem:forbidden")
    r = api.client.get("/v1/orders/nope", headers=api.auth("viewer"))
    assert (r.status_code, r.json()["type"]) == (404, "urn:meltica:problem:not-found")
    r = api.client.get("/v1/nothing-here", headers=api.auth())
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM


def test_state_changing_calls_are_audited(api: Api) -> None:
    r = api.client.post("/v1/orders", json=api.order(price="99.50"), headers=api.auth())
    assert r.status_code == 202
    api.client.post(
        "/v1/risk/kill-switch", json={"action": "trip"}, headers=api.auth("viewer")
    )  # 403, still audited

    def records() -> list[Record]:  # written off the request path, soon after the answer
        return [
            rec
            for p in range(api.log.partitions("audit.events"))
            for rec in api.log.read("audit.events", p, 0, 100)
        ]

    api.until(lambda: len(records()) == 2)
    audits = sorted(
        (api.codec.decode_record(rec).record for rec in records()), key=lambda a: a["meta"]["ts_event"]
    )
    assert [(a["method"], a["path"], a["status_code"], a["key_name"]) for a in audits] == [
        ("POST", "/v1/orders", 202, "trader"),
        ("POST", "/v1/risk/kill-switch", 403, "viewer"),
    ]


def test_stream_sends_order_changes_as_server_sent_events(api: Api) -> None:
    def submit() -> None:
        other = TestClient(api.client.app)
        other.post("/v1/orders", json=api.order(client_order_id="sse"), headers=api.auth())

    with api.client.stream("GET", "/v1/stream?kinds=orders&limit=4", headers=api.auth("viewer")) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(line for line in lines if line) == ": connected"  # from here on, every new event
        threading.Thread(target=submit).start()
        names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert names == ["OrderAccepted", "OrderSubmitted", "OrderAcknowledged", "OrderFilled"]


def test_metrics_in_prometheus_format(api: Api) -> None:
    api.client.get("/healthz")
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = [line for line in r.text.splitlines() if line.startswith("meltica_api_requests_total{")]
    wanted = ('method="GET"', 'route="/healthz"', 'status="200"')
    assert any(all(w in line for w in wanted) for line in lines)


def test_bracket_through_the_api(api: Api) -> None:
    entry = api.order(client_order_id="b-entry", price="99.50")
    tp = api.order(client_order_id="b-tp", side="SELL", price="100.40")
    sl = api.order(client_order_id="b-sl", side="SELL", type="STOP_MARKET", trigger_price="99.10")
    del sl["price"]
    r = api.client.post(
        "/v1/orders/bulk", json={"orders": [entry, tp, sl], "contingency": "BRACKET"}, headers=api.auth()
    )
    assert r.status_code == 202, r.text
    e_id, tp_id, sl_id = r.json()["order_ids"]
    api.until(lambda: api.client.get(f"/v1/orders/{e_id}", headers=api.auth()).status_code == 200)
    api.until(
        lambda: api.client.get(f"/v1/orders/{tp_id}", headers=api.auth()).json()["status"] == "ACCEPTED"
    )
    assert api.client.get(f"/v1/orders/{sl_id}", headers=api.auth()).json()["status"] == "ACCEPTED"


def test_cancel_all_and_limits(api: Api) -> None:
    ids = [
        api.client.post(
            "/v1/orders?wait=acknowledged&timeout=10",
            json=api.order(price="99.50", client_order_id=f"ca{i}"),
            headers=api.auth(),
        ).json()["order_id"]
        for i in range(2)
    ]
    r = api.client.post("/v1/orders/cancel-all", json={"account_id": "ACC-1"}, headers=api.auth())
    assert r.status_code == 202
    for order_id in ids:
        api.until(
            lambda oid=order_id: (
                api.client.get(f"/v1/orders/{oid}", headers=api.auth()).json()["status"] == "CANCELED"
            )
        )
    body = {"scope": "ACCOUNT", "scope_id": "ACC-1", "max_position": "0.5"}
    assert api.client.put("/v1/risk/limits", json=body, headers=api.auth()).status_code == 403
    assert api.client.put("/v1/risk/limits", json=body, headers=api.auth("ops")).status_code == 202
    api.until(lambda: len(api.client.get("/v1/risk/limits", headers=api.auth()).json()) == 2)
    limits = api.client.get("/v1/risk/limits", headers=api.auth()).json()
    assert limits[0]["limits"]["max_position"] == "250"
    assert limits[1]["limits"]["max_position"] == "0.5"
    r = api.client.post(
        "/v1/orders?wait=accepted&timeout=10", json=api.order(client_order_id="big"), headers=api.auth()
    )
    assert (r.status_code, r.json()["detail"]) == (422, "max_position")


def test_backtests_are_served_from_the_read_models(api: Api) -> None:
    import itertools
    from decimal import Decimal

    from meltica.backtest.engine import run_backtest
    from meltica.backtest.store import save
    from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
    from meltica.marketdata.replay import ohlc_bars
    from meltica.strategies.sma_cross import SmaCross
    from tests.backtest.test_sma_cross import DATA

    usdjpy = DEFAULT_INSTRUMENTS[2]
    bars = list(itertools.islice(ohlc_bars(DATA, usdjpy.instrument_id), 1500))
    result = run_backtest(bars, usdjpy, SmaCross(usdjpy.instrument_id))
    backtest_id = save(
        api.db,
        result,
        strategy="sma-cross",
        params={"fast": "10"},
        instrument_id=usdjpy.instrument_id,
        source="test",
        commission=Decimal(0),
    )
    listed = api.client.get("/v1/backtests", headers=api.auth("viewer")).json()["items"]
    assert [b["backtest_id"] for b in listed] == [backtest_id]
    assert "equity" not in listed[0]
    one = api.client.get(f"/v1/backtests/{backtest_id}", headers=api.auth("viewer")).json()
    assert one["params"] == {"fast": "10"}
    assert one["fills"] == len(result.fills)
    assert Decimal(one["realized_pnl"]) == result.realized_pnl
    assert len(one["equity"]) > 100
    assert api.client.get("/v1/backtests/nope", headers=api.auth()).status_code == 404


def test_decimals_are_answered_in_the_syntax_they_are_taken_in(api: Api) -> None:
    """A balance of 10^-18 reads back as fixed-point text, never as `1E-18`."""
    now = time.time_ns()
    api.publisher.publish(
        PORTFOLIO_COMMANDS, AdjustBalance("TINY", "USDT", Decimal("0.000000000000000001"), "test", now)
    )
    api.until(
        lambda: api.client.get("/v1/balances?account_id=TINY", headers=api.auth()).json()["items"] != []
    )
    [balance] = api.client.get("/v1/balances?account_id=TINY", headers=api.auth()).json()["items"]
    assert balance["total"] == "0.000000000000000001"
