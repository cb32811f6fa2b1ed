"""The fake OKX's account: signed REST v5 trading endpoints, the private websocket, a small engine.

Signatures are verified as OKX documents them: REST `OK-ACCESS-SIGN` = base64(HMAC-SHA256(secret,
timestamp + METHOD + requestPath(+query) + body)) with `OK-ACCESS-TIMESTAMP` ISO 8601 within 30 s,
`OK-ACCESS-KEY` and `OK-ACCESS-PASSPHRASE` checked (401 with 50111 / 50113 / 50105 / 50102);
the websocket `login` signs timestamp(s) + "GET" + "/users/self/verify" (60009 when wrong).
Orders rest (limit, post_only) or fill at once (market, against the book's best level; ioc/fok
against the book up to their price); `fill()` fills a resting order as a maker. Amounts are Decimal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.okx.fake import FakeOkx, _Socket

MAKER_FEE, TAKER_FEE = Decimal("0.0008"), Decimal("0.001")


class OkxError(Exception):
    def __init__(self, code: str, msg: str, status: int = 200, s_code: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.s_code = code, msg, status, s_code

    def response(self, cl_ord_id: str = "") -> web.Response:
        if self.s_code:  # an order call: the outcome is the entry's
            body = {
                "code": "1",
                "msg": "All operations failed",
                "data": [
                    {"clOrdId": cl_ord_id, "ordId": "", "tag": "", "sCode": self.s_code, "sMsg": self.msg}
                ],
            }
        else:
            body = {"code": self.code, "msg": self.msg, "data": []}
        return web.json_response(body, status=self.status)


def _reject(s_code: str, msg: str) -> OkxError:
    return OkxError("1", msg, 200, s_code)


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass
class Order:
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    ord_type: str
    sz: Decimal
    px: Decimal | None
    c_time: int
    u_time: int
    state: str = "live"
    acc_fill_sz: Decimal = Decimal(0)
    quote_filled: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)  # signed as OKX: negative is charged
    fee_ccy: str = ""
    last_fill: dict[str, str] = field(default_factory=dict)

    def open(self) -> bool:
        return self.state in ("live", "partially_filled")

    def raw(self) -> dict[str, Any]:
        avg = self.quote_filled / self.acc_fill_sz if self.acc_fill_sz else Decimal(0)
        fill = {
            "fillSz": "0",
            "fillPx": "",
            "tradeId": "",
            "fillTime": "",
            "execType": "",
            "fillFee": "0",
            "fillFeeCcy": "",
        }
        return {
            "instType": "SPOT",
            "instId": self.inst_id,
            "ordId": self.ord_id,
            "clOrdId": self.cl_ord_id,
            "tag": "",
            "px": _text(self.px) if self.px is not None else "",
            "sz": _text(self.sz),
            "ordType": self.ord_type,
            "side": self.side,
            "tdMode": "cash",
            "accFillSz": _text(self.acc_fill_sz),
            "avgPx": _text(avg),
            "state": self.state,
            "fee": _text(self.fee),
            "feeCcy": self.fee_ccy,
            "cTime": str(self.c_time),
            "uTime": str(self.u_time),
            **fill,
            **self.last_fill,
        }


class Account:
    """One cash account: balances, orders, fills; pushes order changes to `fake`'s private sockets."""

    def __init__(self, fake: FakeOkx) -> None:
        self.fake = fake
        self.balances: dict[str, list[Decimal]] = {}  # ccy -> [available, frozen]
        self.orders: dict[str, Order] = {}
        self.fills: list[dict[str, str]] = []  # oldest first
        self._ord_ids = itertools.count(600_000_000_001)
        self._bill_ids = itertools.count(900_000_001)
        self._trade_ids: dict[str, itertools.count[int]] = {}

    # -- rules ------------------------------------------------------------------------------------------
    def _instrument(self, inst_id: str) -> dict[str, Any]:
        for info in self.fake.instruments:
            if info["instId"] == inst_id:
                return info
        raise _reject("51001", f"Instrument ID {inst_id} does not exist")

    def _balance(self, ccy: str) -> list[Decimal]:
        return self.balances.setdefault(ccy, [Decimal(0), Decimal(0)])

    def _freeze_for(self, o: Order, sz: Decimal, px: Decimal | None) -> tuple[str, Decimal]:
        info = self._instrument(o.inst_id)
        if o.side == "buy":
            price = px if px is not None else self._best(o.inst_id, "asks")
            return str(info["quoteCcy"]), sz * price
        return str(info["baseCcy"]), sz

    def _best(self, inst_id: str, side: str) -> Decimal:
        bids, asks = self.fake.books[inst_id].sorted() if inst_id in self.fake.books else ([], [])
        levels = asks if side == "asks" else bids
        if not levels:
            raise _reject("51000", "Parameter sz error")
        return Decimal(levels[0][0])

    def place(self, params: dict[str, Any], now: int) -> Order:
        inst_id, cl = str(params.get("instId", "")), str(params.get("clOrdId", ""))
        info = self._instrument(inst_id)
        if params.get("tdMode") != "cash":
            raise _reject("51000", "Parameter tdMode error")
        if cl and any(o.cl_ord_id == cl and o.open() for o in self.orders.values()):
            raise _reject("51016", "Duplicated client order ID")
        ord_type, side = str(params.get("ordType")), str(params.get("side"))
        if ord_type not in ("limit", "post_only", "ioc", "fok", "market") or side not in ("buy", "sell"):
            raise _reject("51000", "Parameter ordType error")
        sz = Decimal(str(params.get("sz", "0")))
        if ord_type == "market" and side == "buy" and params.get("tgtCcy") != "base_ccy":
            raise _reject("51000", "Parameter tgtCcy error")  # this fake sizes market buys in base only
        self._check_size(info, sz)
        px = None if ord_type == "market" else Decimal(str(params.get("px", "0")))
        if px is not None and (px <= 0 or px % Decimal(info["tickSz"])):
            raise _reject("51000", "Parameter px error")
        order = Order(f"{next(self._ord_ids)}", cl, inst_id, side, ord_type, sz, px, now, now)
        if ord_type == "post_only" and self._crosses(order):
            order.state = "canceled"  # OKX cancels a post-only order that would take
            self._store(order)
            return order
        ccy, amount = self._freeze_for(order, sz, px)
        bal = self._balance(ccy)
        if bal[0] < amount:
            raise _reject("51008", f"Order failed. Insufficient {ccy} balance in account")
        bal[0] -= amount
        bal[1] += amount
        self._store(order)
        if ord_type in ("market", "ioc", "fok") or self._crosses(order):
            self._take(order, now)
        return order

    def _check_size(self, info: dict[str, Any], sz: Decimal) -> None:
        if sz < Decimal(info["minSz"]):
            raise _reject("51020", "Your order should meet or exceed the minimum order amount.")
        if sz % Decimal(info["lotSz"]):
            raise _reject("51121", f"Order quantity must be a multiple of the lot size ({info['lotSz']}).")

    def _store(self, order: Order) -> None:
        self.orders[order.ord_id] = order
        self.push(order)

    def _crosses(self, o: Order) -> bool:
        try:
            best = self._best(o.inst_id, "asks" if o.side == "buy" else "bids")
        except OkxError:
            return False
        return o.px is None or (best <= o.px if o.side == "buy" else best >= o.px)

    def _take(self, o: Order, now: int) -> None:
        """Fill against the book's best level as a taker (all of it, at that price), or expire."""
        if self._crosses(o):
            price = self._best(o.inst_id, "asks" if o.side == "buy" else "bids")
            self.execute(o, o.sz - o.acc_fill_sz, price, "T", now)
        if o.open() and o.ord_type in ("market", "ioc", "fok"):
            self._close(o, "canceled", now)

    def execute(self, o: Order, qty: Decimal, price: Decimal, exec_type: str, now: int) -> dict[str, str]:
        info = self._instrument(o.inst_id)
        base, quote = str(info["baseCcy"]), str(info["quoteCcy"])
        rate = MAKER_FEE if exec_type == "M" else TAKER_FEE
        frozen_ccy, frozen = self._freeze_for(o, qty, o.px if o.px is not None else price)
        self._balance(frozen_ccy)[1] -= frozen
        if o.side == "buy":
            self._balance(quote)[0] += frozen - qty * price  # a better price gives the rest back
            fee, fee_ccy = qty * rate, base
            self._balance(base)[0] += qty - fee
        else:
            fee, fee_ccy = qty * price * rate, quote
            self._balance(quote)[0] += qty * price - fee
        trade_id = str(next(self._trade_ids.setdefault(o.inst_id, itertools.count(1_000_001))))
        o.acc_fill_sz += qty
        o.quote_filled += qty * price
        o.fee -= fee
        o.fee_ccy = fee_ccy
        o.state = "filled" if o.acc_fill_sz == o.sz else "partially_filled"
        o.u_time = now
        fill = {
            "instType": "SPOT",
            "instId": o.inst_id,
            "tradeId": trade_id,
            "ordId": o.ord_id,
            "clOrdId": o.cl_ord_id,
            "billId": str(next(self._bill_ids)),
            "tag": "",
            "fillPx": _text(price),
            "fillSz": _text(qty),
            "side": o.side,
            "execType": exec_type,
            "feeCcy": fee_ccy,
            "fee": _text(-fee),
            "ts": str(now),
            "fillTime": str(now),
        }
        self.fills.append(fill)
        o.last_fill = {
            "fillSz": fill["fillSz"],
            "fillPx": fill["fillPx"],
            "tradeId": trade_id,
            "fillTime": str(now),
            "execType": exec_type,
            "fillFee": fill["fee"],
            "fillFeeCcy": fee_ccy,
        }
        self.push(o)
        o.last_fill = {}
        return fill

    def _close(self, o: Order, state: str, now: int) -> None:
        ccy, amount = self._freeze_for(o, o.sz - o.acc_fill_sz, o.px)
        bal = self._balance(ccy)
        bal[0] += amount
        bal[1] -= amount
        o.state, o.u_time = state, now
        self.push(o)

    def find(self, params: dict[str, Any]) -> Order | None:
        ord_id, cl = params.get("ordId"), params.get("clOrdId")
        for o in reversed(self.orders.values()):  # the latest of a reused client order id
            named = (ord_id and o.ord_id == ord_id) or (not ord_id and cl and o.cl_ord_id == cl)
            if named and o.inst_id == params.get("instId"):
                return o
        return None

    def cancel(self, params: dict[str, Any], now: int) -> Order:
        o = self.find(params)
        if o is None or not o.open():
            raise _reject(
                "51400", "Order cancellation failed as the order has been filled, canceled or does not exist"
            )
        self._close(o, "canceled", now)
        return o

    def amend(self, params: dict[str, Any], now: int) -> Order:
        o = self.find(params)
        if o is None or not o.open():
            raise _reject(
                "51503", "Order modification failed as the order has been filled, canceled or does not exist"
            )
        info = self._instrument(o.inst_id)
        sz = Decimal(str(params["newSz"])) if params.get("newSz") else o.sz
        px = Decimal(str(params["newPx"])) if params.get("newPx") else o.px
        if sz <= o.acc_fill_sz:
            raise _reject("51000", "Parameter newSz error")
        self._check_size(info, sz)
        if px is None or px <= 0 or px % Decimal(info["tickSz"]):
            raise _reject("51000", "Parameter newPx error")
        ccy, before = self._freeze_for(o, o.sz - o.acc_fill_sz, o.px)
        _, after = self._freeze_for(o, sz - o.acc_fill_sz, px)
        bal = self._balance(ccy)
        if bal[0] + before < after:
            raise _reject("51008", f"Order failed. Insufficient {ccy} balance in account")
        bal[0] += before - after
        bal[1] += after - before
        o.sz, o.px, o.u_time = sz, px, now
        self.push(o)
        if self._crosses(o):
            self._take(o, now)
        return o

    def push(self, o: Order) -> None:
        message = {"arg": {"channel": "orders", "instType": "SPOT", "uid": "77"}, "data": [o.raw()]}
        self.fake.push_private(message)

    def details(self) -> list[dict[str, str]]:
        return [
            {
                "ccy": ccy,
                "availBal": _text(a),
                "frozenBal": _text(f),
                "cashBal": _text(a + f),
                "eq": _text(a + f),
            }
            for ccy, (a, f) in sorted(self.balances.items())
        ]


