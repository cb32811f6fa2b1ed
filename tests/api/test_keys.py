"""API keys a desk can run with: keys bound to accounts (403 naming another account, 404 for its
orders and strategies, reads filtered),
revocation, expiry, rotation with an overlap, the admin keys API, rate limits per key and on failed
authentications per address, and verification that costs no database write per request."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, update

from meltica.api.auth import Guard, Limits
from meltica.api.keys import create_key, revoke_key, rotate_key
from meltica.api.ratelimit import parse_rate
from meltica.config import Settings
from meltica.projections import tables as t
from meltica.topics import ORDER_COMMANDS, STRATEGY_COMMANDS
from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def bound(api: Api, name: str, *accounts: str, scopes: tuple[str, ...] = ("read", "trade")) -> dict[str, str]:
    return {"X-API-Key": create_key(api.db, name, list(scopes), accounts)}


def commands(api: Api, topic: str) -> int:
    return sum(api.log.end_offset(topic, p) for p in range(api.log.partitions(topic)))


def guard(api: Api) -> Guard:
    found: Guard = api.client.app.state.guard  # type: ignore[attr-defined]
    return found


def forbidden(r: Any) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:meltica:problem:forbidden"


def hidden(r: Any, unknown: Any) -> None:
    """404 `not-found`, answered exactly as for an id that does not exist (`unknown`)."""
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:meltica:problem:not-found"
    assert (r.status_code, r.json()["title"]) == (unknown.status_code, unknown.json()["title"])


def unauthorized(r: Any) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["type"] == "urn:meltica:problem:unauthorized"


def test_a_key_bound_to_an_account_may_not_act_on_another(api: Api) -> None:
    resting = api.client.post(
        "/v1/orders?wait=acknowledged&timeout=10",
        json=api.order(price="99.50", client_order_id="r1"),
        headers=api.auth(),
    ).json()["order_id"]
    desk2 = bound(api, "desk2", "ACC-2")
    before = commands(api, ORDER_COMMANDS)

    forbidden(api.client.post("/v1/orders", json=api.order(), headers=desk2))
    forbidden(
        api.client.post(
            "/v1/orders/bulk", json={"orders": [api.order(account_id="ACC-2"), api.order()]}, headers=desk2
        )
    )
    forbidden(api.client.post("/v1/orders/cancel-all", json={"account_id": "ACC-1"}, headers=desk2))
    ghost = "O-does-not-exist"
    hidden(
        api.client.delete(f"/v1/orders/{resting}", headers=desk2),
        api.client.delete(f"/v1/orders/{ghost}", headers=desk2),
    )
    hidden(
        api.client.patch(f"/v1/orders/{resting}", json={"quantity": "2"}, headers=desk2),
        api.client.patch(f"/v1/orders/{ghost}", json={"quantity": "2"}, headers=desk2),
    )
    assert commands(api, ORDER_COMMANDS) == before, "a forbidden call wrote a command"

    own = api.client.post("/v1/orders", json=api.order(account_id="ACC-2"), headers=desk2)
    assert own.status_code == 202, own.text
    assert (
        api.client.post("/v1/orders/cancel-all", json={"account_id": "ACC-2"}, headers=desk2).status_code
        == 202
    )
    assert api.client.delete(f"/v1/orders/{resting}", headers=api.auth()).status_code == 202


def test_reads_show_only_the_key_accounts(api: Api) -> None:
    filled = api.client.post(
        "/v1/orders?wait=filled&timeout=10", json=api.order(client_order_id="f1"), headers=api.auth()
    ).json()["order_id"]
    api.until(
        lambda: api.client.get("/v1/positions?account_id=ACC-1", headers=api.auth()).json()["items"] != []
    )
    with api.db.begin() as conn:  # a mark, as the PnL processor's PnLMarked would project it
        zero = Decimal(0)
        conn.execute(
            insert(t.pnl).values(
                account_id="ACC-1",
                instrument_id="BTCUSDT.SIM",
                realized_pnl=zero,
                unrealized_pnl=zero,
                fees=zero,
                equity=zero,
                currency="USDT",
                ts_event=1,
            )
        )
    trip = {"action": "trip", "account_id": "ACC-1", "reason": "test"}
    assert api.client.post("/v1/risk/kill-switch", json=trip, headers=api.auth("ops")).status_code == 202
    limits = {"scope": "ACCOUNT", "scope_id": "ACC-1", "max_open_orders": 50}
    assert api.client.put("/v1/risk/limits", json=limits, headers=api.auth("ops")).status_code == 202

    def account_limits(key: dict[str, str]) -> list[str]:
        r = api.client.get("/v1/risk/limits", headers=key)
        return [x["scope_id"] for x in r.json() if x["scope"] == "ACCOUNT"]

    api.until(lambda: account_limits(api.auth()) == ["ACC-1"])
    api.until(lambda: len(api.client.get("/v1/risk/events", headers=api.auth()).json()["items"]) == 2)
    desk1 = bound(api, "desk1", "ACC-1", scopes=("read",))
    desk2 = bound(api, "desk2", "ACC-2", scopes=("read",))

    def get(path: str, key: dict[str, str]) -> Any:
        r = api.client.get(path, headers=key)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    assert [o["order_id"] for o in get("/v1/orders", desk1)] == [filled]
    assert get("/v1/orders", desk2) == []
    assert get("/v1/orders?account_id=ACC-1", desk2) == []
    for path in ("/v1/fills", "/v1/positions", "/v1/balances", "/v1/pnl", "/v1/fills?account_id=ACC-1"):
        assert get(path, desk1) != [], path
        assert get(path, desk2) == [], path
    assert {e["scope_id"] for e in get("/v1/risk/events", desk1)} == {"ACC-1"}
    assert get("/v1/risk/events", desk2) == []
    assert (account_limits(desk1), account_limits(desk2)) == (["ACC-1"], [])
    for path in (f"/v1/orders/{filled}", f"/v1/orders/{filled}/events"):
        assert api.client.get(path, headers=desk1).status_code == 200
        hidden = api.client.get(path, headers=desk2)
        assert (hidden.status_code, hidden.json()["type"]) == (404, "urn:meltica:problem:not-found")


def test_strategies_of_another_account_are_hidden_and_out_of_reach(api: Api) -> None:
    spec = {
        "strategy_id": "watch1",
        "kind": "logging",
        "account_id": "ACC-1",
        "instrument_id": "BTCUSDT.SIM",
        "start": False,
    }
    assert api.client.post("/v1/strategies", json=spec, headers=api.auth()).status_code == 202
    api.until(lambda: api.client.get("/v1/strategies/watch1", headers=api.auth()).status_code == 200)
    desk2 = bound(api, "desk2", "ACC-2")
    before = commands(api, STRATEGY_COMMANDS)

    forbidden(api.client.post("/v1/strategies", json={**spec, "strategy_id": "watch2"}, headers=desk2))
    for method, tail, kw in (
        ("POST", "/start", {}),
        ("POST", "/stop", {}),
        ("PATCH", "", {"json": {"params": {"every": 5}}}),
        ("DELETE", "", {}),
    ):
        hidden(
            api.client.request(method, f"/v1/strategies/watch1{tail}", headers=desk2, **kw),
            api.client.request(method, f"/v1/strategies/ghost{tail}", headers=desk2, **kw),
        )
    assert commands(api, STRATEGY_COMMANDS) == before
    assert api.client.get("/v1/strategies", headers=desk2).json()["items"] == []
    assert api.client.get("/v1/strategies/watch1", headers=desk2).status_code == 404
    own = api.client.post(
        "/v1/strategies", json={**spec, "strategy_id": "watch2", "account_id": "ACC-2"}, headers=desk2
    )
    assert own.status_code == 202, own.text


def test_the_stream_carries_only_the_key_accounts(api: Api) -> None:
    desk2 = bound(api, "desk2", "ACC-2", scopes=("read", "trade"))
    done = threading.Event()

    def trade_both() -> None:
        other = TestClient(api.client.app)
        i = 0
        while not done.wait(0.1):
            other.post("/v1/orders", json=api.order(client_order_id=f"s1-{i}"), headers=api.auth())
            other.post(
                "/v1/orders", json=api.order(account_id="ACC-2", client_order_id=f"s2-{i}"), headers=desk2
            )
            i += 1

    threading.Thread(target=trade_both, daemon=True).start()
    try:
        with api.client.stream("GET", "/v1/stream?kinds=orders&limit=3", headers=desk2) as r:
            data = [
                json.loads(line.removeprefix("data: "))
                for line in r.iter_lines()
                if line.startswith("data: ")
            ]
    finally:
        done.set()
    accounts = {d["event"].get("account_id") or d["event"]["order"]["account_id"] for d in data}
    assert len(data) == 3
    assert accounts == {"ACC-2"}


def test_the_stream_of_a_revoked_key_ends(api: Api) -> None:
    key = bound(api, "watcher", "ACC-1", scopes=("read",))
    ended = threading.Event()

    def watch() -> None:
        with api.client.stream("GET", "/v1/stream", headers=key) as r:
            assert r.status_code == 200
            for _ in r.iter_lines():
                pass
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    api.until(lambda: next(r for r in api.rows(t.api_keys) if r["name"] == "watcher")["last_used_at"])
    revoke_key(api.db, "watcher")
    assert ended.wait(30), "the stream outlived its key"


def test_revoked_and_expired_keys_are_401(api: Api) -> None:
    key = bound(api, "soon-gone", "ACC-1")
    assert api.client.get("/v1/orders", headers=key).status_code == 200
    revoke_key(api.db, "soon-gone")  # as `meltica keys revoke` does, from another process
    api.until(lambda: api.client.get("/v1/orders", headers=key).status_code == 401, timeout=30)
    r = api.client.get("/v1/orders", headers=key)
    unauthorized(r)
    assert r.json()["detail"] == "the API key is revoked"
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = {"X-API-Key": create_key(api.db, "old", ["read"], None, expires_at=past)}
    r = api.client.get("/v1/orders", headers=expired)
    unauthorized(r)
    assert r.json()["detail"] == "the API key has expired"
    unauthorized(api.client.get("/v1/orders", headers={"X-API-Key": "mk_0000_nope"}))


def test_rotation_keeps_the_old_secret_for_the_overlap_only(api: Api) -> None:
    old = create_key(api.db, "rotating", ["read"], ["ACC-1"])
    assert api.client.get("/v1/orders", headers={"X-API-Key": old}).status_code == 200
    new = rotate_key(api.db, "rotating", timedelta(hours=1))
    assert new.split("_")[1] == old.split("_")[1], "the same key, a new secret"
    for secret in (old, new):
        assert api.client.get("/v1/orders", headers={"X-API-Key": secret}).status_code == 200
    with api.db.begin() as conn:  # the hour has passed
        conn.execute(update(t.api_keys).values(previous_valid_until=datetime.now(UTC) - timedelta(seconds=1)))
    # another process changed the row: this one sees it once the key cache's second is over
    api.until(lambda: api.client.get("/v1/orders", headers={"X-API-Key": old}).status_code == 401, 30)
    assert api.client.get("/v1/orders", headers={"X-API-Key": new}).status_code == 200
    newer = rotate_key(api.db, "rotating", timedelta(0))
    api.until(lambda: api.client.get("/v1/orders", headers={"X-API-Key": new}).status_code == 401, 30)
    assert api.client.get("/v1/orders", headers={"X-API-Key": newer}).status_code == 200


def test_admin_keys_api_lists_creates_rotates_and_revokes(api: Api) -> None:
    ops = api.auth("ops")
    forbidden(api.client.get("/v1/admin/keys", headers=api.auth()))
    denied = api.client.post("/v1/admin/keys", json={"name": "x", "scopes": ["read"]}, headers=api.auth())
    forbidden(denied)
    unbound = api.client.post("/v1/admin/keys", json={"name": "t", "scopes": ["trade"]}, headers=ops)
    assert (unbound.status_code, unbound.json()["type"]) == (422, "urn:meltica:problem:validation")

    made = api.client.post(
        "/v1/admin/keys",
        json={
            "name": "desk",
            "scopes": ["read", "trade"],
            "accounts": ["ACC-1"],
            "ttl": "30d",
            "rate": "50/s",
        },
        headers=ops,
    )
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    doc = made.json()
    secret = doc["key"]
    assert (doc["accounts"], doc["rate"], doc["prefix"]) == (["ACC-1"], "50/s", secret[: len(doc["prefix"])])
    assert doc["expires_at"] > (datetime.now(UTC) + timedelta(days=29)).isoformat()
    twice = api.client.post("/v1/admin/keys", json={"name": "desk", "scopes": ["read"]}, headers=ops)
    assert twice.status_code == 409
    assert api.client.get("/v1/orders", headers={"X-API-Key": secret}).status_code == 200

    listed = api.client.get("/v1/admin/keys", headers=ops)
    assert secret not in listed.text
    assert "hash" not in listed.text
    desk = next(k for k in listed.json() if k["name"] == "desk")
    assert desk["last_used_at"] is not None
    assert desk["scopes"] == ["read", "trade"]

    rotated = api.client.post("/v1/admin/keys/desk/rotate", json={"overlap": "1h"}, headers=ops)
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["key"]
    assert rotated.json()["previous_valid_until"] is not None
    for key in (secret, fresh):
        assert api.client.get("/v1/orders", headers={"X-API-Key": key}).status_code == 200

    revoked = api.client.delete("/v1/admin/keys/desk", headers=ops)
    assert (revoked.status_code, revoked.json()["revoked"]) == (200, True)
    for key in (secret, fresh):  # at once, in this process
        unauthorized(api.client.get("/v1/orders", headers={"X-API-Key": key}))
    assert api.client.delete("/v1/admin/keys/nobody", headers=ops).status_code == 404
    for body in (
        {"name": "far", "scopes": ["read"], "ttl": "999999999w"},
        {"name": "far", "scopes": ["read"], "expires_at": "2001-01-01"},
        {"name": "far", "scopes": ["read"], "rate": "lots"},
        {"name": "bad name", "scopes": ["read"]},
    ):
        r = api.client.post("/v1/admin/keys", json=body, headers=ops)
        assert r.status_code == 422, (body, r.text)

    logged = b"".join(
        r.value
        for topic in api.log.topics()
        for p in range(api.log.partitions(topic))
        for r in api.log.read(topic, p, 0, 100_000)
    )
    assert secret.encode() not in logged
    assert fresh.encode() not in logged
    assert secret.split("_", 2)[2].encode() not in logged


def test_a_key_over_its_rate_is_429_with_retry_after(api: Api) -> None:
    key = {"X-API-Key": create_key(api.db, "slow", ["read"], ["ACC-1"], rate=parse_rate("5/m"))}
    answers = [api.client.get("/v1/orders", headers=key) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    limited = answers[-1]
    assert limited.headers["content-type"] == PROBLEM
    assert limited.json()["type"] == "urn:meltica:problem:rate-limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 12
    assert api.client.get("/v1/orders", headers=api.auth()).status_code == 200, "other keys are not slowed"


def test_scope_rates_come_from_the_settings(api: Api) -> None:
    limits = Limits.of(Settings(api_rate_trade="2/s", api_rate_read="50/m"))
    assert (limits.trade, limits.read) == (parse_rate("2/s"), parse_rate("50/m"))
    guard(api).limits = dataclasses.replace(limits, trade=parse_rate("2/m"))
    codes = [
        api.client.post("/v1/orders", json=api.order(price="99"), headers=api.auth()).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    assert api.client.get("/v1/orders", headers=api.auth()).status_code == 200, "reads have their own bucket"
    with pytest.raises(ValueError, match="N/s"):
        Settings(api_rate_read="fast")


def test_failed_authentications_from_one_address_are_429(api: Api) -> None:
    guard(api).limits = dataclasses.replace(guard(api).limits, auth_failures=parse_rate("3/m"))
    wrong = {"X-API-Key": "mk_0123456789abcdef_guess"}
    assert [api.client.get("/v1/orders", headers=wrong).status_code for _ in range(3)] == [401] * 3
    blocked = api.client.get("/v1/orders", headers=wrong)
    assert blocked.status_code == 429
    assert blocked.json()["type"] == "urn:meltica:problem:rate-limited"
    assert 1 <= int(blocked.headers["retry-after"]) <= 20
    assert api.client.get("/v1/orders", headers=api.auth()).status_code == 429, "even a right key, for now"
    assert api.client.get("/healthz").status_code == 200


def counting(api: Api, what: str) -> Callable[[], int]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if what in statement and "api_keys" in statement:
            seen.append(statement)

    event.listen(api.db, "before_cursor_execute", before)
    return lambda: len(seen)


def test_verification_is_cached_and_last_use_is_written_rarely(api: Api) -> None:
    key = bound(api, "busy", "ACC-1", scopes=("read",))
    writes, reads = counting(api, "UPDATE"), counting(api, "SELECT")
    started = time.monotonic()
    for _ in range(30):
        assert api.client.get("/v1/instruments", headers=key).status_code == 200
    elapsed = time.monotonic() - started
    assert writes() == 1, "last use is written once, not per request"
    assert reads() <= 2 + elapsed / guard(api).keys.cache_seconds, "the key's row is cached"
    [row] = [r for r in api.rows(t.api_keys) if r["name"] == "busy"]
    assert row["last_used_at"] is not None
