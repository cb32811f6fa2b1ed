"""Binance spot REST endpoints (``/api/v3/...``): request parsing and response shapes."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.fakes.binance import errors
from tests.fakes.binance.matching import Engine, Fill, Order
from tests.fakes.binance.seed import exchange_info, fmt, recorded

if TYPE_CHECKING:
    from tests.fakes.binance.fake import FakeBinance

CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER")
Params = dict[str, str]


def random_client_id() -> str:
    """Binance's generated client order ids: 22 letters and digits."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(22))


def decimal_param(params: Params, name: str) -> Decimal:
    raw = params.get(name)
    if not raw:
        raise errors.missing(name)
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise errors.bad_param(name) from exc
    if not value.is_finite() or value <= 0:
        raise errors.bad_param(name)
    return value


def required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise errors.missing(name)
    return value


def order_json(order: Order) -> dict[str, Any]:
    """``GET /api/v3/order`` / ``openOrders`` entries, keyed like the recorded ``order_response``."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.qty),
        "executedQty": fmt(order.executed),
        "cummulativeQuoteQty": fmt(order.quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": fmt(Decimal(0)),
        "icebergQty": fmt(Decimal(0)),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.type != "MARKET",
        "workingTime": order.time,
        "origQuoteOrderQty": fmt(Decimal(0)),
        "selfTradePreventionMode": "NONE",
    }


def new_order_json(order: Order, fills: list[Fill], resp_type: str, now: int) -> dict[str, Any]:
    """The ``POST /api/v3/order`` answer as ACK, RESULT or FULL (recorded ``new_order_full_response``)."""
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": now,
    }
    if resp_type == "ACK":
        return body
    full = order_json(order)
    for key in (
        "price",
        "origQty",
        "executedQty",
        "origQuoteOrderQty",
        "cummulativeQuoteQty",
        "status",
        "timeInForce",
        "type",
        "side",
        "workingTime",
        "selfTradePreventionMode",
    ):
        body[key] = full[key]
    if resp_type == "FULL":
        body["fills"] = [
            {
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in fills
        ]
    return body


def cancel_json(order: Order, now: int) -> dict[str, Any]:
    """The ``DELETE /api/v3/order`` answer (recorded ``cancel_order_response``)."""
    full = order_json(order)
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.cancel_client_order_id,
        "transactTime": now,
    }
    for key in (
        "price",
        "origQty",
        "executedQty",
        "origQuoteOrderQty",
        "cummulativeQuoteQty",
        "status",
        "timeInForce",
        "type",
        "side",
        "selfTradePreventionMode",
    ):
        body[key] = full[key]
    return body


def trade_json(fill: Fill) -> dict[str, Any]:
    """A ``GET /api/v3/myTrades`` entry (recorded ``account_trades_response``)."""
    order = fill.order
    return {
        "symbol": order.symbol,
        "id": fill.trade_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "price": fmt(fill.price),
        "qty": fmt(fill.qty),
        "quoteQty": fmt(fill.price * fill.qty),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time,
        "isBuyer": order.side == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


class Rest:
    """The handlers, each taking the parsed parameters and answering a JSON-able body."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake

    @property
    def engine(self) -> Engine:
        return self.fake.engine

    # --- public ----------------------------------------------------------------------------------------

    def ping(self, params: Params) -> Any:
        return recorded("ping_response")

    def time(self, params: Params) -> Any:
        return {"serverTime": self.fake.now_ms()}

    def exchange_info(self, params: Params) -> Any:
        info = exchange_info(list(self.engine.rules.values()), self.fake.now_ms(), self.fake.weights.limit)
        wanted = params.get("symbol")
        if wanted:
            self.engine.symbol(wanted)
            info["symbols"] = [s for s in info["symbols"] if s["symbol"] == wanted]
        return info

    def depth(self, params: Params) -> Any:
        symbol = required(params, "symbol")
        self.engine.symbol(symbol)
        limit = int(params.get("limit", "100"))
        book = self.engine.books[symbol]
        return {
            "lastUpdateId": book.last_update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in book.sorted("BUY")[:limit]],
            "asks": [[fmt(p), fmt(q)] for p, q in book.sorted("SELL")[:limit]],
        }

    def book_ticker(self, params: Params) -> Any:
        symbol = params.get("symbol")
        symbols = [symbol] if symbol else list(self.engine.rules)
        tickers = []
        for name in symbols:
            self.engine.symbol(name)
            book = self.engine.books[name]
            bid, ask = book.best("BUY"), book.best("SELL")
            zero = (Decimal(0), Decimal(0))
            bid, ask = bid or zero, ask or zero
            tickers.append(
                {
                    "symbol": name,
                    "bidPrice": fmt(bid[0]),
                    "bidQty": fmt(bid[1]),
                    "askPrice": fmt(ask[0]),
                    "askQty": fmt(ask[1]),
                }
            )
        return tickers[0] if symbol else tickers

    def trades(self, params: Params) -> Any:
        symbol = required(params, "symbol")
        self.engine.symbol(symbol)
        limit = int(params.get("limit", "500"))
        return [
            {
                "id": tid,
                "price": fmt(p),
                "qty": fmt(q),
                "quoteQty": fmt(p * q),
                "time": t,
                "isBuyerMaker": maker,
                "isBestMatch": True,
            }
            for tid, p, q, t, maker in self.engine.public_trades[symbol][-limit:]
        ]

    # --- signed ----------------------------------------------------------------------------------------

    def new_order(self, params: Params) -> Any:
        symbol = required(params, "symbol")
        side = required(params, "side")
        order_type = required(params, "type")
        if side not in ("BUY", "SELL"):
            raise errors.BinanceError(400, -1117, "Invalid side.")
        if order_type not in ORDER_TYPES:
            raise errors.BinanceError(400, -1116, "Invalid orderType.")
        qty = decimal_param(params, "quantity")
        price = decimal_param(params, "price") if order_type != "MARKET" else Decimal(0)
        tif = params.get("timeInForce", "")
        if order_type == "LIMIT" and tif not in ("GTC", "IOC", "FOK"):
            if not tif:
                raise errors.missing("timeInForce")
            raise errors.BinanceError(400, -1115, "Invalid timeInForce.")
        if order_type == "MARKET" and tif:
            raise errors.BinanceError(400, -1106, "Parameter 'timeInForce' sent when not required.")
        if order_type == "LIMIT_MAKER":
            tif = "GTC"
        client_id = params.get("newClientOrderId") or random_client_id()
        if not CLIENT_ID.match(client_id):
            raise errors.bad_param("newClientOrderId")
        now = self.fake.now_ms()
        order, fills = self.engine.place(symbol, side, order_type, qty, price, tif, client_id, now)
        resp_type = params.get("newOrderRespType") or "FULL"
        return new_order_json(order, fills, resp_type, now)

    def _find(self, params: Params, not_found: Callable[[], errors.BinanceError]) -> Order:
        symbol = required(params, "symbol")
        self.engine.symbol(symbol)
        order_id = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if not order_id and not client_id:
            raise errors.BinanceError(
                400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        order = self.engine.find(symbol, int(order_id) if order_id else None, client_id)
        if order is None:
            raise not_found()
        return order

    def query_order(self, params: Params) -> Any:
        return order_json(self._find(params, errors.order_does_not_exist))

    def cancel_order(self, params: Params) -> Any:
        order = self._find(params, errors.unknown_order_cancel)
        now = self.fake.now_ms()
        self.engine.cancel(order, now, params.get("newClientOrderId") or random_client_id())
        return cancel_json(order, now)

    def open_orders(self, params: Params) -> Any:
        symbol = params.get("symbol")
        if symbol:
            self.engine.symbol(symbol)
        return [order_json(o) for o in self.engine.open_orders(symbol)]

    def my_trades(self, params: Params) -> Any:
        symbol = required(params, "symbol")
        self.engine.symbol(symbol)
        fills = self.engine.trades_of(symbol)
        if params.get("orderId"):
            fills = [f for f in fills if f.order.order_id == int(params["orderId"])]
        if params.get("fromId"):
            fills = [f for f in fills if f.trade_id >= int(params["fromId"])]
        if params.get("startTime"):
            fills = [f for f in fills if f.time >= int(params["startTime"])]
        if params.get("endTime"):
            fills = [f for f in fills if f.time <= int(params["endTime"])]
        limit = min(int(params.get("limit", "500")), 1000)
        return [trade_json(f) for f in fills[:limit]]

    def account(self, params: Params) -> Any:
        body = recorded("account_response")
        rates = body["commissionRates"]
        rates["maker"], rates["taker"] = fmt(self.engine.maker_rate), fmt(self.engine.taker_rate)
        body["makerCommission"] = int(self.engine.maker_rate * 10000)
        body["takerCommission"] = int(self.engine.taker_rate * 10000)
        body["updateTime"] = self.fake.now_ms()
        body["balances"] = [
            {"asset": a, "free": fmt(free), "locked": fmt(locked)}
            for a, (free, locked) in sorted(self.engine.balances.items())
        ]
        return body

    def cancel_replace(self, params: Params) -> Any:
        mode = required(params, "cancelReplaceMode")
        cancel_params = {"symbol": required(params, "symbol")}
        if params.get("cancelOrderId"):
            cancel_params["orderId"] = params["cancelOrderId"]
        if params.get("cancelOrigClientOrderId"):
            cancel_params["origClientOrderId"] = params["cancelOrigClientOrderId"]
        if params.get("cancelNewClientOrderId"):
            cancel_params["newClientOrderId"] = params["cancelNewClientOrderId"]
        result: dict[str, Any] = {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS"}
        try:
            result["cancelResponse"] = self.cancel_order(cancel_params)
        except errors.BinanceError as exc:
            result.update(cancelResult="FAILURE", cancelResponse=exc.body())
            if mode == "STOP_ON_FAILURE":
                result.update(newOrderResult="NOT_ATTEMPTED", newOrderResponse=None)
                raise CancelReplaceFailed(400, -2022, "Order cancel-replace failed.", result) from exc
        try:
            result["newOrderResponse"] = self.new_order(params)
        except errors.BinanceError as exc:
            result.update(newOrderResult="FAILURE", newOrderResponse=exc.body())
            if result["cancelResult"] == "SUCCESS":
                raise CancelReplaceFailed(
                    409, -2021, "Order cancel-replace partially failed.", result
                ) from exc
            raise CancelReplaceFailed(400, -2022, "Order cancel-replace failed.", result) from exc
        if result["cancelResult"] == "FAILURE":
            raise CancelReplaceFailed(409, -2021, "Order cancel-replace partially failed.", result)
        return result


class CancelReplaceFailed(errors.BinanceError):
    """cancelReplace's errors carry the outcome of both halves under ``data``."""

    def __init__(self, status: int, code: int, msg: str, data: dict[str, Any]) -> None:
        super().__init__(status, code, msg)
        self.data = data

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg, "data": self.data}
