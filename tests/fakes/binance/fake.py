"""``FakeBinance``: the server in a thread of its own, and the hooks a test drives it with.

Every hook runs on the server's event loop (``_call``), so the engine is only ever touched there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.binance.faults import Faults
from tests.fakes.binance.matching import Engine, Fill, Order
from tests.fakes.binance.seed import DEFAULT_SYMBOLS, SymbolRules
from tests.fakes.binance.server import make_app
from tests.fakes.binance.streams import Streams, balance_update
from tests.fakes.binance.weights import DEFAULT_WEIGHT_LIMIT, WeightWindow
from tests.fakes.threaded import ThreadedServer

Levels = Mapping[str | Decimal, str | Decimal] | list[tuple[str | Decimal, str | Decimal]]


def _levels(levels: Levels) -> dict[Decimal, Decimal]:
    items = levels.items() if isinstance(levels, Mapping) else levels
    return {Decimal(str(p)): Decimal(str(q)) for p, q in items if Decimal(str(q))}


class FakeBinance(ThreadedServer):
    """A Binance spot venue on ``127.0.0.1:<free port>``: REST under ``/api/v3``, market streams under
    ``/ws`` and ``/stream``, the WebSocket API at ``/ws-api/v3``."""

    NAME = "Binance"

    def __init__(
        self,
        api_key: str = "fake-key",
        secret: str = "fake-secret",
        symbols: tuple[SymbolRules, ...] = DEFAULT_SYMBOLS,
        weight_limit: int = DEFAULT_WEIGHT_LIMIT,
    ) -> None:
        super().__init__()
        self.keys = {api_key: secret}
        self.api_key, self.secret = api_key, secret
        self.faults = Faults()
        self.weights = WeightWindow(limit=weight_limit)
        self.requests: list[tuple[str, str]] = []
        self.order_times: list[int] = []  # ms of every order request, for the order-count headers
        self._symbols = list(symbols)
        self.ack_gate: asyncio.Event
        self.engine: Engine
        self.streams: Streams

    # --- lifecycle -------------------------------------------------------------------------------------

    async def _app(self) -> web.Application:
        books: dict[str, Any] = {}
        self.streams = Streams(self.faults, books)
        self.engine = Engine(self._symbols, self.streams)
        books.update(self.engine.books)
        return make_app(self)

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.faults.clock_skew_ms

    # --- the market and the account --------------------------------------------------------------------

    def set_balance(self, asset: str, free: str | Decimal, locked: str | Decimal = "0") -> None:
        self._call(lambda: self.engine.set_balance(asset, Decimal(str(free)), Decimal(str(locked))))

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        return self._call(lambda: self.engine.balance(asset))

    def deposit(self, asset: str, amount: str | Decimal) -> None:
        """Credit ``asset`` and push a ``balanceUpdate`` (as a deposit does)."""
        delta = Decimal(str(amount))

        def run() -> None:
            free, locked = self.engine.balance(asset)
            self.engine.set_balance(asset, free + delta, locked)
            self.streams.user_event(balance_update(asset, delta, self.now_ms()))

        self._call(run)

    def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        """Replace the book; resting orders it crosses fill (maker, at their price); a depth diff goes out."""
        self._call(lambda: self.engine.set_book(symbol, _levels(bids), _levels(asks), self.now_ms()))

    def trade(self, symbol: str, price: str | Decimal, qty: str | Decimal) -> None:
        """Print a trade; resting orders it crosses fill first, up to ``qty``."""
        self._call(lambda: self.engine.trade(symbol, Decimal(str(price)), Decimal(str(qty)), self.now_ms()))

    def depth_update_id(self, symbol: str) -> int:
        """The book's last update id (``lastUpdateId`` of a REST snapshot taken now)."""
        return self._call(lambda: self.engine.books[symbol].last_update_id)

    def order(self, order_id: int) -> Order:
        return self._call(lambda: self.engine.orders[order_id])

    def open_orders(self) -> list[Order]:
        return self._call(lambda: self.engine.open_orders(None))

    def all_orders(self) -> list[Order]:
        """Every order the venue has seen, open or not."""
        return self._call(lambda: list(self.engine.orders.values()))

    def fills(self) -> list[Fill]:
        return self._call(lambda: list(self.engine.fills))

    # --- faults ----------------------------------------------------------------------------------------

    def fill_order(self, order_id: int, qty: str | Decimal | None = None) -> Fill:
        """Fill a resting order at its price now, whether or not any client is connected to hear it."""
        amount = None if qty is None else Decimal(str(qty))
        return self._call(lambda: self.engine.fill_order(self.engine.orders[order_id], amount, self.now_ms()))

    def drop_user_stream(self) -> int:
        """Close every user-data connection (the client sees the socket close); returns how many."""
        return self._call(self.streams.drop_user_streams)

    def drop_market_streams(self) -> int:
        """Close every market-stream connection (the client sees the socket close); returns how many."""
        return self._call(self.streams.drop_market_streams)

    def market_connections(self) -> int:
        """How many market-stream connections are open."""
        return self._call(lambda: sum(1 for c in self.streams.connections if c.streams))

    def lose_next_depth_update(self, n: int = 1) -> None:
        """The next ``n`` depth diffs are not sent (the book moves on: their update ids are a gap)."""
        self._set_fault(lose_next_depth=self.faults.lose_next_depth + n)

    def _set_fault(self, **values: object) -> None:
        """Change fault switches on the server's loop (they are read there)."""

        def run() -> None:
            for name, value in values.items():
                setattr(self.faults, name, value)

        self._call(run)

    def lose_next_user_message(self, n: int = 1) -> None:
        """The next ``n`` user-data messages are not sent (to anyone)."""
        self._set_fault(lose_next_user=self.faults.lose_next_user + n)

    def duplicate_next_user_message(self, n: int = 1) -> None:
        """The next ``n`` user-data messages are sent twice."""
        self._set_fault(duplicate_next_user=self.faults.duplicate_next_user + n)

    def delay_next_ack(self, seconds: float) -> None:
        """Hold the next ``POST /api/v3/order`` answer; the order is live meanwhile (cancel, fill)."""
        self._set_fault(ack_delay=seconds)

    def hold_next_ack(self) -> None:
        """Hold the next ``POST /api/v3/order`` answer until ``release_ack()`` (the order is live)."""

        def run() -> None:
            self.ack_gate = asyncio.Event()
            self.faults.hold_ack = True

        self._call(run)

    def release_ack(self) -> None:
        self._call(self.ack_gate.set)

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """Answer the next ``n`` REST requests with ``status`` (5xx) before doing anything."""
        self._set_fault(fail_next=n, fail_status=status)

    def throttle_next(self, n: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``n`` REST requests 429 with ``Retry-After``."""
        self._set_fault(throttle_next=n, throttle_retry_after=retry_after)

    def skew_clock(self, ms: int) -> None:
        """Move the server clock by ``ms`` (positive: the server is ahead of the client)."""
        self._set_fault(clock_skew_ms=ms)

    def set_weight_limit(self, limit: int) -> None:
        self.weights.limit = limit