# -- signatures -------------------------------------------------------------------------------------------
def _sign(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


def verify_rest(fake: FakeOkx, request: web.Request, body: str, now_ms: int) -> None:
    key = request.headers.get("OK-ACCESS-KEY", "")
    if key != fake.api_key:
        raise OkxError("50111", "Invalid OK-ACCESS-KEY", 401)
    if request.headers.get("OK-ACCESS-PASSPHRASE") != fake.passphrase:
        raise OkxError("50105", "Your OK-ACCESS-PASSPHRASE is incorrect", 401)
    stamp = request.headers.get("OK-ACCESS-TIMESTAMP", "")
    try:
        sent = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP", 401) from None
    if abs(sent.timestamp() * 1000 - now_ms) > 30_000:
        raise OkxError("50102", "Timestamp request expired", 401)
    path = request.rel_url.raw_path_qs if hasattr(request.rel_url, "raw_path_qs") else str(request.rel_url)
    expected = _sign(fake.secret, stamp + request.method + path + body)
    if not hmac.compare_digest(expected, request.headers.get("OK-ACCESS-SIGN", "")):
        raise OkxError("50113", "Invalid Sign", 401)


def verify_login(fake: FakeOkx, args: dict[str, Any], now_ms: int) -> str | None:
    """None when the login is good, else OKX's error code."""
    if args.get("apiKey") != fake.api_key or args.get("passphrase") != fake.passphrase:
        return "60009"
    stamp = str(args.get("timestamp", ""))
    if not stamp.isdigit() or abs(int(stamp) * 1000 - now_ms) > 30_000:
        return "60006"  # timestamp expired
    expected = _sign(fake.secret, stamp + "GET" + "/users/self/verify")
    return None if hmac.compare_digest(expected, str(args.get("sign", ""))) else "60007"


# -- routes -------------------------------------------------------------------------------------------------
async def private_rest(fake: FakeOkx, request: web.Request) -> web.Response:
    """Every signed `/api/v5/trade/*` and `/api/v5/account/*` call."""
    body = await request.text()
    fake.requests.append(request.path)
    params: dict[str, Any] = dict(request.query)
    if body:
        params.update(json.loads(body))
    now = fake.now_ms()
    try:
        status = fake.faults.take_fail()
        if status:
            raise OkxError("50001", "Service temporarily unavailable. Please try again later", status)
        if fake.faults.throttle:
            fake.faults.throttle -= 1
            raise OkxError("50011", "Too Many Requests", 429)
        verify_rest(fake, request, body, now)
        data = route(fake, request.method, request.path, params, now)
    except OkxError as err:
        return err.response(str(params.get("clOrdId", "")))
    return web.json_response({"code": "0", "msg": "", "data": data})


def route(fake: FakeOkx, method: str, path: str, p: dict[str, Any], now: int) -> list[Any]:
    account = fake.account
    if (method, path) == ("POST", "/api/v5/trade/order"):
        o = account.place(p, now)
        return [
            {
                "clOrdId": o.cl_ord_id,
                "ordId": o.ord_id,
                "tag": "",
                "ts": str(now),
                "sCode": "0",
                "sMsg": "Order placed",
            }
        ]
    if (method, path) == ("POST", "/api/v5/trade/cancel-order"):
        o = account.cancel(p, now)
        return [{"clOrdId": o.cl_ord_id, "ordId": o.ord_id, "ts": str(now), "sCode": "0", "sMsg": ""}]
    if (method, path) == ("POST", "/api/v5/trade/amend-order"):
        o = account.amend(p, now)
        return [
            {"clOrdId": o.cl_ord_id, "ordId": o.ord_id, "reqId": "", "ts": str(now), "sCode": "0", "sMsg": ""}
        ]
    if (method, path) == ("GET", "/api/v5/trade/order"):
        found = account.find(p)
        if found is None:
            raise OkxError("51603", "Order does not exist")
        return [found.raw()]
    if (method, path) == ("GET", "/api/v5/trade/orders-pending"):
        pending = sorted((o for o in account.orders.values() if o.open()), key=lambda o: -int(o.ord_id))
        if p.get("after"):
            pending = [o for o in pending if int(o.ord_id) < int(p["after"])]
        return [o.raw() for o in pending[: int(p.get("limit", "100"))]]
    if (method, path) == ("GET", "/api/v5/trade/fills"):
        fills = [f for f in reversed(account.fills) if not p.get("instId") or f["instId"] == p["instId"]]
        if p.get("after"):
            fills = [f for f in fills if int(f["billId"]) < int(p["after"])]
        return fills[: int(p.get("limit", "100"))]
    if (method, path) == ("GET", "/api/v5/account/balance"):
        return [{"totalEq": "0", "uTime": str(now), "details": account.details()}]
    raise OkxError("50000", f"{method} {path} is not supported by the fake", 404)


def private_op(fake: FakeOkx, sock: _Socket, body: dict[str, Any]) -> None:
    op, args = body.get("op"), body.get("args") or []
    if op == "login":
        code = verify_login(fake, args[0] if args else {}, fake.now_ms())
        if code is None:
            sock.logged_in = True
            sock.send({"event": "login", "code": "0", "msg": "", "connId": sock.conn_id})
        else:
            sock.send({"event": "error", "code": code, "msg": "Login failed.", "connId": sock.conn_id})
        return
    if op in ("subscribe", "unsubscribe"):
        for arg in args:
            if not sock.logged_in:
                sock.send({"event": "error", "code": "60011", "msg": "Please log in", "connId": sock.conn_id})
                return
            if arg.get("channel") != "orders" or arg.get("instType") not in ("SPOT", "ANY"):
                sock.send(
                    {"event": "error", "code": "60018", "msg": f"Wrong channel {arg}", "connId": sock.conn_id}
                )
                continue
            key = ("orders", str(arg["instType"]))
            (sock.subscribed.add if op == "subscribe" else sock.subscribed.discard)(key)
            sock.send({"event": op, "arg": arg, "connId": sock.conn_id})
        return
    sock.send({"event": "error", "code": "60012", "msg": f"Invalid request: {op}", "connId": sock.conn_id})
