"""The aiohttp application: REST routing with weights, signatures and faults; market and user WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.binance import errors
from tests.fakes.binance.rest import Params, Rest
from tests.fakes.binance.signing import verify_rest, verify_ws
from tests.fakes.binance.streams import CLOSE, Connection
from tests.fakes.binance.weights import weight_of

if TYPE_CHECKING:
    from tests.fakes.binance.fake import FakeBinance

Handler = Callable[[Params], Any]

ORDER_ENDPOINTS = {
    ("POST", "/api/v3/order"),
    ("POST", "/api/v3/order/cancelReplace"),
    ("PUT", "/api/v3/order/cancelReplace"),
}


def routes(rest: Rest) -> dict[tuple[str, str], tuple[Handler, bool]]:
    """(method, path) -> (handler, signed)."""
    return {
        ("GET", "/api/v3/ping"): (rest.ping, False),
        ("GET", "/api/v3/time"): (rest.time, False),
        ("GET", "/api/v3/exchangeInfo"): (rest.exchange_info, False),
        ("GET", "/api/v3/depth"): (rest.depth, False),
        ("GET", "/api/v3/ticker/bookTicker"): (rest.book_ticker, False),
        ("GET", "/api/v3/trades"): (rest.trades, False),
        ("POST", "/api/v3/order"): (rest.new_order, True),
        ("DELETE", "/api/v3/order"): (rest.cancel_order, True),
        ("GET", "/api/v3/order"): (rest.query_order, True),
        ("GET", "/api/v3/openOrders"): (rest.open_orders, True),
        ("GET", "/api/v3/myTrades"): (rest.my_trades, True),
        ("GET", "/api/v3/account"): (rest.account, True),
        ("POST", "/api/v3/order/cancelReplace"): (rest.cancel_replace, True),
        ("PUT", "/api/v3/order/cancelReplace"): (rest.cancel_replace, True),
    }


def error_response(exc: errors.BinanceError, extra: dict[str, str]) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers={**extra, **exc.headers})


def make_app(fake: FakeBinance) -> web.Application:
    table = routes(Rest(fake))

    async def api(request: web.Request) -> web.StreamResponse:
        key = (request.method, request.path)
        if key not in table:
            return web.json_response({"code": -1020, "msg": "This operation is not supported."}, status=404)
        handler, signed = table[key]
        fake.requests.append(key)
        headers: dict[str, str] = {}
        body = await request.text()
        try:
            status = fake.faults.take_fail()
            if status is not None:
                raise errors.internal_error(status)
            if fake.faults.take_throttle():
                raise errors.too_many_requests(fake.weights.limit, fake.faults.throttle_retry_after)
            params: Params = dict(request.query)
            now = fake.now_ms()
            weight = weight_of(request.method, request.path, params)
            try:
                headers["X-MBX-USED-WEIGHT-1M"] = str(fake.weights.charge(weight, now))
            except errors.BinanceError:
                headers["X-MBX-USED-WEIGHT-1M"] = str(fake.weights.used)
                raise
            if signed:
                params = verify_rest(
                    request.rel_url.raw_query_string,
                    body,
                    request.headers.get("X-MBX-APIKEY"),
                    fake.keys,
                    now,
                )
            if key in ORDER_ENDPOINTS:
                fake.order_times.append(now)
                recent = sum(1 for t in fake.order_times if now - t < 10_000)
                headers["X-MBX-ORDER-COUNT-10S"] = str(recent)
                headers["X-MBX-ORDER-COUNT-1D"] = str(len(fake.order_times))
            answer = handler(params)
        except errors.BinanceError as exc:
            return error_response(exc, headers)
        if key == ("POST", "/api/v3/order"):
            delay = fake.faults.take_ack_delay()
            if delay:
                await asyncio.sleep(delay)
            if fake.faults.take_ack_hold():
                await fake.ack_gate.wait()
        return web.json_response(answer, headers=headers)

    async def market_ws(request: web.Request) -> web.StreamResponse:
        conn = Connection(combined=request.path.startswith("/stream"))
        names = request.query.get("streams", "") if conn.combined else request.match_info.get("streams", "")
        conn.streams.update(s for s in names.split("/") if s)
        return await serve(request, conn, lambda msg: market_request(conn, msg))

    async def ws_api(request: web.Request) -> web.StreamResponse:
        conn = Connection()
        return await serve(request, conn, lambda msg: api_request(fake, conn, msg))

    async def serve(
        request: web.Request, conn: Connection, on_message: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        fake.streams.connections.add(conn)
        writer = asyncio.create_task(pump(ws, conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    request_body = json.loads(msg.data)
                except ValueError:
                    conn.send(
                        {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
                    )
                    continue
                answer = on_message(request_body)
                if answer is not None:
                    conn.send(answer)
        finally:
            fake.streams.connections.discard(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    app = web.Application()
    app.router.add_route("*", "/api/v3/{tail:.*}", api)
    app.router.add_get("/ws", market_ws)
    app.router.add_get("/ws/{streams:.*}", market_ws)
    app.router.add_get("/stream", market_ws)
    app.router.add_get("/ws-api/v3", ws_api)
    return app


async def pump(ws: web.WebSocketResponse, conn: Connection) -> None:
    while True:
        message = await conn.queue.get()
        if message is CLOSE:
            await ws.close()
            return
        await ws.send_str(json.dumps(message))


def market_request(conn: Connection, msg: dict[str, Any]) -> dict[str, Any] | None:
    """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market-stream connection."""
    method, params, request_id = msg.get("method"), msg.get("params") or [], msg.get("id")
    if method == "SUBSCRIBE":
        conn.streams.update(params)
        return {"result": None, "id": request_id}
    if method == "UNSUBSCRIBE":
        conn.streams.difference_update(params)
        return {"result": None, "id": request_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": sorted(conn.streams), "id": request_id}
    return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": request_id}


def api_request(fake: FakeBinance, conn: Connection, msg: dict[str, Any]) -> dict[str, Any]:
    """One WebSocket API request: ``{"id", "method", "params"}`` -> ``{"id", "status", "result"|"error"}``."""
    request_id, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
    rate_limits = [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": fake.weights.limit,
            "count": fake.weights.used,
        }
    ]
    try:
        now = fake.now_ms()
        if method == "userDataStream.subscribe.signature":
            fake.weights.charge(2, now)
            verify_ws(params, fake.keys, now)
            result: Any = {"subscriptionId": fake.streams.subscribe_user(conn)}
        elif method == "userDataStream.unsubscribe":
            sid = params.get("subscriptionId")
            if sid is None:
                conn.user_subscriptions.clear()
            else:
                conn.user_subscriptions.discard(int(sid))
            result = {}
        elif method == "ping":
            result = {}
        elif method == "time":
            result = {"serverTime": now}
        else:
            raise errors.BinanceError(400, -1020, "This operation is not supported.")
    except errors.BinanceError as exc:
        return {"id": request_id, "status": exc.status, "error": exc.body(), "rateLimits": rate_limits}
    rate_limits[0]["count"] = fake.weights.used
    return {"id": request_id, "status": 200, "result": result, "rateLimits": rate_limits}
