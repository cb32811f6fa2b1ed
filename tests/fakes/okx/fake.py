"""``FakeOkx``: OKX v5's public REST and public websocket on ``127.0.0.1:<free port>``, in a thread.

REST: ``GET /api/v5/public/instruments?instType=SPOT`` (the recorded instruments) and
``GET /api/v5/market/books?instId=&sz=``. Websocket ``/ws/v5/public``: ``{"op": "subscribe" |
"unsubscribe", "args": [{"channel", "instId"}]}`` answered with ``{"event": ..., "arg", "connId"}``
(``60018`` for an unknown instId), text ``ping`` with ``pong``; channels ``books`` (a snapshot on
subscribing, then updates chained by ``prevSeqId``/``seqId`` with OKX's checksum), ``bbo-tbt`` and
``trades``. Faults: a book update sent with a corrupted checksum, one not sent (its seqId skipped),
every socket dropped. The account (``private.py``): signed ``/api/v5/trade/*`` and
``/api/v5/account/balance``, the private websocket ``/ws/v5/private`` (``login``, ``orders``), with
faults 5xx, 429 and a dropped private socket. Every hook runs on the server's loop (``_call``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.okx import private
from tests.fakes.okx.book import FakeBook, recorded_book, recorded_instruments
from tests.fakes.threaded import ThreadedServer

CLOSE = object()


@dataclass(eq=False)
class _Socket:
    """One public websocket: its subscriptions and what waits to be sent."""

    conn_id: str
    subscribed: set[tuple[str, str]] = field(default_factory=set)
    logged_in: bool = False
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def send(self, message: object) -> None:
        self.queue.put_nowait(message)


@dataclass
class Faults:
    corrupt_checksums: int = 0  # book updates still to send with a wrong checksum
    lose_updates: int = 0  # book updates still to leave unsent (their seqIds are skipped)
    fail: int = 0  # private REST calls still to answer `fail_status`
    fail_status: int = 503
    throttle: int = 0  # private REST calls still to answer 429 (50011)

    def take_fail(self) -> int | None:
        if not self.fail:
            return None
        self.fail -= 1
        return self.fail_status


class FakeOkx(ThreadedServer):
    """OKX spot market data; books start from the recorded snapshot's levels (``BTC-USD``)."""

    NAME = "OKX"

    def __init__(
        self, api_key: str = "fake-key", secret: str = "fake-secret", passphrase: str = "fake-pass"
    ) -> None:
        super().__init__()
        self.api_key, self.secret, self.passphrase = api_key, secret, passphrase
        self.account = private.Account(self)
        self.private_sockets: set[_Socket] = set()
        self.clock_skew_ms = 0
        self.instruments = recorded_instruments()
        self.books: dict[str, FakeBook] = {"BTC-USD": recorded_book("BTC-USD")}
        self.faults = Faults()
        self.sockets: set[_Socket] = set()
        self.requests: list[str] = []  # REST paths asked, in order
        self.subscribes: list[tuple[str, str]] = []  # (channel, instId) of every subscribe op
        self._trade_ids = itertools.count(1)
        self._conn_ids = itertools.count(1)

    # --- lifecycle -------------------------------------------------------------------------------------
    async def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v5/public/instruments", self._instruments)
        app.router.add_get("/api/v5/market/books", self._rest_books)
        app.router.add_get("/ws/v5/public", self._public_ws)
        app.router.add_get("/ws/v5/private", self._private_ws)
        app.router.add_route("*", "/api/v5/trade/{tail:.*}", self._private_rest)
        app.router.add_route("*", "/api/v5/account/{tail:.*}", self._private_rest)
        return app

    def _before_stop(self) -> None:
        self._call(self.drop_sockets)
        self.drop_private()

    def now_ms(self) -> int:
        return _now_ms() + self.clock_skew_ms

    # --- REST ------------------------------------------------------------------------------------------
    async def _private_rest(self, request: web.Request) -> web.Response:
        return await private.private_rest(self, request)

    async def _instruments(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if request.query.get("instType") != "SPOT":
            return _error("51000", "Parameter instType error")
        return _ok(self.instruments)

    async def _rest_books(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        book = self.books.get(request.query.get("instId", ""))
        if book is None:
            return _error("51001", "Instrument ID does not exist")
        depth = int(request.query.get("sz", "1"))
        data = book.snapshot(_now_ms())
        return _ok([{"asks": data["asks"][:depth], "bids": data["bids"][:depth], "ts": data["ts"]}])

    # --- the public websocket --------------------------------------------------------------------------
    async def _public_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(request, self.sockets, lambda sock, body: self._op(sock, body))  # noqa: PLW0108 # looked up per message: a test may wrap it

    async def _private_ws(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve_ws(
            request, self.private_sockets, lambda sock, body: private.private_op(self, sock, body)
        )

    async def _serve_ws(
        self, request: web.Request, sockets: set[_Socket], on_op: Callable[[_Socket, dict[str, Any]], None]
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        sock = _Socket(f"c{next(self._conn_ids)}")
        sockets.add(sock)
        writer = asyncio.create_task(_pump(ws, sock))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                if msg.data == "ping":
                    sock.send("pong")
                    continue
                try:
                    request_body = json.loads(msg.data)
                except ValueError:
                    sock.send({"event": "error", "code": "60012", "msg": f"Invalid request: {msg.data}"})
                    continue
                on_op(sock, request_body)
        finally:
            sockets.discard(sock)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    def _op(self, sock: _Socket, body: Mapping[str, Any]) -> None:
        op = body.get("op")
        if op not in ("subscribe", "unsubscribe"):
            sock.send(
                {"event": "error", "code": "60012", "msg": f"Invalid request: {op}", "connId": sock.conn_id}
            )
            return
        known = {i["instId"] for i in self.instruments}
        for arg in body.get("args") or []:
            channel, inst_id = str(arg.get("channel")), str(arg.get("instId"))
            if channel not in ("books", "bbo-tbt", "trades") or inst_id not in known:
                sock.send(
                    {
                        "event": "error",
                        "code": "60018",
                        "msg": f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist",
                        "connId": sock.conn_id,
                    }
                )
                continue
            sock.send({"event": op, "arg": {"channel": channel, "instId": inst_id}, "connId": sock.conn_id})
            if op == "unsubscribe":
                sock.subscribed.discard((channel, inst_id))
                continue
            self.subscribes.append((channel, inst_id))
            sock.subscribed.add((channel, inst_id))
            if channel == "books":
                book = self.books.setdefault(inst_id, FakeBook(inst_id))
                sock.send(_push("books", inst_id, [book.snapshot(_now_ms())], "snapshot"))

    def _publish(self, channel: str, inst_id: str, message: dict[str, Any]) -> None:
        for sock in self.sockets:
            if (channel, inst_id) in sock.subscribed:
                sock.send(message)

    # --- hooks -----------------------------------------------------------------------------------------
    def set_book(self, inst_id: str, bids: Mapping[str, str], asks: Mapping[str, str]) -> None:
        """Replace the book (price and size strings as OKX would send them); an update and a bbo go out."""

        def run() -> None:
            book = self.books.setdefault(inst_id, FakeBook(inst_id))
            update = book.replace(dict(bids), dict(asks), _now_ms())
            if self.faults.lose_updates:
                self.faults.lose_updates -= 1
            else:
                if self.faults.corrupt_checksums:
                    self.faults.corrupt_checksums -= 1
                    update["checksum"] = update["checksum"] ^ 0x5A5A
                self._publish("books", inst_id, _push("books", inst_id, [update], "update"))
            self._publish("bbo-tbt", inst_id, _push("bbo-tbt", inst_id, [book.best(_now_ms())]))

        self._call(run)

    def keep_alive(self, inst_id: str) -> None:
        """The update OKX sends when the book did not move: no levels, ``prevSeqId == seqId``."""

        def run() -> None:
            book = self.books[inst_id]
            data = {"asks": [], "bids": [], "ts": str(_now_ms()), "checksum": book.checksum()}
            self._publish(
                "books",
                inst_id,
                _push("books", inst_id, [{**data, "prevSeqId": book.seq, "seqId": book.seq}], "update"),
            )

        self._call(run)

    def trade(self, inst_id: str, price: str, size: str, side: str = "buy") -> str:
        """Print a trade (``side`` the taker's); returns its tradeId."""

        def run() -> str:
            trade_id = str(next(self._trade_ids))
            data = {
                "instId": inst_id,
                "tradeId": trade_id,
                "px": price,
                "sz": size,
                "side": side,
                "ts": str(_now_ms()),
                "count": "1",
            }
            self._publish("trades", inst_id, _push("trades", inst_id, [data]))
            return trade_id

        return self._call(run)

    def book(self, inst_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """The fake's book of ``inst_id``: (bids, asks), price text -> size text."""
        return self._call(lambda: (dict(self.books[inst_id].bids), dict(self.books[inst_id].asks)))

    def corrupt_next_checksum(self, n: int = 1) -> None:
        """The next ``n`` book updates carry a checksum their levels do not give."""
        self._call(lambda: setattr(self.faults, "corrupt_checksums", self.faults.corrupt_checksums + n))

    def skip_next_update(self, n: int = 1) -> None:
        """The next ``n`` book updates are not sent (the next one's prevSeqId names one never seen)."""
        self._call(lambda: setattr(self.faults, "lose_updates", self.faults.lose_updates + n))

    def push_private(self, message: dict[str, Any]) -> None:
        for sock in self.private_sockets:
            if sock.logged_in and ({("orders", "SPOT"), ("orders", "ANY")} & sock.subscribed):
                sock.send(message)

    def set_balance(self, ccy: str, available: str) -> None:
        self._call(lambda: self.account.balances.__setitem__(ccy, [Decimal(available), Decimal(0)]))

    def balance(self, ccy: str) -> tuple[Decimal, Decimal]:
        return self._call(lambda: (self.account.balances[ccy][0], self.account.balances[ccy][1]))

    def fill(self, cl_ord_id: str, qty: str | None = None) -> dict[str, str]:
        """Fill a resting order at its price as a maker (all that is left, or `qty`); returns the fill."""

        def run() -> dict[str, str]:
            [order] = [o for o in self.account.orders.values() if o.cl_ord_id == cl_ord_id and o.open()]
            assert order.px is not None
            amount = Decimal(qty) if qty is not None else order.sz - order.acc_fill_sz
            return self.account.execute(order, amount, order.px, "M", self.now_ms())

        return self._call(run)

    def orders(self) -> list[dict[str, Any]]:
        return self._call(lambda: [o.raw() for o in self.account.orders.values()])

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """Answer the next `n` private REST calls `status` (50001) before doing anything."""

        def run() -> None:
            self.faults.fail, self.faults.fail_status = n, status

        self._call(run)

    def throttle_next(self, n: int = 1) -> None:
        """Answer the next `n` private REST calls 429 (50011 Too Many Requests)."""
        self._call(lambda: setattr(self.faults, "throttle", n))

    def drop_private(self) -> int:
        """Close every private websocket; returns how many."""

        def run() -> int:
            for sock in self.private_sockets:
                sock.send(CLOSE)
            return len(self.private_sockets)

        return self._call(run)

    def drop_sockets(self) -> int:
        """Close every public websocket; returns how many."""
        sockets = list(self.sockets)
        for sock in sockets:
            sock.send(CLOSE)
        return len(sockets)

    def drop(self) -> int:
        return self._call(self.drop_sockets)

    def connections(self) -> int:
        """Open public websockets with a subscription."""
        return self._call(lambda: sum(1 for s in self.sockets if s.subscribed))


async def _pump(ws: web.WebSocketResponse, sock: _Socket) -> None:
    while True:
        message = await sock.queue.get()
        if message is CLOSE:
            await ws.close()
            return
        await ws.send_str(message if isinstance(message, str) else json.dumps(message))


def _push(
    channel: str, inst_id: str, data: list[dict[str, Any]], action: str | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"arg": {"channel": channel, "instId": inst_id}}
    if action is not None:
        message["action"] = action
    message["data"] = data
    return message


def _ok(data: list[Any]) -> web.Response:
    return web.json_response({"code": "0", "msg": "", "data": data})


def _error(code: str, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg, "data": []}, status=400)


def _now_ms() -> int:
    return int(time.time() * 1000)
