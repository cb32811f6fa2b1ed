"""The fake Binance against real clients: httpx for REST, aiohttp for WebSockets, ccxt for both."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import httpx
import pytest

from tests.fakes.binance.fake import FakeBinance
from tests.fakes.binance.seed import DATA
from tests.fakes.binance.signing import sign, signed_query

WAIT = 30.0  # a bound for a broken run; a working one answers in milliseconds, a busy CPU in seconds


def signed(fake: FakeBinance, method: str, path: str, **params: object) -> httpx.Response:
    """A SIGNED request the way Binance documents it: HMAC-SHA256 of the query, key in X-MBX-APIKEY."""
    return send(fake, method, path, fake.secret, params)


def send(fake: FakeBinance, method: str, path: str, secret: str, params: dict[str, object]) -> httpx.Response:
    params.setdefault("timestamp", int(time.time() * 1000))
    query = signed_query(secret, params)
    return httpx.request(method, f"{fake.rest_url}{path}?{query}", headers={"X-MBX-APIKEY": fake.api_key})


def place(fake: FakeBinance, **params: object) -> httpx.Response:
    return send(fake, "POST", "/api/v3/order", fake.secret, params)


def ws_params(fake: FakeBinance, secret: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": fake.api_key, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = sign(secret or fake.secret, payload)
    return params


@asynccontextmanager
async def user_stream(fake: FakeBinance) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A WebSocket API connection subscribed to user data with ``userDataStream.subscribe.signature``."""
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{fake.ws_url}/ws-api/v3") as ws:
        await ws.send_json(
            {"id": "1", "method": "userDataStream.subscribe.signature", "params": ws_params(fake)}
        )
        answer = await ws.receive_json(timeout=WAIT)
        assert answer["status"] == 200, answer
        assert answer["result"] == {"subscriptionId": 0}
        yield ws


