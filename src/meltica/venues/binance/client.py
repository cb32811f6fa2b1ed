"""ccxt's Binance with what the adapter needs of it: exact failed answers, the weight header, and the
user-data stream's raw events (each one, in order) handed to whoever listens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ccxt.pro

from meltica.venues.binance.config import BinanceConfig
from meltica.venues.binance.errors import BinanceAnswer, BinanceHttpError
from meltica.venues.common import CheckedAnswers, Sinks, header, retry_after

WEIGHT_HEADER = "x-mbx-used-weight-1m"

StreamItem = tuple[str, Any]
"""("report", executionReport) | ("balance", outboundAccountPosition) | ("drop", why)."""


def _answer(status: int, headers: Mapping[str, str] | None, body: str | None, parsed: Any) -> BinanceAnswer:
    if not isinstance(parsed, Mapping):
        try:
            parsed = json.loads(body or "")
        except ValueError:
            parsed = {}
    parsed = parsed if isinstance(parsed, Mapping) else {}
    code = parsed.get("code")
    data = parsed.get("data")
    return BinanceAnswer(
        status=status,
        code=code if isinstance(code, int) else None,
        msg=str(parsed.get("msg") or body or ""),
        retry_after=retry_after(headers),
        data=data if isinstance(data, Mapping) else {},
    )


class BinanceClient(CheckedAnswers, ccxt.pro.binance):  # type: ignore[misc]
    """One ccxt Binance spot client configured from `BinanceConfig` (rate limiter on)."""

    def __init__(self, config: BinanceConfig) -> None:
        super().__init__(
            {
                "apiKey": config.api_key,
                "secret": config.secret,
                "enableRateLimit": True,
                "options": {
                    "defaultType": "spot",
                    "recvWindow": config.recv_window,
                    "adjustForTimeDifference": True,  # signed timestamps on the venue's clock
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,  # both call /sapi, which the spot API keys of a
                    "fetchMargins": False,  # testnet (and the fake) do not have
                },
            }
        )
        if config.sandbox:
            self.set_sandbox_mode(True)
        api = self.urls["api"]
        if config.rest_url:
            base = config.rest_url.rstrip("/")
            api["public"] = api["private"] = f"{base}/api/v3"
            api["v1"] = f"{base}/api/v1"
        if config.ws_url:
            base = config.ws_url.rstrip("/")
            api["ws"]["spot"] = f"{base}/ws"
            api["ws"]["ws-api"]["spot"] = f"{base}/ws-api/v3"
        self.weight_used = 0
        self.sinks: Sinks[StreamItem] = Sinks()

    @property
    def user_url(self) -> str:
        """The WebSocket API endpoint the user-data subscription lives on."""
        return str(self.urls["api"]["ws"]["ws-api"]["spot"])

    # --- REST ------------------------------------------------------------------------------------------

    def check_answer(
        self, code: int, headers: Mapping[str, str] | None, body: str | None, response: Any
    ) -> None:
        used = header(headers, WEIGHT_HEADER)
        if used is not None and used.isdigit():
            self.weight_used = int(used)
        if code >= 400:
            raise BinanceHttpError(_answer(code, headers, body, response))

    # --- the user-data stream --------------------------------------------------------------------------

    def handle_order_update(self, client: Any, message: dict[str, Any]) -> None:
        if message.get("e") == "executionReport":
            self.sinks.send(("report", message))
        super().handle_order_update(client, message)

    def handle_balance(self, client: Any, message: dict[str, Any]) -> None:
        if message.get("e") == "outboundAccountPosition":
            self.sinks.send(("balance", message))
        super().handle_balance(client, message)

    def handle_event_stream_terminated(self, client: Any, message: dict[str, Any]) -> None:
        self.sinks.send(("drop", f"Binance ended the user-data stream: {message}"))
        super().handle_event_stream_terminated(client, message)

    def on_close(self, client: Any, error: Any) -> None:
        if client.url == self.user_url:
            self.sinks.send(("drop", f"the user-data socket closed ({error})"))
        super().on_close(client, error)

    def on_error(self, client: Any, error: Any) -> None:
        if client.url == self.user_url:
            self.sinks.send(("drop", f"the user-data socket failed ({error})"))
        super().on_error(client, error)
