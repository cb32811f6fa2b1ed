"""The bad-input matrix (issue 13): whatever a client sends that is wrong — malformed or oversized
bodies (chunked or not), wrong types, non-finite or over-precise numbers, unknown instruments,
accounts, orders and strategies, the wrong scope or account, revoked or expired keys, a reused
idempotency key, a tampered cursor, hostile query parameters — is a 4xx problem+json, and the log
gains no record but the audit trail's."""

# ruff: noqa: E501 - one case per line

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from meltica.api.app import MAX_BODY, order_id_for
from meltica.api.keys import create_key, revoke_key
from meltica.projections import migrations
from tests.api.conftest import Api
from tests.e2e.stack import BTC

PROBLEM = "application/problem+json"
RESTING = order_id_for("ACC-1", "rest-1")  # a NEW order the fixture leaves resting
FILLED = order_id_for("ACC-1", "fill-1")  # and one it fills


def order(**changes: Any) -> dict[str, Any]:
    """A valid LIMIT BUY of ACC-1 with `changes` (a None value removes the field)."""
    base = {
        "account_id": "ACC-1",
        "instrument_id": BTC.instrument_id,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "1",
        "price": "99.50",
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def raw(content: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": content, "headers": {"content-type": content_type}}


def chunked(size: int) -> dict[str, Any]:
    """A JSON-looking body of `size` bytes, streamed without a Content-Length."""
    return {"chunked": size}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    kind: str
    send: dict[str, Any] = field(default_factory=dict)
    who: str = "trader"


STRATEGY = {
    "strategy_id": "s-1",
    "kind": "logging",
    "account_id": "ACC-1",
    "instrument_id": BTC.instrument_id,
}
LIMITS = {"scope": "ACCOUNT", "scope_id": "ACC-1"}
O = "/v1/orders"  # noqa: E741 - short, the table reads better

CASES = [
    # -- malformed and oversized bodies ------------------------------------------------------------
    Case("malformed json", "POST", O, 400, "malformed-json", raw(b'{"account_id": ')),
    Case("json NaN token", "POST", O, 422, "validation", raw(b'{"quantity": NaN}')),
    Case("not utf-8", "POST", O, 400, "malformed-json", raw(b'{"account_id": "\xff\xfe"}')),
    Case("nested too deep", "POST", O, 400, "malformed-json", raw(b"[" * 30_000 + b"]" * 30_000)),
    Case("empty body", "POST", O, 422, "validation", raw(b"")),
    Case("array body", "POST", O, 422, "validation", {"json": [order()]}),
    Case("string body", "POST", O, 422, "validation", {"json": "order"}),
    Case("null body", "POST", O, 422, "validation", {"json": None}),
    Case("text/plain body", "POST", O, 422, "validation", raw(b"{}", "text/plain")),
    Case("declared too large", "POST", O, 413, "too-large", raw(b"{" + b" " * MAX_BODY + b"}")),
    Case("chunked too large", "POST", O, 413, "too-large", chunked(4 * MAX_BODY)),
    Case("chunked too large, no key", "POST", O, 413, "too-large", chunked(4 * MAX_BODY), "nobody"),
    Case("chunked too large, bulk", "POST", f"{O}/bulk", 413, "too-large", chunked(2 * MAX_BODY)),
    Case("chunked too large, limits", "PUT", "/v1/risk/limits", 413, "too-large", chunked(MAX_BODY + 1), "ops"),
    Case("chunked too large, strategy", "POST", "/v1/strategies", 413, "too-large", chunked(MAX_BODY + 1)),
    Case("chunked malformed", "POST", O, 400, "malformed-json", chunked(1000)),
    # -- wrong types and shapes --------------------------------------------------------------------
    Case("quantity object", "POST", O, 422, "validation", {"json": order(quantity={"x": 1})}),
    Case("quantity list", "POST", O, 422, "validation", {"json": order(quantity=["1"])}),
    Case("quantity bool", "POST", O, 422, "validation", {"json": order(quantity=True)}),
    Case("quantity JSON integer", "POST", O, 422, "validation", {"json": order(quantity=1)}),
    Case("quantity JSON float", "POST", O, 422, "validation", {"json": order(quantity=0.01)}),
    Case("side unknown", "POST", O, 422, "validation", {"json": order(side="HOLD")}),
    Case("side lower case", "POST", O, 422, "validation", {"json": order(side="buy")}),
    Case("type unknown", "POST", O, 422, "validation", {"json": order(type="MARKETT")}),
    Case("post_only a string", "POST", O, 422, "validation", {"json": order(post_only="yes")}),
    Case("post_only a number", "POST", O, 422, "validation", {"json": order(post_only=1)}),
    Case("expire_time_ns a string", "POST", O, 422, "validation", {"json": order(expire_time_ns="1")}),
    Case("expire_time_ns negative", "POST", O, 422, "validation", {"json": order(expire_time_ns=-1)}),
    Case("expire_time_ns huge", "POST", O, 422, "validation", {"json": order(expire_time_ns=2**64)}),
    Case("account_id a number", "POST", O, 422, "validation", {"json": order(account_id=123)}),
    Case("account_id empty", "POST", O, 422, "validation", {"json": order(account_id="")}),
    Case("account_id 129 chars", "POST", O, 422, "validation", {"json": order(account_id="A" * 129)}),
    Case("account_id unicode", "POST", O, 422, "validation", {"json": order(account_id="ACC-é")}),
    Case("account_id newline", "POST", O, 422, "validation", {"json": order(account_id="ACC-1\n")}),
    Case("account_id NUL", "POST", O, 422, "validation", {"json": order(account_id="ACC\x001")}),
    Case("client_order_id too long", "POST", O, 422, "validation", {"json": order(client_order_id="c" * 129)}),
    Case("client_order_id space", "POST", O, 422, "validation", {"json": order(client_order_id="a b")}),
    Case("instrument_id a path", "POST", O, 422, "validation", {"json": order(instrument_id="../etc")}),
    Case("unknown field", "POST", O, 422, "validation", {"json": order(colour="red")}),
    Case("missing quantity", "POST", O, 422, "validation", {"json": order(quantity=None)}),
    Case("limit without price", "POST", O, 422, "validation", {"json": order(price=None)}),
    # -- non-finite, over-precise, out-of-syntax numbers -------------------------------------------
    Case("quantity NaN", "POST", O, 422, "validation", {"json": order(quantity="NaN")}),
    Case("quantity Infinity", "POST", O, 422, "validation", {"json": order(quantity="Infinity")}),
    Case("quantity 1e400", "POST", O, 422, "validation", {"json": order(quantity="1e400")}),
    Case("quantity 1_000", "POST", O, 422, "validation", {"json": order(quantity="1_000")}),
    Case("quantity padded", "POST", O, 422, "validation", {"json": order(quantity=" 0.01 ")}),
    Case("quantity 19 decimals", "POST", O, 422, "validation", {"json": order(quantity="0." + "0" * 18 + "1")}),
    Case("quantity 21 digits", "POST", O, 422, "validation", {"json": order(quantity="1" * 21)}),
    Case("quantity zero", "POST", O, 422, "validation", {"json": order(quantity="0")}),
    Case("price negative", "POST", O, 422, "validation", {"json": order(price="-1")}),
    Case("price arabic digits", "POST", O, 422, "validation", {"json": order(price="٩٩")}),
    Case("trigger_price hex", "POST", O, 422, "validation", {"json": order(trigger_price="0x10")}),
    # -- unknown instrument, order, strategy, route ------------------------------------------------
    Case("unknown instrument", "POST", O, 422, "unknown-instrument", {"json": order(instrument_id="NOPE.SIM")}),
    Case("strategy on unknown instrument", "POST", "/v1/strategies", 422, "unknown-instrument",
         {"json": {**STRATEGY, "instrument_id": "NOPE.SIM"}}),
    Case("unknown order amended", "PATCH", f"{O}/nope", 404, "not-found", {"json": {"quantity": "2"}}),
    Case("unknown order canceled", "DELETE", f"{O}/nope", 404, "not-found"),
    Case("unknown order read", "GET", f"{O}/nope", 404, "not-found"),
    Case("unknown strategy updated", "PATCH", "/v1/strategies/nope", 404, "not-found", {"json": {"params": {}}}),
    Case("unknown strategy started", "POST", "/v1/strategies/nope/start", 404, "not-found"),
    Case("unknown strategy removed", "DELETE", "/v1/strategies/nope", 404, "not-found"),
    Case("unknown venue stopped", "POST", "/v1/venues/nope/stop", 404, "not-found", who="ops"),
    Case("unknown route", "POST", "/v1/nothing", 404, "not-found"),
    Case("wrong method", "PUT", O, 405, "method-not-allowed", {"json": order()}),
    # -- orders: amend, cancel, bulk, idempotency --------------------------------------------------
    Case("amend nothing", "PATCH", f"{O}/{RESTING}", 422, "validation", {"json": {}}),
    Case("amend to NaN", "PATCH", f"{O}/{RESTING}", 422, "validation", {"json": {"price": "NaN"}}),
    Case("amend to 1e3", "PATCH", f"{O}/{RESTING}", 422, "validation", {"json": {"quantity": "1e3"}}),
    Case("amend unknown field", "PATCH", f"{O}/{RESTING}", 422, "validation", {"json": {"side": "SELL"}}),
    Case("amend a filled order", "PATCH", f"{O}/{FILLED}", 409, "conflict", {"json": {"quantity": "2"}}),
    Case("cancel a filled order", "DELETE", f"{O}/{FILLED}", 409, "conflict"),
    Case("idempotency key, other side", "POST", O, 409, "conflict",
         {"json": order(client_order_id="rest-1", side="SELL", price="100.50")}),
    Case("idempotency key, other quantity", "POST", O, 409, "conflict",
         {"json": order(client_order_id="rest-1", quantity="0.05")}),
    Case("idempotency key in bulk", "POST", f"{O}/bulk", 409, "conflict",
         {"json": {"orders": [order(client_order_id="rest-1", price="99.40")]}}),
    Case("bulk empty", "POST", f"{O}/bulk", 422, "validation", {"json": {"orders": []}}),
    Case("bulk of 101", "POST", f"{O}/bulk", 422, "validation", {"json": {"orders": [order()] * 101}}),
    Case("bulk not a list", "POST", f"{O}/bulk", 422, "validation", {"json": {"orders": order()}}),
    Case("bulk duplicated key", "POST", f"{O}/bulk", 422, "validation",
         {"json": {"orders": [order(client_order_id="d"), order(client_order_id="d", price="99.40")]}}),
    Case("bulk two accounts", "POST", f"{O}/bulk", 422, "validation",
         {"json": {"orders": [order(), order(account_id="ACC-2")]}}),
    Case("bracket of two", "POST", f"{O}/bulk", 422, "validation",
         {"json": {"orders": [order(), order()], "contingency": "BRACKET"}}),
    Case("bulk contingency unknown", "POST", f"{O}/bulk", 422, "validation",
         {"json": {"orders": [order()], "contingency": "ALL"}}),
    Case("cancel-all unknown field", "POST", f"{O}/cancel-all", 422, "validation",
         {"json": {"account_id": "ACC-1", "everything": True}}),
    # -- query parameters and cursors --------------------------------------------------------------
    Case("cursor overflow", "GET", f"{O}?cursor=99999999999999999999:x", 400, "bad-cursor"),
    Case("cursor superscript", "GET", f"{O}?cursor=%C2%B2:x", 400, "bad-cursor"),
    Case("cursor garbage", "GET", f"{O}?cursor=garbage", 400, "bad-cursor"),
    Case("cursor without id", "GET", f"{O}?cursor=12:", 400, "bad-cursor"),
    Case("limit zero", "GET", f"{O}?limit=0", 422, "validation"),
    Case("limit huge", "GET", f"{O}?limit=100000000000000000000", 422, "validation"),
    Case("limit a word", "GET", f"{O}?limit=all", 422, "validation"),
    Case("stream kinds unknown", "GET", "/v1/stream?kinds=secrets", 422, "validation"),
    Case("stream kinds partly unknown", "GET", "/v1/stream?kinds=orders,secrets", 422, "validation"),
    Case("stream limit zero", "GET", "/v1/stream?limit=0", 422, "validation"),
    Case("wait unknown", "POST", f"{O}?wait=forever", 422, "validation", {"json": order()}),
    Case("wait timeout zero", "POST", f"{O}?wait=filled&timeout=0", 422, "validation", {"json": order()}),
    Case("wait timeout too long", "POST", f"{O}?wait=filled&timeout=11", 422, "validation", {"json": order()}),
    Case("wait timeout NaN", "POST", f"{O}?wait=filled&timeout=nan", 422, "validation", {"json": order()}),
    # -- strategies, venues, risk ------------------------------------------------------------------
    Case("strategy kind unknown", "POST", "/v1/strategies", 422, "invalid-parameters",
         {"json": {**STRATEGY, "kind": "astrology"}}),
    Case("strategy id unicode", "POST", "/v1/strategies", 422, "validation",
         {"json": {**STRATEGY, "strategy_id": "s\u202e1"}}),
    Case("strategy param 1_000", "POST", "/v1/strategies", 422, "invalid-parameters",
         {"json": {**STRATEGY, "kind": "delay", "params": {"quantity": "1_000"}}}),
    Case("strategy param NaN", "POST", "/v1/strategies", 422, "invalid-parameters",
         {"json": {**STRATEGY, "kind": "delay", "params": {"quantity": "NaN"}}}),
    Case("strategy 65 params", "POST", "/v1/strategies", 422, "invalid-parameters",
         {"json": {**STRATEGY, "params": {f"p{i}": 1 for i in range(65)}}}),
    Case("strategy param control char", "POST", "/v1/strategies", 422, "invalid-parameters",
         {"json": {**STRATEGY, "kind": "delay", "params": {"side": "BUY\x1b[2J"}}}),
    Case("venue adapter unknown", "POST", "/v1/venues", 422, "invalid-parameters",
         {"json": {"name": "v", "adapter": "telepathy"}}, "ops"),
    Case("venue param too long", "POST", "/v1/venues", 422, "invalid-parameters",
         {"json": {"name": "v", "adapter": "synthetic", "params": {"seed": "1" * 2000}}}, "ops"),
    Case("limits NaN", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {**LIMITS, "max_position": "NaN"}}, "ops"),
    Case("limits as JSON number", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {**LIMITS, "max_position": 5}}, "ops"),
    Case("limits burst a string", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {**LIMITS, "throttle_burst": "5"}}, "ops"),
    Case("limits account without id", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {"scope": "ACCOUNT", "max_position": "5"}}, "ops"),
    Case("limits global with an id", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {"scope": "GLOBAL", "scope_id": "ACC-1", "max_position": "5"}}, "ops"),
    Case("limits scope unknown", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {**LIMITS, "scope": "GALAXY"}}, "ops"),
    Case("limits 1001 accounts", "PUT", "/v1/risk/limits", 422, "validation",
         {"json": {**LIMITS, "scope": "PORTFOLIO", "accounts": [f"A{i}" for i in range(1001)]}}, "ops"),
    Case("kill switch action unknown", "POST", "/v1/risk/kill-switch", 422, "validation",
         {"json": {"action": "explode"}}, "ops"),
    Case("kill switch reason too long", "POST", "/v1/risk/kill-switch", 422, "validation",
         {"json": {"action": "trip", "reason": "r" * 501}}, "ops"),
    Case("kill switch reason control chars", "POST", "/v1/risk/kill-switch", 422, "validation",
         {"json": {"action": "trip", "reason": "ok\r\nX-Injected: 1"}}, "ops"),
    # -- who may call ------------------------------------------------------------------------------
    Case("no key", "POST", O, 401, "unauthorized", {"json": order()}, "nobody"),
    Case("garbage key", "POST", O, 401, "unauthorized", {"json": order()}, "garbage"),
    Case("revoked key", "POST", O, 401, "unauthorized", {"json": order()}, "revoked"),
    Case("expired key", "POST", O, 401, "unauthorized", {"json": order()}, "expired"),
    Case("revoked key reads", "GET", O, 401, "unauthorized", who="revoked"),
    Case("read scope submits", "POST", O, 403, "forbidden", {"json": order()}, "viewer"),
    Case("read scope cancels", "DELETE", f"{O}/{RESTING}", 403, "forbidden", who="viewer"),
    Case("trade scope sets limits", "PUT", "/v1/risk/limits", 403, "forbidden", {"json": LIMITS}),
    Case("trade scope adds a venue", "POST", "/v1/venues", 403, "forbidden",
         {"json": {"name": "v", "adapter": "synthetic"}}),
    Case("trade scope trips the kill switch", "POST", "/v1/risk/kill-switch", 403, "forbidden",
         {"json": {"action": "trip"}}),
    Case("other account submits", "POST", O, 403, "forbidden", {"json": order()}, "desk2"),
    Case("other account cancels", "DELETE", f"{O}/{RESTING}", 404, "not-found", who="desk2"),
    Case("other account amends", "PATCH", f"{O}/{RESTING}", 404, "not-found", {"json": {"quantity": "2"}}, "desk2"),
    Case("other account cancels all", "POST", f"{O}/cancel-all", 403, "forbidden",
         {"json": {"account_id": "ACC-1"}}, "desk2"),
    Case("other account in bulk", "POST", f"{O}/bulk", 403, "forbidden",
         {"json": {"orders": [order(account_id="ACC-2"), order()]}}, "desk2"),
    Case("other account's strategy", "POST", "/v1/strategies", 403, "forbidden", {"json": STRATEGY}, "desk2"),
]  # fmt: skip


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('bad-input')) / 'rm.db'}"
    migrations.upgrade(url)
    a = Api(url)
    a.start()
    assert (
        a.client.post(
            f"{O}?wait=acknowledged&timeout=10", json=order(client_order_id="rest-1"), headers=a.auth()
        ).json()["status"]
        == "NEW"
    )
    filled = a.client.post(
        f"{O}?wait=filled&timeout=10", json=order(client_order_id="fill-1", price="100.02"), headers=a.auth()
    )
    assert filled.json()["status"] == "FILLED"
    a.until(lambda: a.client.get("/v1/positions", headers=a.auth()).json() != [])
    a.keys["desk2"] = create_key(a.db, "desk2", ["read", "trade"], ["ACC-2"])
    a.keys["revoked"] = create_key(a.db, "gone", ["read", "trade"])
    revoke_key(a.db, "gone")
    a.keys["expired"] = create_key(
        a.db, "old", ["read", "trade"], expires_at=datetime.now(UTC) - timedelta(1)
    )
    a.keys["garbage"] = "mk_0123456789abcdef_not-the-secret"
    yield a
    a.close()


