"""Recorded Binance responses (tests/data/binance/spot) and the symbol rules the fake enforces.

The recorded ``exchangeInfo`` carries Binance's symbol shape but empty ``filters``; the fake fills in
PRICE_FILTER, LOT_SIZE and NOTIONAL as Binance documents them, from each symbol's ``SymbolRules``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data" / "binance" / "spot"


@cache
def _load(kind: str, name: str) -> Any:
    return json.loads((DATA / kind / name).read_text())


def recorded(name: str) -> Any:
    """A deep copy of a recorded REST response (``http_json/<name>.json``)."""
    return copy.deepcopy(_load("http_json", f"{name}.json"))


def recorded_event(name: str) -> Any:
    """A deep copy of a recorded user-data event (``user_data_json/<name>.json``)."""
    return copy.deepcopy(_load("user_data_json", f"{name}.json"))


def fmt(value: Decimal, places: int = 8) -> str:
    """Binance's decimal strings: fixed 8 places."""
    return f"{value:.{places}f}"


@dataclass(frozen=True)
class SymbolRules:
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    min_notional: Decimal = Decimal("5")

    def filters(self) -> list[dict[str, Any]]:
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(self.min_price),
                "maxPrice": fmt(self.max_price),
                "tickSize": fmt(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(self.min_qty),
                "maxQty": fmt(self.max_qty),
                "stepSize": fmt(self.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(Decimal(0)),
                "maxQty": fmt(self.max_qty),
                "stepSize": fmt(Decimal(0)),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt(Decimal("9000000")),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ]


DEFAULT_SYMBOLS = (
    SymbolRules("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001")),
    SymbolRules("ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.0001")),
    SymbolRules(
        "ETHBTC",
        "ETH",
        "BTC",
        Decimal("0.00001"),
        Decimal("0.0001"),
        Decimal("0.00001"),
        Decimal("100000"),
        Decimal("0.0001"),
        Decimal("100000"),
        Decimal("0.0001"),
    ),
)

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


def exchange_info(symbols: list[SymbolRules], server_time: int, weight_limit: int) -> dict[str, Any]:
    """The recorded exchangeInfo, its one symbol entry used as the template for each configured symbol."""
    info: dict[str, Any] = recorded("exchange_info_response")
    template = info["symbols"][0]
    info["serverTime"] = server_time
    info["rateLimits"] = copy.deepcopy(RATE_LIMITS)
    info["rateLimits"][0]["limit"] = weight_limit
    entries = []
    for rules in symbols:
        entry = copy.deepcopy(template)
        entry.update(
            symbol=rules.symbol,
            baseAsset=rules.base,
            quoteAsset=rules.quote,
            filters=rules.filters(),
            cancelReplaceAllowed=True,
            permissionSets=[["SPOT"]],
        )
        entries.append(entry)
    info["symbols"] = entries
    return info
