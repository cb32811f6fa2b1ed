"""Request weights per endpoint and the 1-minute weight window behind ``X-MBX-USED-WEIGHT-1M``."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes.binance import errors

DEFAULT_WEIGHT_LIMIT = 6000


def depth_weight(limit: int) -> int:
    """``GET /api/v3/depth`` weighs by ``limit`` (Binance's table)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


# (method, path) -> weight; depth, bookTicker and openOrders depend on parameters (see ``weight_of``).
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/trades"): 25,
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): 1,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/account"): 20,
}


def weight_of(method: str, path: str, params: dict[str, str]) -> int:
    if path == "/api/v3/depth":
        return depth_weight(int(params.get("limit", "100") or 100))
    if path == "/api/v3/ticker/bookTicker":
        return 2 if "symbol" in params else 4
    if path == "/api/v3/openOrders":
        return 6 if "symbol" in params else 80
    if path == "/api/v3/myTrades" and "orderId" in params:
        return 5
    return WEIGHTS.get((method, path), 1)


@dataclass
class WeightWindow:
    """Weight used in the current UTC minute; a request past ``limit`` is refused with 429 + Retry-After."""

    limit: int = DEFAULT_WEIGHT_LIMIT
    minute: int = 0
    used: int = 0

    def charge(self, weight: int, now_ms: int) -> int:
        minute = now_ms // 60_000
        if minute != self.minute:
            self.minute, self.used = minute, 0
        if self.used + weight > self.limit:
            retry_after = max(1, 60 - (now_ms % 60_000) // 1000)
            raise errors.too_many_requests(self.limit, retry_after)
        self.used += weight
        return self.used