async def events(ws: aiohttp.ClientWebSocketResponse, count: int, kind: str = "executionReport") -> list[Any]:
    """The next ``count`` user-data events of ``kind`` (others skipped)."""
    found: list[Any] = []
    while len(found) < count:
        message = await ws.receive_json(timeout=WAIT)
        assert message["subscriptionId"] == 0
        if message["event"]["e"] == kind:
            found.append(message["event"])
    return found


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most ``WAIT`` seconds) for ``condition``."""
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)


def test_signed_endpoints_check_the_hmac_signature(fake_binance: FakeBinance) -> None:
    ok = signed(fake_binance, "GET", "/api/v3/account")
    assert ok.status_code == 200
    assert {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"} in ok.json()["balances"]
    bad = send(fake_binance, "GET", "/api/v3/account", "not-the-secret", {})
    assert bad.status_code == 400
    assert bad.json() == {"code": -1022, "msg": "Signature for this request is not valid."}
    # the signature also covers a form body (what ccxt sends for POST)
    body = signed_query(
        fake_binance.secret,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "10000",
            "timestamp": int(time.time() * 1000),
        },
    )
    headers = {"X-MBX-APIKEY": fake_binance.api_key, "Content-Type": "application/x-www-form-urlencoded"}
    posted = httpx.post(f"{fake_binance.rest_url}/api/v3/order", content=body, headers=headers)
    assert posted.status_code == 200, posted.text
    tampered = httpx.post(
        f"{fake_binance.rest_url}/api/v3/order", content=body.replace("0.001", "0.002"), headers=headers
    )
    assert tampered.json()["code"] == -1022
    no_key = httpx.get(f"{fake_binance.rest_url}/api/v3/account?timestamp=1&signature=00")
    assert (no_key.status_code, no_key.json()["code"]) == (401, -2014)


def test_timestamp_outside_recv_window_is_refused(fake_binance: FakeBinance) -> None:
    stale = signed(fake_binance, "GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 6000)
    assert stale.status_code == 400
    assert stale.json() == {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    widened = signed(
        fake_binance, "GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 6000, recvWindow=10000
    )
    assert widened.status_code == 200
    fake_binance.skew_clock(-3000)  # the server is behind: the client's timestamp is in its future
    ahead = signed(fake_binance, "GET", "/api/v3/account")
    assert ahead.json()["code"] == -1021
    assert "ahead of the server's time" in ahead.json()["msg"]


def test_limit_order_rests_then_fills_with_execution_reports(fake_binance: FakeBinance) -> None:
    async def scenario() -> list[Any]:
        async with user_stream(fake_binance) as ws:
            fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})
            placed = await asyncio.to_thread(
                place,
                fake_binance,
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.003",
                price="50000",
                newClientOrderId="meltica-1",
            )
            assert placed.status_code == 200, placed.text
            assert placed.json()["status"] == "NEW"
            assert placed.json()["fills"] == []
            assert fake_binance.balance("USDT") == (Decimal("9850"), Decimal("150"))
            fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"49990": "0.001", "51000": "1"})
            fake_binance.trade("BTCUSDT", "49999", "5")
            return await events(ws, 3)

    new, partial, filled = asyncio.run(scenario())
    assert [(e["x"], e["X"]) for e in (new, partial, filled)] == [
        ("NEW", "NEW"),
        ("TRADE", "PARTIALLY_FILLED"),
        ("TRADE", "FILLED"),
    ]
    assert {e["c"] for e in (new, partial, filled)} == {"meltica-1"}
    assert (partial["l"], partial["L"], partial["z"], partial["m"]) == (
        "0.00100000",
        "50000.00000000",
        "0.00100000",
        True,
    )
    assert (filled["l"], filled["z"], filled["Z"]) == ("0.00200000", "0.00300000", "150.00000000")
    assert (filled["n"], filled["N"]) == ("0.00000200", "BTC")
    assert partial["t"] != filled["t"]
    assert fake_binance.balance("USDT") == (Decimal("9850"), Decimal("0"))
    assert fake_binance.balance("BTC") == (Decimal("1.002997"), Decimal("0"))
    trades = signed(fake_binance, "GET", "/api/v3/myTrades", symbol="BTCUSDT", fromId=partial["t"] + 1)
    assert [t["id"] for t in trades.json()] == [filled["t"]]


def keys(name: str, kind: str = "http_json") -> set[str]:
    recorded = json.loads((DATA / kind / f"{name}.json").read_text())
    entry = recorded[0] if isinstance(recorded, list) else recorded.get("event", recorded)
    return set(entry)


def test_answers_and_events_have_the_recorded_shapes(fake_binance: FakeBinance) -> None:
    async def scenario() -> list[Any]:
        async with user_stream(fake_binance) as ws:
            fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"50000": "1"})
            placed = await asyncio.to_thread(
                place, fake_binance, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"
            )
            fake_binance.deposit("BTC", "0.5")
            got = []
            for _ in range(4):  # NEW, TRADE, outboundAccountPosition, balanceUpdate
                got.append((await ws.receive_json(timeout=WAIT))["event"])
            return [placed.json(), *got]

    placed, *events_seen = asyncio.run(scenario())
    assert set(placed) == keys("new_order_full_response")
    assert set(placed["fills"][0]) == set(
        json.loads((DATA / "http_json" / "new_order_full_response.json").read_text())["fills"][0]
    )
    by_kind = {e["e"]: set(e) for e in events_seen}
    assert by_kind["executionReport"] == keys("execution_report_wrapped", "user_data_json")
    assert by_kind["outboundAccountPosition"] == keys("account_position_wrapped", "user_data_json")
    assert by_kind["balanceUpdate"] == keys("balance_update_wrapped", "user_data_json")
    limit = place(
        fake_binance,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.001",
        price="40000",
    ).json()
    queried = signed(fake_binance, "GET", "/api/v3/order", symbol="BTCUSDT", orderId=limit["orderId"])
    assert set(queried.json()) == keys("order_response")
    canceled = signed(fake_binance, "DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=limit["orderId"])
    assert set(canceled.json()) == keys("cancel_order_response")
    mine = signed(fake_binance, "GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
    assert set(mine[0]) == keys("account_trades_response")
    public = httpx.get(f"{fake_binance.rest_url}/api/v3/trades", params={"symbol": "BTCUSDT"}).json()
    assert set(public[0]) == keys("trades_response")
    depth = httpx.get(f"{fake_binance.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT"}).json()
    assert set(depth) == keys("depth_response")
    ticker = httpx.get(f"{fake_binance.rest_url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"})
    assert set(ticker.json()) == keys("book_ticker_response")
    assert set(httpx.get(f"{fake_binance.rest_url}/api/v3/time").json()) == keys("server_time_response")
    info = httpx.get(f"{fake_binance.rest_url}/api/v3/exchangeInfo").json()
    assert set(info["symbols"][0]) == set(
        json.loads((DATA / "http_json" / "exchange_info_response.json").read_text())["symbols"][0]
    )
    assert [f["filterType"] for f in info["symbols"][0]["filters"]] == [
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "NOTIONAL",
    ]


def test_market_order_takes_the_book_level_by_level(fake_binance: FakeBinance) -> None:
    fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"50000": "0.001", "50001": "0.001"})
    answer = place(fake_binance, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.003").json()
    assert answer["status"] == "EXPIRED"  # the book held only 0.002
    assert [(f["price"], f["qty"]) for f in answer["fills"]] == [
        ("50000.00000000", "0.00100000"),
        ("50001.00000000", "0.00100000"),
    ]
    assert answer["cummulativeQuoteQty"] == "100.00100000"
    assert fake_binance.balance("USDT") == (Decimal("9899.999"), Decimal("0"))
    book = httpx.get(f"{fake_binance.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT"}).json()
    assert book["asks"] == []


def test_cancel_releases_the_funds_and_unknown_orders_are_refused(fake_binance: FakeBinance) -> None:
    order = place(
        fake_binance,
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.5",
        price="60000",
        newClientOrderId="sell-1",
    ).json()
    assert fake_binance.balance("BTC") == (Decimal("0.5"), Decimal("0.5"))
    listed = signed(fake_binance, "GET", "/api/v3/openOrders", symbol="BTCUSDT").json()
    assert [o["clientOrderId"] for o in listed] == ["sell-1"]
    canceled = signed(
        fake_binance,
        "DELETE",
        "/api/v3/order",
        symbol="BTCUSDT",
        origClientOrderId="sell-1",
        newClientOrderId="cxl-1",
    )
    assert canceled.json()["status"] == "CANCELED"
    assert (canceled.json()["origClientOrderId"], canceled.json()["clientOrderId"]) == ("sell-1", "cxl-1")
    assert fake_binance.balance("BTC") == (Decimal("1"), Decimal("0"))
    again = signed(fake_binance, "DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert (again.status_code, again.json()) == (400, {"code": -2011, "msg": "Unknown order sent."})
    queried = signed(fake_binance, "GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert queried.json()["status"] == "CANCELED"
    missing = signed(fake_binance, "GET", "/api/v3/order", symbol="BTCUSDT", orderId=999)
    assert missing.json() == {"code": -2013, "msg": "Order does not exist."}


def test_insufficient_balance_and_filter_failures(fake_binance: FakeBinance) -> None:
    def code(**params: object) -> tuple[int, int, str]:
        answer = place(fake_binance, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", **params)
        return answer.status_code, answer.json()["code"], answer.json()["msg"]

    assert code(quantity="1", price="50000") == (
        400,
        -2010,
        "Account has insufficient balance for requested action.",
    )
    assert code(quantity="0.001", price="50000.001") == (400, -1013, "Filter failure: PRICE_FILTER")
    assert code(quantity="0.0000015", price="50000") == (400, -1013, "Filter failure: LOT_SIZE")
    assert code(quantity="0.00001", price="50000") == (400, -1013, "Filter failure: NOTIONAL")
    assert fake_binance.open_orders() == []


def test_weight_limit_answers_429_with_retry_after(fake_binance: FakeBinance) -> None:
    fake_binance.set_weight_limit(30)
    first = httpx.get(f"{fake_binance.rest_url}/api/v3/exchangeInfo")
    assert first.headers["X-MBX-USED-WEIGHT-1M"] == "20"
    second = httpx.get(f"{fake_binance.rest_url}/api/v3/exchangeInfo")
    if second.status_code == 200:  # the minute turned between the two: the window restarted
        second = httpx.get(f"{fake_binance.rest_url}/api/v3/exchangeInfo")
    assert second.status_code == 429
    assert second.json()["code"] == -1003
    assert 1 <= int(second.headers["Retry-After"]) <= 60


def test_depth_snapshot_and_diffs_agree_by_update_id(fake_binance: FakeBinance) -> None:
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{fake_binance.ws_url}/ws/btcusdt@depth") as ws,
        ):
            fake_binance.set_book("BTCUSDT", {"100": "1", "99": "2"}, {"101": "1"})
            fake_binance.set_book("BTCUSDT", {"100": "3"}, {"101": "1", "102": "5"})
            snapshot = httpx.get(f"{fake_binance.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT"}).json()
            fake_binance.set_book("BTCUSDT", {"100": "3", "98": "1"}, {"102": "4"})
            return snapshot, [await ws.receive_json(timeout=WAIT) for _ in range(3)]

    snapshot, diffs = asyncio.run(scenario())
    for before, after in itertools.pairwise(diffs):
        assert after["U"] == before["u"] + 1
    bids = dict(snapshot["bids"])
    asks = dict(snapshot["asks"])
    last = snapshot["lastUpdateId"]
    applicable = [d for d in diffs if d["u"] > last]
    assert applicable[0]["U"] <= last + 1 <= applicable[0]["u"]
    for diff in applicable:
        for side, changes in ((bids, diff["b"]), (asks, diff["a"])):
            for price, qty in changes:
                if Decimal(qty):
                    side[price] = qty
                else:
                    side.pop(price, None)
    final = httpx.get(f"{fake_binance.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT"}).json()
    assert final["lastUpdateId"] == diffs[-1]["u"]
    assert sorted(bids.items(), key=lambda x: Decimal(x[0]), reverse=True) == [
        tuple(x) for x in final["bids"]
    ]
    assert sorted(asks.items(), key=lambda x: Decimal(x[0])) == [tuple(x) for x in final["asks"]]


def test_market_streams_trade_and_book_ticker(fake_binance: FakeBinance) -> None:
    async def scenario() -> list[Any]:
        url = f"{fake_binance.ws_url}/stream?streams=btcusdt@trade/btcusdt@bookTicker"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            fake_binance.set_book("BTCUSDT", {"100": "1"}, {"101": "2"})
            fake_binance.trade("BTCUSDT", "100.5", "0.25")
            return [await ws.receive_json(timeout=WAIT) for _ in range(2)]

    ticker, trade = asyncio.run(scenario())
    assert ticker["stream"] == "btcusdt@bookTicker"
    assert {k: ticker["data"][k] for k in "sbBaA"} == {
        "s": "BTCUSDT",
        "b": "100.00000000",
        "B": "1.00000000",
        "a": "101.00000000",
        "A": "2.00000000",
    }
    assert trade["stream"] == "btcusdt@trade"
    assert (trade["data"]["e"], trade["data"]["p"], trade["data"]["q"]) == (
        "trade",
        "100.50000000",
        "0.25000000",
    )


def test_user_stream_subscription_checks_the_signature(fake_binance: FakeBinance) -> None:
    async def scenario() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{fake_binance.ws_url}/ws-api/v3") as ws,
        ):
            await ws.send_json(
                {
                    "id": 7,
                    "method": "userDataStream.subscribe.signature",
                    "params": ws_params(fake_binance, secret="wrong"),
                }
            )
            answer: dict[str, Any] = await ws.receive_json(timeout=WAIT)
            return answer

    answer = asyncio.run(scenario())
    assert (answer["id"], answer["status"], answer["error"]["code"]) == (7, 400, -1022)


def test_faults_lose_duplicate_and_drop_user_messages(fake_binance: FakeBinance) -> None:
    async def scenario() -> tuple[list[Any], aiohttp.WSMessage]:
        async with user_stream(fake_binance) as ws:
            fake_binance.lose_next_user_message()
            fake_binance.duplicate_next_user_message()
            fake_binance.deposit("ETH", "1")  # lost
            fake_binance.deposit("ETH", "2")  # sent twice
            fake_binance.deposit("ETH", "3")
            got = await events(ws, 3, kind="balanceUpdate")
            assert fake_binance.drop_user_stream() == 1
            closed = await ws.receive(timeout=WAIT)
            return got, closed

    got, closed = asyncio.run(scenario())
    assert [e["d"] for e in got] == ["2.00000000", "2.00000000", "3.00000000"]
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert fake_binance.balance("ETH") == (Decimal("6"), Decimal("0"))


def test_fill_while_no_client_is_connected_is_found_by_reconciliation(fake_binance: FakeBinance) -> None:
    order = place(
        fake_binance,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="40000",
    ).json()
    fill = fake_binance.fill_order(order["orderId"], "0.004")
    trades = signed(fake_binance, "GET", "/api/v3/myTrades", symbol="BTCUSDT", fromId=1).json()
    assert [(t["id"], t["orderId"], t["qty"]) for t in trades] == [
        (fill.trade_id, order["orderId"], "0.00400000")
    ]
    queried = signed(fake_binance, "GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"]).json()
    assert (queried["status"], queried["executedQty"]) == ("PARTIALLY_FILLED", "0.00400000")


def test_delay_next_ack_holds_the_answer(fake_binance: FakeBinance) -> None:
    fake_binance.delay_next_ack(0.3)
    started = time.monotonic()
    place(
        fake_binance,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.001",
        price="30000",
    )
    assert time.monotonic() - started >= 0.3


def test_faults_5xx_429_and_a_held_ack(fake_binance: FakeBinance) -> None:
    fake_binance.fail_next(2, status=502)
    assert [httpx.get(f"{fake_binance.rest_url}/api/v3/ping").status_code for _ in range(3)] == [
        502,
        502,
        200,
    ]
    fake_binance.throttle_next(1, retry_after=7)
    throttled = httpx.get(f"{fake_binance.rest_url}/api/v3/ping")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")

    fake_binance.hold_next_ack()

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        ack = asyncio.create_task(
            asyncio.to_thread(
                place,
                fake_binance,
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price="30000",
                newClientOrderId="slow-1",
            )
        )
        await until(lambda: bool(fake_binance.open_orders()))
        cancel = await asyncio.to_thread(
            signed, fake_binance, "DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="slow-1"
        )
        assert not ack.done()
        fake_binance.release_ack()
        return await ack, cancel

    ack, cancel = asyncio.run(scenario())
    assert cancel.json()["status"] == "CANCELED"
    assert ack.json()["clientOrderId"] == "slow-1"  # the ack arrives after the cancel


def test_cancel_replace(fake_binance: FakeBinance) -> None:
    order = place(
        fake_binance,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.001",
        price="30000",
    ).json()
    replaced = signed(
        fake_binance,
        "POST",
        "/api/v3/order/cancelReplace",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="31000",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=order["orderId"],
    ).json()
    assert (replaced["cancelResult"], replaced["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert replaced["newOrderResponse"]["origQty"] == "0.00200000"
    failed = signed(
        fake_binance,
        "POST",
        "/api/v3/order/cancelReplace",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="31000",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=order["orderId"],
    )
    assert failed.status_code == 400
    assert failed.json()["code"] == -2022
    assert failed.json()["data"]["cancelResponse"]["code"] == -2011
    assert [o.price for o in fake_binance.open_orders()] == [Decimal("31000")]


def test_ccxt_places_and_watches_an_order(fake_binance: FakeBinance) -> None:
    ccxt_pro = pytest.importorskip("ccxt.pro")

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        exchange = ccxt_pro.binance(
            {
                "apiKey": fake_binance.api_key,
                "secret": fake_binance.secret,
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                    "fetchMargins": False,
                },
            }
        )
        for name in ("public", "private", "v1"):
            exchange.urls["api"][name] = f"{fake_binance.rest_url}/api/{'v1' if name == 'v1' else 'v3'}"
        exchange.urls["api"]["ws"]["spot"] = f"{fake_binance.ws_url}/ws"
        exchange.urls["api"]["ws"]["ws-api"]["spot"] = f"{fake_binance.ws_url}/ws-api/v3"
        updates: list[dict[str, Any]] = []

        async def collect() -> None:
            while True:
                updates.extend(await exchange.watch_orders("BTC/USDT"))

        collector = asyncio.create_task(collect())
        try:
            await until(lambda: bool(fake_binance.streams.user_connections()) or collector.done())
            order = await exchange.create_order(
                "BTC/USDT", "limit", "buy", 0.002, 45000, {"clientOrderId": "ccxt-1"}
            )
            await asyncio.to_thread(fake_binance.trade, "BTCUSDT", "44000", "1")
            await until(lambda: any(u["status"] == "closed" for u in updates) or collector.done())
            return order, updates
        finally:
            collector.cancel()
            await exchange.close()

    order, updates = asyncio.run(scenario())
    assert (order["clientOrderId"], order["status"], order["price"]) == ("ccxt-1", "open", 45000.0)
    assert updates[-1]["status"] == "closed"
    assert updates[-1]["filled"] == 0.002


def test_ccxt_order_book_follows_the_depth_stream(fake_binance: FakeBinance) -> None:
    ccxt_pro = pytest.importorskip("ccxt.pro")

    async def scenario() -> tuple[dict[str, Any], int]:
        exchange = ccxt_pro.binance(
            {
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                    "fetchMargins": False,
                }
            }
        )
        exchange.urls["api"]["public"] = f"{fake_binance.rest_url}/api/v3"
        exchange.urls["api"]["ws"]["spot"] = f"{fake_binance.ws_url}/ws"
        fake_binance.set_book("BTCUSDT", {"100": "1"}, {"101": "1"})
        try:
            async with asyncio.timeout(WAIT):
                watching = asyncio.create_task(exchange.watch_order_book("BTC/USDT"))
                step = 1
                while not watching.done():  # ccxt takes the REST snapshot once diffs flow
                    step += 1
                    await asyncio.to_thread(
                        fake_binance.set_book, "BTCUSDT", {"100": str(step)}, {"101": "1"}
                    )
                    await asyncio.sleep(0.02)
                last = await asyncio.to_thread(fake_binance.depth_update_id, "BTCUSDT")
                await until(lambda: exchange.orderbooks["BTC/USDT"]["nonce"] == last)
            return exchange.orderbooks["BTC/USDT"], step
        finally:
            await exchange.close()

    book, step = asyncio.run(scenario())
    assert book["bids"] == [[100.0, float(step)]]
    assert book["asks"] == [[101.0, 1.0]]


def test_ioc_expires_its_rest_and_limit_maker_never_takes(fake_binance: FakeBinance) -> None:
    fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"50000": "0.001"})
    ioc = place(
        fake_binance,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="IOC",
        quantity="0.002",
        price="50000",
    ).json()
    assert (ioc["status"], ioc["executedQty"]) == ("EXPIRED", "0.00100000")
    assert fake_binance.balance("USDT") == (Decimal("9950"), Decimal("0"))
    fake_binance.set_balance("BTC", "2")
    fok = place(
        fake_binance,
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        timeInForce="FOK",
        quantity="1.5",
        price="48000",
    ).json()
    assert (fok["status"], fok["executedQty"]) == ("EXPIRED", "0.00000000")  # the book holds only 1
    assert fake_binance.balance("BTC") == (Decimal("2"), Decimal("0"))  # the lock is released
    maker = place(
        fake_binance, symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER", quantity="0.001", price="49000"
    )
    assert maker.json() == {"code": -2010, "msg": "Order would immediately match and take."}
    market = place(
        fake_binance, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", timeInForce="GTC"
    )
    assert market.json() == {"code": -1106, "msg": "Parameter 'timeInForce' sent when not required."}
