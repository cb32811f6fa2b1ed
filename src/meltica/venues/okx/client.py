"""ccxt's OKX with what the adapter needs of it: exact failed answers, and the private `orders`
channel's raw pushes (each one, in order) handed to whoever listens. ccxt signs the REST calls
(OK-ACCESS-KEY/SIGN/TIMESTAMP/PASSPHRASE) and the websocket login."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import ccxt.pro

from meltica.venues.common import CheckedAnswers, Sinks, retry_after
from meltica.venues.okx.config import OkxConfig
from meltica.venues.okx.errors import OkxAnswer, OkxHttpError

StreamItem = tuple[str, Any]
"""("order", one `orders` push's data entry) | ("drop", why)."""

ORDERS = {"channel": "orders", "instType": "SPOT"}


def _answer(status: int, headers: Mapping[str, str] | None, body: str | None) -> OkxAnswer:
    try:
        parsed = json.loads(body or "")
    except ValueError:
        parsed = {}
    parsed = parsed if isinstance(parsed, Mapping) else {}
    data = parsed.get("data")
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else {}
    return OkxAnswer(
        status=status,
        code=str(parsed.get("code", "")),
        msg=str(parsed.get("msg") or ("" if parsed else body or "")),
        s_code=str(first.get("sCode", "")),
        s_msg=str(first.get("sMsg", "")),
        retry_after=retry_after(headers),
    )


class OkxClient(CheckedAnswers, ccxt.pro.okx):  # type: ignore[misc]
    """One ccxt OKX client configured from `OkxConfig` (rate limiter on; no markets needed)."""

    def __init__(self, config: OkxConfig) -> None:
        super().__init__(
            {
                "apiKey": config.api_key,
                "secret": config.secret,
                "password": config.passphrase,
                "enableRateLimit": True,
            }
        )
        if config.demo:
            self.set_sandbox_mode(True)  # x-simulated-trading: 1, OKX's demo websocket
        if config.rest_url:
            self.urls["api"]["rest"] = config.rest_url.rstrip("/")
        if config.ws_url:
            self.urls["api"]["ws"] = config.ws_url.rstrip("/") + "/ws/v5"
        self.sinks: Sinks[StreamItem] = Sinks()
        self.orders_ready = asyncio.Event()  # OKX confirmed the `orders` subscription

    @property
    def private_url(self) -> str:
        return str(self.get_url("orders", "private"))

    def check_answer(
        self, code: int, headers: Mapping[str, str] | None, body: str | None, response: Any
    ) -> None:
        answer = _answer(code, headers, body)
        if code >= 400 or answer.code not in ("0", ""):
            raise OkxHttpError(answer)

    # --- the private stream ----------------------------------------------------------------------------
    async def subscribe_orders(self) -> Any:
        """Log in on the private socket and subscribe to the account's SPOT `orders`; pending until
        the socket fails (its pushes go to the sinks, never to ccxt's order cache)."""
        await self.authenticate()
        request = {"op": "subscribe", "args": [ORDERS]}
        return await self.watch(self.private_url, "meltica:orders", request, "meltica:orders")

    def handle_subscription_status(self, client: Any, message: dict[str, Any]) -> Any:
        if (message.get("arg") or {}).get("channel") == ORDERS["channel"]:
            self.orders_ready.set()
        return super().handle_subscription_status(client, message)

    def handle_orders(self, client: Any, message: dict[str, Any]) -> None:
        for entry in message.get("data") or []:
            self.sinks.send(("order", entry))

    def on_close(self, client: Any, error: Any) -> None:
        if client.url == self.private_url:
            self.orders_ready.clear()
            self.sinks.send(("drop", f"the private socket closed ({error})"))
        super().on_close(client, error)

    def on_error(self, client: Any, error: Any) -> None:
        if client.url == self.private_url:
            self.sinks.send(("drop", f"the private socket failed ({error})"))
        super().on_error(client, error)
