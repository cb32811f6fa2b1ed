"""`OkxExecution`: Meltica's `ExecutionAdapter` on OKX spot (cash), through ccxt.

REST goes through ccxt's raw v5 endpoints (ccxt signs them and paces them) so amounts stay OKX's
decimal strings; user data is the private websocket's `orders` channel after ccxt's login. Meltica's
order id travels as the client order id (`client_ids`). OKX amends in place (`amend-order`, the
new size counting what has filled), so an order is one OKX order for its whole life. After a
throttle the adapter refuses every call until its retry time has passed.
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
from meltica.venues.common import ThrottleGate, dec, text
from meltica.venues.okx import client_ids, wire
from meltica.venues.okx.client import OkxClient, StreamItem
from meltica.venues.okx.config import OkxConfig
from meltica.venues.okx.errors import from_exception
from meltica.venues.port import (
    VenueBalance,
    VenueOrder,
    VenueRejectedError,
    VenueTrade,
    VenueUnavailableError,
    VenueUpdate,
)

log = logging.getLogger(__name__)
PAGE = 100  # OKX's largest page of orders and fills
SUBSCRIBE_TIMEOUT_S = 30  # login and the `orders` subscription


class OkxExecution:
    """OKX spot: orders, fills, balances and the `orders` channel in Meltica's terms."""

    def __init__(self, config: OkxConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.venue = config.venue
        self._client = OkxClient(config)
        self._throttle = ThrottleGate(
            "OKX", clock, from_exception, log, "refused here until the venue's retry time has passed"
        )
        self._instruments: dict[str, Instrument] | None = None  # instId -> instrument

    @property
    def weight_used(self) -> int:
        """OKX reports no used weight; ccxt paces the calls by OKX's per-endpoint limits."""
        return 0

    # --- calls -----------------------------------------------------------------------------------------
    async def _rest(self, endpoint: str, params: dict[str, Any]) -> list[Any]:
        """A raw v5 call; its `data`."""
        self._throttle.check()
        answer = await self._throttle.guard(getattr(self._client, endpoint)(params))
        return list(answer["data"])

    async def _markets(self) -> dict[str, Instrument]:
        if self._instruments is None:
            data = await self._rest("public_get_public_instruments", {"instType": "SPOT"})
            self._instruments = {str(i["instId"]): wire.instrument_of(i, self.venue) for i in data}
        return self._instruments

    async def _inst_id(self, instrument_id: str) -> str:
        """OKX's instId of `instrument_id` (`BTC-USDT.OKX` -> `BTC-USDT`), checked in the instruments."""
        inst_id, _, venue = instrument_id.rpartition(".")
        if venue != self.venue or inst_id not in await self._markets():
            raise VenueRejectedError(
                "unknown_instrument", f"{instrument_id} is not an {self.venue} spot instrument"
            )
        return inst_id

    def _client_id(self, order_id: str) -> str:
        try:
            return client_ids.client_id(order_id)
        except ValueError as exc:
            raise VenueRejectedError("venue_rejected", str(exc)) from exc

    def _order_of(self, raw: dict[str, Any]) -> VenueOrder:
        order_id = client_ids.order_id_of(str(raw.get("clOrdId") or raw["ordId"]))
        return wire.order_of(raw, f"{raw['instId']}.{self.venue}", order_id)

    # --- the port --------------------------------------------------------------------------------------
    async def connect(self) -> None:
        await self._markets()
        await self._rest("private_get_account_balance", {})  # the credentials are good

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.close()

    async def instruments(self) -> list[Instrument]:
        return sorted((await self._markets()).values(), key=lambda i: i.instrument_id)

    async def submit(self, order: OrderSpec) -> VenueOrder:
        inst_id = await self._inst_id(order.instrument_id)
        client_id = self._client_id(order.order_id)
        await self._rest("private_post_trade_order", wire.order_params(order, inst_id, client_id))
        return await self._state(inst_id, client_id, order.order_id)

    async def cancel(self, order_id: str, instrument_id: str) -> VenueOrder:
        inst_id = await self._inst_id(instrument_id)
        client_id = self._client_id(order_id)
        await self._rest("private_post_trade_cancel_order", {"instId": inst_id, "clOrdId": client_id})
        return await self._state(inst_id, client_id, order_id)

    async def amend(self, order: OrderSpec, quantity: Decimal, price: Decimal | None) -> VenueOrder:
        if order.order_type is not OrderType.LIMIT:
            raise VenueRejectedError(
                "venue_rejected", f"OKX spot amends LIMIT orders, not {order.order_type}"
            )
        inst_id = await self._inst_id(order.instrument_id)
        client_id = self._client_id(order.order_id)
        params = {"instId": inst_id, "clOrdId": client_id, "newSz": text(quantity)}
        if price is not None:
            params["newPx"] = text(price)
        await self._rest("private_post_trade_amend_order", params)
        return await self._state(inst_id, client_id, order.order_id)

    async def _state(self, inst_id: str, client_id: str, order_id: str) -> VenueOrder:
        """The order as OKX has it right after a request it accepted."""
        found = await self.order(order_id, f"{inst_id}.{self.venue}")
        if found is None:  # accepted a moment ago: OKX lost it, or answers from a lagging replica
            raise VenueUnavailableError(f"OKX accepted {client_id} but does not show it")
        return found

    async def order(self, order_id: str, instrument_id: str) -> VenueOrder | None:
        inst_id = await self._inst_id(instrument_id)
        try:
            data = await self._rest(
                "private_get_trade_order", {"instId": inst_id, "clOrdId": self._client_id(order_id)}
            )
        except VenueRejectedError as exc:
            if exc.reason == "unknown_order":
                return None
            raise
        return self._order_of(data[0]) if data else None

    async def open_orders(self) -> list[VenueOrder]:
        params: dict[str, Any] = {"instType": "SPOT", "limit": str(PAGE)}
        orders: list[VenueOrder] = []
        while True:
            page = await self._rest("private_get_trade_orders_pending", dict(params))
            orders += [self._order_of(raw) for raw in page]
            if len(page) < PAGE:
                return orders
            params["after"] = page[-1]["ordId"]  # older than the last one (newest first)

    async def trades_since(self, instrument_id: str, after_trade_id: str | None) -> list[VenueTrade]:
        """Fills of the last 3 days (`/trade/fills`), newest first in pages by `billId`, read back
        until one at or before `after_trade_id` (OKX's trade ids rise per instrument)."""
        inst_id = await self._inst_id(instrument_id)
        if after_trade_id is not None and not after_trade_id.isdigit():
            raise VenueRejectedError("venue_rejected", f"{after_trade_id!r} is not an OKX trade id")
        params: dict[str, Any] = {"instType": "SPOT", "instId": inst_id, "limit": str(PAGE)}
        raws: list[dict[str, Any]] = []
        while True:
            page = await self._rest("private_get_trade_fills", dict(params))
            raws += page
            if after_trade_id is None or len(page) < PAGE:
                break
            if any(int(r["tradeId"]) <= int(after_trade_id) for r in page):
                break
            params["after"] = page[-1]["billId"]
        if after_trade_id is not None:
            raws = [r for r in raws if int(r["tradeId"]) > int(after_trade_id)]
        raws.sort(key=lambda r: int(r["tradeId"]))
        return [
            wire.trade_of(
                r, instrument_id, client_ids.order_id_of(str(r["clOrdId"])) if r.get("clOrdId") else None
            )
            for r in raws
        ]

    async def balances(self) -> tuple[VenueBalance, ...]:
        data = await self._rest("private_get_account_balance", {})
        return wire.balances_of(data[0].get("details") or []) if data else ()

    async def updates(self) -> AsyncIterator[VenueUpdate]:
        """The `orders` channel. Its first update is the account's balances, read once the
        subscription stands: from then on nothing is missed until the iterator ends."""
        await self._markets()
        queue: asyncio.Queue[StreamItem] = asyncio.Queue()
        self._client.sinks.add(queue)
        watcher: asyncio.Task[None] | None = None
        try:
            self._client.orders_ready.clear()
            watcher = asyncio.create_task(self._watch(queue))
            ready = asyncio.create_task(self._client.orders_ready.wait())
            await asyncio.wait(
                {ready, watcher}, timeout=SUBSCRIBE_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not ready.done():
                ready.cancel()
                why = queue.get_nowait()[1] if not queue.empty() else "no answer to the subscription"
                raise VenueUnavailableError(f"the orders channel did not open: {why}")
            yield await self.balances()
            while True:
                kind, payload = await queue.get()
                if kind == "drop":
                    raise VenueUnavailableError(str(payload))
                if payload.get("tradeId") and dec(payload.get("fillSz") or "0"):
                    order_id = client_ids.order_id_of(str(payload.get("clOrdId") or payload["ordId"]))
                    yield wire.trade_of(payload, f"{payload['instId']}.{self.venue}", order_id)
                yield self._order_of(payload)
        finally:
            self._client.sinks.discard(queue)
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            if not self._client.sinks:
                client = (self._client.clients or {}).pop(self._client.private_url, None)
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.close()

    async def _watch(self, queue: asyncio.Queue[StreamItem]) -> None:
        try:
            await self._client.subscribe_orders()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(("drop", f"{type(exc).__name__}: {exc}"))