def log_ends(api: Api) -> dict[tuple[str, int], int]:
    """Where every topic ends, but the audit trail."""
    return {
        (topic, p): api.log.end_offset(topic, p)
        for topic in api.log.topics()
        if topic != "audit.events"
        for p in range(api.log.partitions(topic))
    }


async def send(api: Api, case: Case) -> httpx.Response:
    kw = dict(case.send)
    headers = {**({} if case.who == "nobody" else {"X-API-Key": api.keys[case.who]}), **kw.pop("headers", {})}
    if "chunked" in kw:
        size = kw.pop("chunked")

        async def body() -> AsyncIterator[bytes]:
            for i in range(0, size, 4096):
                yield b"[" * min(4096, size - i)

        kw["content"] = body()
        headers["content-type"] = "application/json"
    transport = httpx.ASGITransport(app=api.client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as client:
        if case.path == "/v1/stream" or case.path.startswith("/v1/stream?"):
            async with client.stream(case.method, case.path, headers=headers, **kw) as r:
                await r.aread()
                return r
        return await client.request(case.method, case.path, headers=headers, **kw)


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_4xx_problem_and_writes_nothing(api: Api, case: Case) -> None:
    before = log_ends(api)
    r = asyncio.run(send(api, case))
    assert (r.status_code, r.headers["content-type"]) == (case.status, PROBLEM), r.text[:500]
    problem = r.json()
    assert problem["type"] == f"urn:meltica:problem:{case.kind}", problem
    assert problem["status"] == case.status
    assert problem["title"]
    assert log_ends(api) == before, "nothing but the audit record is written"
