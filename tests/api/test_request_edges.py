"""The REST API's request edges (issue 13): bodies limited as they arrive, waits that hold no
thread, idempotency keys that refuse another body, tamper-proof cursors, strict decimals."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from meltica.api.app import MAX_BODY, Services, create_app
from meltica.api.keys import create_key
from meltica.api.limits import BodyLimit
from meltica.api.ratelimit import parse_rate
from meltica.api.routes import orders as order_routes
from meltica.cli import trading
from meltica.projections import tables as t
from tests.api.conftest import Api

PROBLEM = "application/problem+json"
CHUNK = 8192


def kind(r: httpx.Response) -> tuple[int, str]:
    assert r.headers["content-type"] == PROBLEM, r.text
    return r.status_code, r.json()["type"].removeprefix("urn:meltica:problem:")


def log_ends(api: Api) -> dict[tuple[str, int], int]:
    return {
        (topic, p): api.log.end_offset(topic, p)
        for topic in api.log.topics()
        if topic != "audit.events"
        for p in range(api.log.partitions(topic))
    }


def asgi(api: Api, timeout: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.client.app), base_url="http://api", timeout=timeout
    )


# -- defect 4: the body limit holds for chunked bodies, before the key is checked ------------------
@pytest.mark.parametrize("who", ["nobody", "trader"])
def test_a_chunked_body_is_refused_as_it_crosses_the_limit(api: Api, who: str) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while pulled < 20 * MAX_BODY:
            pulled += CHUNK
            yield b"[" * CHUNK

    async def post() -> httpx.Response:
        headers = {"content-type": "application/json", **(api.auth() if who == "trader" else {})}
        async with asgi(api) as client:
            return await client.post("/v1/orders", content=endless(), headers=headers)

    before = log_ends(api)
    r = asyncio.run(post())
    assert kind(r) == (413, "too-large")
    assert pulled <= MAX_BODY + 2 * CHUNK, f"the server read {pulled} bytes"
    assert log_ends(api) == before


def test_a_chunked_body_under_the_limit_is_served(api: Api) -> None:
    body = httpx.Request("POST", "/", json=api.order(price="99.50", client_order_id="chunked")).content

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 16):
            yield body[i : i + 16]

    async def post() -> httpx.Response:
        async with asgi(api) as client:
            headers = {"content-type": "application/json", **api.auth()}
            return await client.post("/v1/orders", content=pieces(), headers=headers)

    r = asyncio.run(post())
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("length", [str(MAX_BODY + 1), "99999999999999999999999", "-1", "1e3"])
def test_a_declared_length_over_the_limit_or_malformed_is_refused_unread(api: Api, length: str) -> None:
    r = api.client.post("/v1/orders", content=b"{}", headers={"content-length": length})
    assert kind(r) == (413, "too-large")


def test_the_body_limit_is_the_outermost_middleware(api: Api) -> None:
    assert api.client.app.user_middleware[0].cls is BodyLimit, "nothing may read a body before it"


# -- defect 5: waits cost nothing while pending, and end within their timeout ----------------------
def roomy_limits(api: Api) -> None:
    """Limits that let 100 orders rest at once (the defaults throttle at 5/s and 6 open orders)."""
    body = {
        "scope": "ACCOUNT",
        "scope_id": "ACC-1",
        "throttle_rate": "10000",
        "throttle_burst": 1000,
        "max_open_orders": 1000,
        "max_position": "100000",
        "max_gross_exposure": "100000000",
        "max_net_exposure": "100000000",
    }
    assert api.client.put("/v1/risk/limits", json=body, headers=api.auth("ops")).status_code == 202
    api.until(lambda: len(api.client.get("/v1/risk/limits", headers=api.auth()).json()) == 2)


def test_healthz_answers_fast_while_100_waits_are_pending(api: Api) -> None:
    timeout = 10.0  # the longest allowed: the waits end when a cancel-all closes their orders
    roomy_limits(api)
    key = {"X-API-Key": create_key(api.db, "waiter", ["read", "trade"], rate=parse_rate("1000/s"))}

    async def main() -> tuple[list[float], list[httpx.Response]]:
        async with asgi(api) as client:

            async def wait(i: int) -> httpx.Response:
                return await client.post(
                    f"/v1/orders?wait=filled&timeout={timeout}",
                    json=api.order(price="99.50", client_order_id=f"wait-{i}"),
                    headers=key,
                )

            loop = asyncio.get_running_loop()
            waits: list[asyncio.Task[httpx.Response]] = []
            for wave in range(10):  # in waves: the publisher refuses more than 16 appends at once
                waits += [asyncio.create_task(wait(10 * wave + i)) for i in range(10)]
                while await loop.run_in_executor(None, resting, api) < len(waits):
                    assert not any(w.done() for w in waits), [w.result().text for w in waits if w.done()]
                    await asyncio.sleep(0.01)
            latencies = []
            for _ in range(10):
                started = time.monotonic()
                assert (await client.get("/healthz")).status_code == 200
                latencies.append(time.monotonic() - started)
            assert not any(w.done() for w in waits), "all 100 waits were pending while /healthz answered"
            r = await client.post("/v1/orders/cancel-all", json={"account_id": "ACC-1"}, headers=key)
            assert r.status_code == 202, r.text
            return latencies, list(await asyncio.gather(*waits))

    latencies, answers = asyncio.run(main())
    assert max(latencies) < timeout / 2, latencies  # not blocked for the waits (room for a busy CPU)
    for r in answers:
        assert r.status_code == 202, r.text
        # A wait that timed out would answer NEW: the cancel, not the timeout, ended each one.
        assert r.json()["status"] == "CANCELED", "a terminal status ends a wait for a fill"


def test_a_wait_that_times_out_answers_with_the_status_so_far(api: Api) -> None:
    started = time.monotonic()
    r = api.client.post(
        "/v1/orders?wait=filled&timeout=0.5", json=api.order(price="99.50"), headers=api.auth()
    )
    assert (r.status_code, r.json()["status"]) == (202, "NEW")
    assert time.monotonic() - started < 5


def resting(api: Api) -> int:
    with api.db.connect() as conn:
        return int(conn.execute(select(func.count()).where(t.orders.c.status == "NEW")).scalar_one())


def test_a_wait_ends_as_soon_as_the_order_fills(api: Api) -> None:
    started = time.monotonic()
    r = api.client.post("/v1/orders?wait=filled&timeout=10", json=api.order(), headers=api.auth())
    assert (r.status_code, r.json()["status"]) == (202, "FILLED")
    assert time.monotonic() - started < 8  # not the 10 s of the timeout (room for a busy CPU)


# -- defect 6: one client_order_id twice in one bulk request ---------------------------------------
def test_a_bulk_request_with_a_duplicated_client_order_id_is_refused(api: Api) -> None:
    orders = [
        api.order(client_order_id="dup", price="99.50"),
        api.order(client_order_id="dup", price="99.40"),
    ]
    before = log_ends(api)
    r = api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=api.auth())
    assert kind(r) == (422, "validation")
    assert "dup" in r.json()["detail"]
    assert log_ends(api) == before


def test_orders_of_a_bulk_request_without_client_ids_are_distinct(api: Api) -> None:
    orders = [api.order(price="99.50") for _ in range(20)]
    r = api.client.post("/v1/orders/bulk", json={"orders": orders}, headers=api.auth())
    assert r.status_code == 202, r.text
    assert len(set(r.json()["order_ids"])) == 20


# -- defect 7: an idempotency key reused with another body -----------------------------------------
def test_an_idempotency_key_with_another_body_is_a_conflict(api: Api) -> None:
    first = api.order(client_order_id="idem", price="99.50")
    r1 = api.client.post("/v1/orders", json=first, headers=api.auth())
    assert r1.status_code == 202
    again = api.client.post("/v1/orders", json=first, headers=api.auth())
    assert (again.status_code, again.json()["order_id"]) == (202, r1.json()["order_id"])
    other = {**first, "side": "SELL", "quantity": "0.05"}
    r2 = api.client.post("/v1/orders", json=other, headers=api.auth())
    assert kind(r2) == (409, "conflict")
    assert set(r2.json()["fields"]) == {"side", "quantity"}
    assert "side, quantity" in r2.json()["detail"]


def test_the_conflict_holds_from_the_read_models_and_after_an_amend(api: Api) -> None:
    first = api.order(client_order_id="idem-rm", price="99.50")
    order_id = api.client.post(
        "/v1/orders?wait=acknowledged&timeout=10", json=first, headers=api.auth()
    ).json()["order_id"]
    api.client.patch(f"/v1/orders/{order_id}", json={"quantity": "2"}, headers=api.auth())
    api.until(lambda: api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()["quantity"] == "2")
    fresh = TestClient(create_app(Services(api.log, api.publisher, api.db)))  # no memory of the submit
    same = fresh.post("/v1/orders", json={**first, "quantity": "1.000"}, headers=api.auth())
    assert (same.status_code, same.json()["order_id"]) == (202, order_id)
    r = fresh.post("/v1/orders", json={**first, "price": "99.40"}, headers=api.auth())
    assert kind(r) == (409, "conflict")
    assert r.json()["fields"] == ["price"]
    bulk = fresh.post("/v1/orders/bulk", json={"orders": [{**first, "quantity": "3"}]}, headers=api.auth())
    assert kind(bulk) == (409, "conflict")


# -- defect 8: cursors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cursor",
    [
        "99999999999999999999:x",
        "²:x",
        "-1:x",
        ":x",
        "12",
        "12:",
        "12:a b",
        "1" * 300 + ":x",
        "12:" + "x" * 300,
    ],
)
def test_a_tampered_cursor_is_a_bad_cursor(api: Api, cursor: str) -> None:
    r = api.client.get("/v1/orders", params={"cursor": cursor}, headers=api.auth())
    assert kind(r) == (400, "bad-cursor")


# -- defect 11: strategies on unknown instruments; one decimal syntax ------------------------------
def test_a_strategy_on_an_unknown_instrument_is_refused(api: Api) -> None:
    body = {"strategy_id": "s1", "kind": "logging", "account_id": "ACC-1", "instrument_id": "NOPE.SIM"}
    before = log_ends(api)
    r = api.client.post("/v1/strategies", json=body, headers=api.auth())
    assert kind(r) == (422, "unknown-instrument")
    assert log_ends(api) == before


@pytest.mark.parametrize(
    "quantity",
    ["1_000", " 0.01 ", "0.01 ", "1e3", "1E-2", "NaN", "Infinity", "-Infinity", "+1", ".5", "5.", "0x10",
     "٣", "0.0000000000000000001", 0.01, 1, None, True],
)  # fmt: skip
def test_a_quantity_has_one_decimal_syntax(api: Api, quantity: Any) -> None:
    before = log_ends(api)
    r = api.client.post("/v1/orders", json=api.order(quantity=quantity), headers=api.auth())
    assert kind(r) == (422, "validation")
    assert r.json()["errors"][0]["field"] == "quantity"
    assert log_ends(api) == before


@pytest.mark.parametrize("quantity", ["1_000", " 0.01 ", "1e3", "NaN"])
def test_a_strategy_quantity_has_the_same_syntax(api: Api, quantity: str) -> None:
    body = {
        "strategy_id": "d1",
        "kind": "delay",
        "account_id": "ACC-1",
        "instrument_id": "BTCUSDT.SIM",
        "params": {"quantity": quantity},
    }
    r = api.client.post("/v1/strategies", json=body, headers=api.auth())
    assert r.status_code == 422, r.text


# -- the CLI speaks the same syntax ----------------------------------------------------------------
@pytest.mark.parametrize("amount", ["1_000", " 0.01", "1e3", "NaN", "0x10", "0." + "0" * 18 + "1"])
def test_the_cli_refuses_amounts_out_of_the_syntax(amount: str) -> None:
    with pytest.raises(typer.BadParameter, match="quantity"):
        trading._decimal(amount, "quantity")
    assert trading._decimal("0.010", "quantity") == Decimal("0.010")


def test_the_cli_sends_limits_the_api_accepts(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: dict[str, Any] = {}
    monkeypatch.setattr(trading, "call", lambda method, path, body: sent.update(body))
    trading.risk_limits("account", "ACC-1", ["throttle_burst=20", "max_position=5", "price_band=0.05"])
    assert sent["throttle_burst"] == 20
    r = api.client.put("/v1/risk/limits", json=sent, headers=api.auth("ops"))
    assert r.status_code == 202, r.text


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads its memory from /proc")
def test_a_real_server_does_not_buffer_an_unauthenticated_chunked_body(api: Api) -> None:
    server = uvicorn.Server(uvicorn.Config(api.client.app, port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    api.until(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    before = rss_kib()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/orders HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n" % 65536 + b"[" * 65536 + b"\r\n"
        with contextlib.suppress(OSError):  # the server may close once it has answered
            for _ in range(1024):  # 64 MiB
                conn.sendall(chunk)
        answer = conn.recv(4096).decode()
    server.should_exit = True
    thread.join(timeout=10)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "urn:meltica:problem:too-large" in answer
    assert rss_kib() - before < 32 * 1024, "the server held on to the body"


def test_a_read_after_a_wait_shows_what_the_wait_answered(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """`?wait=` answers from the committed events; a read right after it waits for the projection."""
    monkeypatch.setattr(order_routes, "READ_YOUR_WRITES_S", 60.0)  # its 2 s, with room for a busy CPU
    roomy_limits(api)
    for i in range(5):
        r = api.client.post(
            "/v1/orders?wait=filled&timeout=10",
            json=api.order(client_order_id=f"ryw-{i}"),
            headers=api.auth(),
        )
        assert (r.status_code, r.json()["status"]) == (202, "FILLED")
        order_id = r.json()["order_id"]
        assert api.client.get(f"/v1/orders/{order_id}", headers=api.auth()).json()["status"] == "FILLED"
        events = api.client.get(f"/v1/orders/{order_id}/events", headers=api.auth()).json()["items"]
        assert events[-1]["type"] == "OrderFilled"
