"""`BinanceExecution`: Meltica's `ExecutionAdapter` on Binance spot, through ccxt.

REST goes through ccxt's raw endpoints (signed, rate-limited by ccxt's weights) so amounts stay
Binance's decimal strings; the user-data stream is ccxt's WebSocket API subscription. Meltica's order
id travels as the client order id (`client_ids`), so every answer and update names Meltica's order.
After a 429/418 the adapter refuses every call until the venue's Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderType
from meltica.venues.binance import client_ids, wire
from meltica.venues.binance.client import BinanceClient, StreamItem
from meltica.venues.binance.config import BinanceConfig
from meltica.venues.binance.errors import BinanceHttpError, from_exception
from meltica.venues.common import ThrottleGate, dec
from meltica.venues.port import (
    VenueBalance,
    VenueError,
    VenueOrder,
    VenueRejectedError,
    VenueTrade,
    VenueUnavailableError,
    VenueUpdate,
)

log = logging.getLogger(__name__)
TRADES_PAGE = 1000


class BinanceExecution:
    """Binance spot: orders, fills, balances and the user-data stream in Meltica's terms."""

    def __init__(
        self,
        config: BinanceConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = config.venue
        self._client = BinanceClient(config)
        self._throttle = ThrottleGate(
            "Binance", clock, from_exception, log, "refused here until the venue's Retry-After has passed"
        )
        self._chains: dict[str, wire.Chain] = {}  # Meltica order id -> its venue orders so far
        self._order_ids: dict[str, str] = {}  # Binance orderId -> Meltica order id

    @property
    def weight_used(self) -> int:
        """`X-MBX-USED-WEIGHT-1M` of the venue's last REST answer."""
        return int(self._client.weight_used)

    # --- calls -----------------------------------------------------------------------------------------

    async def _rest(self, endpoint: str, params: dict[str, Any]) -> Any:
        self._throttle.check()
        return await self._throttle.guard(getattr(self._client, endpoint)(params))

    async def _symbol(self, instrument_id: str) -> str:
        """Binance's symbol of `instrument_id` (`BTCUSDT.BINANCE` -> `BTCUSDT`), checked in the markets."""
        await self._markets()
        symbol, _, venue = instrument_id.rpartition(".")
        if venue != self.venue or symbol not in (self._client.markets_by_id or {}):
            raise VenueRejectedError(
                "unknown_instrument", f"{instrument_id} is not a {self.venue} spot symbol"
            )
        return symbol

    def _instrument_id(self, symbol: str) -> str:
        return f"{symbol}.{self.venue}"

    async def _markets(self) -> dict[str, Any]:
        markets = self._client.markets
        if not markets:
            self._throttle.check()
            markets = await self._throttle.guard(self._client.load_markets())
        return dict(markets)

    # --- the port --------------------------------------------------------------------------------------

    async def connect(self) -> None:
        await self._markets()
        await self._rest("private_get_account", {})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.close()

    async def instruments(self) -> list[Instrument]:
        found = []
        for market in (await self._markets()).values():
            if not market.get("spot"):
                continue
            maker, taker = (Decimal(str(market.get(k) or 0)) for k in ("maker", "taker"))
            found.append(wire.instrument_of(market["info"], self.venue, dec(maker), dec(taker)))
        return sorted(found, key=lambda i: i.instrument_id)

    async def submit(self, order: OrderSpec) -> VenueOrder:
        symbol = await self._symbol(order.instrument_id)
        params = wire.order_params(order, symbol, self._client_id(order.order_id, 0))
        self._chains.setdefault(order.order_id, wire.Chain())  # a resubmission keeps a known chain
        raw = await self._rest("private_post_order", params)
        self._order_ids[str(raw["orderId"])] = order.order_id
        return wire.order_of(raw, order.instrument_id, order.order_id, wire.Chain())

    async def cancel(self, order_id: str, instrument_id: str) -> VenueOrder:
        symbol = await self._symbol(instrument_id)
        chain = self._chains.get(order_id)
        if chain is None:
            found = await self._probe(order_id, symbol)
            if found is None:
                raise VenueRejectedError("unknown_order", f"Binance does not know order {order_id}")
            chain = found[0]
        params = {"symbol": symbol, "origClientOrderId": self._client_id(order_id, chain.generation)}
        raw = await self._rest("private_delete_order", params)
        return wire.order_of(raw, instrument_id, order_id, chain)

    async def amend(self, order: OrderSpec, quantity: Decimal, price: Decimal | None) -> VenueOrder:
        if order.order_type is not OrderType.LIMIT:
            raise VenueRejectedError(
                "venue_rejected", f"Binance spot amends LIMIT orders, not {order.order_type}"
            )
        symbol = await self._symbol(order.instrument_id)
        found = await self._current(order.order_id, symbol)
        if found is None:
            raise VenueRejectedError("unknown_order", f"Binance does not know order {order.order_id}")
        chain, resting = found
        if resting["status"] not in wire.OPEN:
            raise VenueRejectedError(
                "unknown_order", f"order {order.order_id} is {resting['status']} at Binance"
            )
        filled = chain.filled + dec(resting["executedQty"])
        if quantity <= filled:
            raise VenueRejectedError(
                "venue_rejected", f"quantity {quantity} is not above the filled {filled}"
            )
        new_price = price if price is not None else dec(resting["price"])
        after = chain.generation + 1
        params = wire.replace_params(
            order,
            symbol,
            self._client_id(order.order_id, chain.generation),
            self._client_id(order.order_id, after),
            quantity - filled,
            new_price,
        )
        # the replaced venue order's cancel arrives on the stream: as of now it is no longer the order
        self._chains[order.order_id] = wire.Chain(
            after, filled, chain.quote + dec(resting["cummulativeQuoteQty"])
        )
        try:
            raw = await self._rest("private_post_order_cancelreplace", params)
        except VenueRejectedError as exc:
            self._chains[order.order_id] = chain
            answer = exc.__cause__.answer if isinstance(exc.__cause__, BinanceHttpError) else None
            if answer is not None and answer.data.get("cancelResult") == "SUCCESS":
                # the cancel went through, the new order did not: the order is canceled
                canceled = answer.data["cancelResponse"]
                return wire.order_of(
                    canceled, order.instrument_id, order.order_id, chain, f"{exc.reason}: {exc.detail}"
                )
            raise
        except VenueError:
            self._chains.pop(order.order_id, None)  # outcome unknown: find the chain at the venue next time
            raise
        chain = chain.then(raw["cancelResponse"], after)
        self._chains[order.order_id] = chain
        placed = raw["newOrderResponse"]
        self._order_ids[str(placed["orderId"])] = order.order_id
        return wire.order_of(placed, order.instrument_id, order.order_id, chain)

    async def order(self, order_id: str, instrument_id: str) -> VenueOrder | None:
        symbol = await self._symbol(instrument_id)
        found = await self._current(order_id, symbol)
        if found is None:
            return None
        chain, raw = found
        return wire.order_of(raw, instrument_id, order_id, chain)

    async def open_orders(self) -> list[VenueOrder]:
        await self._markets()
        orders = []
        for raw in await self._rest("private_get_openorders", {}):
            order_id, generation = client_ids.decode(str(raw["clientOrderId"]))
            chain = await self._chain_of(order_id, generation, str(raw["symbol"]))
            self._order_ids[str(raw["orderId"])] = order_id
            orders.append(wire.order_of(raw, self._instrument_id(str(raw["symbol"])), order_id, chain))
        return orders

    async def trades_since(self, instrument_id: str, after_trade_id: str | None) -> list[VenueTrade]:
        symbol = await self._symbol(instrument_id)
        params: dict[str, Any] = {"symbol": symbol, "limit": TRADES_PAGE}
        if after_trade_id is not None:
            if not after_trade_id.isdigit():
                raise VenueRejectedError("venue_rejected", f"{after_trade_id!r} is not a Binance trade id")
            params["fromId"] = int(after_trade_id) + 1
        raws: list[Any] = []
        while True:
            page = await self._rest("private_get_mytrades", dict(params))
            raws.extend(page)
            if after_trade_id is None or len(page) < TRADES_PAGE:
                break
            params["fromId"] = int(page[-1]["id"]) + 1
        trades = []
        for raw in sorted(raws, key=lambda r: int(r["id"])):
            order_id = await self._order_id_of(str(raw["orderId"]), symbol)
            trades.append(wire.trade_of(raw, instrument_id, order_id))
        return trades

    async def balances(self) -> tuple[VenueBalance, ...]:
        account = await self._rest("private_get_account", {"omitZeroBalances": "true"})
        return wire.balances_of(account["balances"], "asset", "free", "locked")

    async def updates(self) -> AsyncIterator[VenueUpdate]:
        """The user-data stream. Its first update is the account's balances, read once the subscription
        stands: from then on nothing is missed until the iterator ends (reconcile at that point)."""
        await self._markets()
        queue: asyncio.Queue[StreamItem] = asyncio.Queue()
        self._client.sinks.add(queue)
        watcher: asyncio.Task[None] | None = None
        try:
            await self._throttle.guard(self._client.authenticate({"type": "spot"}))
            watcher = asyncio.create_task(self._watch(queue))
            yield await self.balances()
            while True:
                kind, payload = await queue.get()
                if kind == "drop":
                    raise VenueUnavailableError(str(payload))
                if kind == "balance":
                    yield wire.balances_of(payload.get("B") or [], "a", "f", "l")
                else:
                    try:
                        updates = await self._report(payload)
                    except VenueError as exc:  # the venue could not tell which order it is about
                        raise VenueUnavailableError(f"user-data update not resolved: {exc}") from exc
                    for update in updates:
                        yield update
        finally:
            self._client.sinks.discard(queue)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            if not self._client.sinks:
                await self._close_user_socket()

    # --- the stream's helpers --------------------------------------------------------------------------

    async def _watch(self, queue: asyncio.Queue[StreamItem]) -> None:
        """Keep ccxt's order watch pending (it returns at each update): a failure of the socket or the
        subscription surfaces here, and ends the stream."""
        try:
            while True:
                await self._client.watch_orders()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(("drop", f"{type(exc).__name__}: {exc}"))

    async def _close_user_socket(self) -> None:
        client = (self._client.clients or {}).pop(self._client.user_url, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def _report(self, event: dict[str, Any]) -> list[VenueUpdate]:
        """An executionReport as the fill it carries (if any) and the order's new state; the cancel of
        a venue order replaced by an amend is not the order's (it lives on as the next generation)."""
        symbol = str(event["s"])
        instrument_id = self._instrument_id(symbol)
        order_id, generation = client_ids.decode(wire.report_client_id(event))
        self._order_ids[str(event["i"])] = order_id
        out: list[VenueUpdate] = []
        if event.get("x") == "TRADE":
            out.append(wire.trade_of_report(event, instrument_id, order_id))
        known = self._chains.get(order_id)
        if known is not None and generation < known.generation:
            return out
        chain = known if known is not None and known.generation == generation else None
        if chain is None:
            chain = await self._chain_of(order_id, generation, symbol)
        out.append(wire.order_of_report(event, instrument_id, order_id, chain))
        return out

    # --- order chains ----------------------------------------------------------------------------------

    def _client_id(self, order_id: str, generation: int) -> str:
        try:
            return client_ids.client_id(order_id, generation)
        except ValueError as exc:
            raise VenueRejectedError("venue_rejected", str(exc)) from exc

    async def _query(self, symbol: str, client_id: str) -> dict[str, Any] | None:
        """`GET order` by client id; None when Binance says it does not exist (-2013)."""
        try:
            raw: dict[str, Any] = await self._rest(
                "private_get_order", {"symbol": symbol, "origClientOrderId": client_id}
            )
        except VenueRejectedError as exc:
            if exc.reason == "unknown_order":
                return None
            raise
        return raw

    async def _probe(self, order_id: str, symbol: str) -> tuple[wire.Chain, dict[str, Any]] | None:
        """Find an order's chain at the venue: query generation 0, 1, ... until one does not exist."""
        chain, latest, generation = wire.Chain(), None, 0
        while True:
            raw = await self._query(symbol, self._client_id(order_id, generation))
            if raw is None:
                break
            if latest is not None:  # the previous generation was replaced by this one
                chain = chain.then(latest, generation)
            latest, generation = raw, generation + 1
        if latest is None:
            return None
        self._chains[order_id] = chain
        self._order_ids[str(latest["orderId"])] = order_id
        return chain, latest

    async def _current(self, order_id: str, symbol: str) -> tuple[wire.Chain, dict[str, Any]] | None:
        """The order's chain and the venue order that stands for it now."""
        chain = self._chains.get(order_id)
        if chain is not None:
            raw = await self._query(symbol, self._client_id(order_id, chain.generation))
            if raw is not None:
                return chain, raw
        return await self._probe(order_id, symbol)

    async def _chain_of(self, order_id: str, generation: int, symbol: str) -> wire.Chain:
        """The chain of a venue order of `generation` (probed at the venue when it was amended before
        this process knew of it)."""
        known = self._chains.get(order_id)
        if known is not None and known.generation == generation:
            return known
        if generation == 0:
            return wire.Chain()
        found = await self._probe(order_id, symbol)
        return found[0] if found is not None and found[0].generation == generation else wire.Chain(generation)

    async def _order_id_of(self, venue_order_id: str, symbol: str) -> str | None:
        """Meltica's order id of a Binance order id (asked of the venue once when not seen before)."""
        if venue_order_id not in self._order_ids:
            try:
                raw = await self._rest("private_get_order", {"symbol": symbol, "orderId": venue_order_id})
            except VenueRejectedError:
                return None
            self._order_ids[venue_order_id] = client_ids.order_id_of(str(raw["clientOrderId"]))
        return self._order_ids[venue_order_id]
