"""Binance spot market data (adapter `binance`): instruments, trades, best bid/ask and the book.

On connect the adapter loads the markets with ccxt and yields the instruments of its `symbols`.
Then one combined stream (`<symbol>@trade`, `@bookTicker` and, with depth, `@depth@100ms`) gives
trade ticks, quotes and book diffs. The book follows Binance's procedure: diffs are buffered while
a REST snapshot is fetched, those with `u <= lastUpdateId` dropped, the first applied one straddles
`lastUpdateId + 1` (it follows the snapshot), each later one follows the `u` before it (`U - 1`).
A missing update id is therefore a gap the venue's `Normalizer` sees; the manager then asks
`snapshot()`, which fetches a new snapshot and restarts the procedure from it. A dropped socket is
reconnected with the registry's backoff and jitter, and each book synced again from a snapshot.

The streams are read with aiohttp, not ccxt.pro: ccxt turns prices and sizes into floats and keeps
each diff's update ids to itself (it merges diffs into its own book and resyncs it on its own), so
neither exact decimals nor the Normalizer's gap detection and resync would be possible.

Everything asynchronous runs on the adapter's own event loop in a thread of its own (`streaming`);
the manager's thread calls `poll()` (what arrived since), `snapshot()` and `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from meltica.domain.marketdata import (
    AggressorSide,
    BookLevel,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from meltica.marketdata import streaming
from meltica.marketdata.normalize import BookUpdate, RawData
from meltica.retry import RetryPolicy
from meltica.venues.common import dec as _num

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("meltica.venues.binance")
MS = 1_000_000
DEFAULT_VENUE = "BINANCE"
LIVE = ("https://api.binance.com", "wss://stream.binance.com:9443")
TESTNET = ("https://testnet.binance.vision", "wss://stream.testnet.binance.vision")
SNAPSHOT_LIMIT = 1000  # levels per side of a REST depth snapshot
SNAPSHOT_ATTEMPTS = 4  # REST tries of one resync before the connection fails
SNAPSHOT_TIMEOUT_S = 10  # one REST depth request
SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")


@dataclass
class _Book:
    """The sync state of one symbol's book (touched on the adapter's loop only)."""

    symbol: str
    instrument_id: str
    buffering: bool = True  # diffs wait while a snapshot is fetched
    buffer: list[dict[str, Any]] = field(default_factory=list)
    after: int | None = None  # a snapshot's lastUpdateId the next applied diff must straddle
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def settle(self, snapshot_id: int) -> list[dict[str, Any]]:
        """A snapshot at `snapshot_id` arrived: stop buffering; the diffs buffered meanwhile."""
        pending, self.buffer = self.buffer, []
        self.after, self.buffering = snapshot_id, False
        return pending


class BinanceAdapter(streaming.LoopThreadAdapter):
    """Binance spot market data for `symbols` (comma-separated), as instruments `SYMBOL.VENUE`."""

    KIND = "binance"

    PARAMS = {"symbols", "venue", "rest_url", "ws_url", "testnet", "depth", "api_key_file", "secret_file"}

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__(log)
        self.symbols = streaming.symbols(
            "binance",
            params,
            self.PARAMS,
            SYMBOL,
            "comma-separated Binance symbols, e.g. BTCUSDT,ETHUSDT",
            "a Binance symbol (letters and digits)",
        )
        self.venue = streaming.venue(params, DEFAULT_VENUE)
        self.testnet = streaming.flag(params, "testnet", False)
        self.depth = streaming.flag(params, "depth", True)
        rest, ws = TESTNET if self.testnet else LIVE
        self.rest_url = streaming.url(params, "rest_url", rest, ("http://", "https://"))
        self.ws_url = streaming.url(params, "ws_url", ws, ("ws://", "wss://"))
        streaming.key_files(params, ("api_key_file", "secret_file"))  # market data needs no key
        if ("api_key_file" in params) != ("secret_file" in params):
            raise ValueError("api_key_file and secret_file go together")
        if importlib.util.find_spec("ccxt") is None:
            raise ValueError("the binance adapter needs ccxt: pip install 'meltica[binance]'")
        self._books = {s: _Book(s, f"{s}.{self.venue}") for s in self.symbols} if self.depth else {}

    # -- the manager's side (its thread; connect, poll and close are the base's) ----------------------
    def snapshot(self, instrument_id: str) -> OrderBookSnapshot | None:
        book = self._books.get(instrument_id.partition(".")[0])
        if book is None or book.instrument_id != instrument_id:
            return None
        return self._run(self._resync(book), timeout=60)

    # -- the adapter's loop ---------------------------------------------------------------------------
    async def _open(self) -> None:
        """The HTTP session, the instruments of `symbols` from ccxt's markets (emitted first), and
        the market stream started."""
        import aiohttp

        from meltica.venues.binance import wire  # the execution adapter's mapping (imports ccxt)

        ccxtpro = importlib.import_module("ccxt.pro")
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        exchange = ccxtpro.binance(
            {
                "timeout": 30_000,
                "options": {
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                    "fetchMargins": False,
                },
            }
        )
        try:
            exchange.urls["api"]["public"] = f"{self.rest_url}/api/v3"  # live, testnet or the override
            markets = await exchange.load_markets()
        finally:
            await exchange.close()
        by_id = {m["id"]: m for m in markets.values() if m.get("spot")}
        missing = [s for s in self.symbols if s not in by_id]
        if missing:
            raise ValueError(f"Binance has no spot symbol {missing[0]}")
        defined: list[RawData] = []
        for symbol in self.symbols:  # as BinanceExecution.instruments maps them
            market = by_id[symbol]
            maker, taker = (_num(Decimal(str(market.get(k) or 0))) for k in ("maker", "taker"))
            defined.append(wire.instrument_of(market["info"], self.venue, maker, taker))
        self._emit(defined)
        self._stream = asyncio.get_running_loop().create_task(self._stream_main())

    async def _stream_forever(self) -> None:
        """Read the market stream, reconnecting a dropped socket after the registry's backoff."""
        import aiohttp

        assert self._session is not None  # nosec B101 # typing; opened by connect
        retry, attempt = RetryPolicy(), 0
        streams = [f"{s.lower()}@{kind}" for s in self.symbols for kind in ("trade", "bookTicker")]
        streams += [f"{s.lower()}@depth@100ms" for s in self._books]
        url = f"{self.ws_url}/stream?streams={'/'.join(streams)}"
        while True:
            try:
                async with self._session.ws_connect(url, heartbeat=60) as ws:
                    self.connects += 1
                    log.info("binance %s: market stream open (%d streams)", self.venue, len(streams))
                    attempt = await self._read(ws, attempt)
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                log.warning("binance %s: market stream: %s: %s", self.venue, type(err).__name__, err)
            attempt += 1
            delay = retry.delay(attempt)
            log.warning("binance %s: market stream closed; reconnecting in %.1f s", self.venue, delay)
            await asyncio.sleep(delay)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, attempt: int) -> int:
        """Handle messages until the socket closes; the books sync meanwhile. Returns the retries
        to count from: none once the stream carried data and the books synced, else `attempt`
        (the backoff grows while snapshots fail: they cost request weight)."""
        import aiohttp

        for book in self._books.values():
            book.buffering, book.buffer, book.after = True, [], None
        syncing = asyncio.ensure_future(self._sync_all(ws))
        carried = False
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    self._dispatch(json.loads(msg.data))
                except (KeyError, TypeError, ValueError, ArithmeticError) as err:
                    log.warning(
                        "binance %s: skipped a malformed message (%s: %s)",
                        self.venue,
                        type(err).__name__,
                        err,
                    )
                carried = True
        finally:
            synced = syncing.done() and not syncing.cancelled() and syncing.result()
            syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await syncing
        return 0 if carried and synced else attempt

    async def _sync_all(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Sync every book from a snapshot (a reconnect starts them over); a failure drops the socket
        so that the reconnect tries again."""
        try:
            for book in self._books.values():
                snapshot, pending = await self._sync(book)
                self._emit([snapshot])
                self._apply_all(book, pending)
        except Exception as err:  # the network, an HTTP error, a malformed answer: all the same here
            log.warning("binance %s: book snapshot failed (%s); reconnecting", self.venue, err)
            await ws.close()
            return False
        return True

    async def _resync(self, book: _Book) -> OrderBookSnapshot:
        """A new snapshot of `book` for the manager (after a gap); later diffs follow it."""
        retry = RetryPolicy()
        for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
            try:
                snapshot, pending = await self._sync(book)
            except Exception as err:  # the network, an HTTP error, a malformed answer
                if attempt == SNAPSHOT_ATTEMPTS:
                    raise ConnectionError(f"depth snapshot of {book.symbol} failed: {err}") from err
                await asyncio.sleep(retry.delay(attempt))
                continue
            self._drop_queued(book.instrument_id, snapshot.sequence)  # diffs the snapshot holds
            self._apply_all(book, pending)
            return snapshot
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sync(self, book: _Book) -> tuple[OrderBookSnapshot, list[dict[str, Any]]]:
        """Buffer `book`'s diffs, fetch a snapshot, and hand back the snapshot and what was buffered."""
        async with book.lock:
            book.buffering = True
            try:
                snapshot = await self._fetch_snapshot(book)
            except BaseException:
                book.buffering = False  # diffs flow on (the Normalizer drops them until a resync)
                raise
            return snapshot, book.settle(snapshot.sequence)

    async def _fetch_snapshot(self, book: _Book) -> OrderBookSnapshot:
        import aiohttp

        assert self._session is not None  # nosec B101 # typing; opened by connect
        url = f"{self.rest_url}/api/v3/depth"
        query = {"symbol": book.symbol, "limit": str(SNAPSHOT_LIMIT)}
        wait = aiohttp.ClientTimeout(total=SNAPSHOT_TIMEOUT_S)
        async with self._session.get(url, params=query, timeout=wait) as response:
            body = await response.text()
            if response.status != 200:
                raise ConnectionError(f"GET /api/v3/depth {book.symbol}: HTTP {response.status} {body[:200]}")
        data = json.loads(body)
        return OrderBookSnapshot(
            book.instrument_id,
            int(data["lastUpdateId"]),
            tuple(BookLevel(_num(p), _num(q)) for p, q in data["bids"]),
            tuple(BookLevel(_num(p), _num(q)) for p, q in data["asks"]),
            time.time_ns(),  # a spot depth snapshot carries no time
        )

    # -- messages -------------------------------------------------------------------------------------
    def _dispatch(self, message: dict[str, Any]) -> None:
        stream, data = str(message.get("stream", "")), message.get("data")
        if not isinstance(data, dict):
            return  # a subscription answer
        kind = stream.partition("@")[2]
        symbol = str(data.get("s", ""))
        if kind == "trade":
            self._emit([self._trade(symbol, data)])
        elif kind == "bookTicker":
            quote = self._quote(symbol, data)
            if quote is not None:
                self._emit([quote])
        elif kind.startswith("depth") and symbol in self._books:
            book = self._books[symbol]
            if book.buffering:
                book.buffer.append(data)
            else:
                self._apply_all(book, [data])

    def _trade(self, symbol: str, d: dict[str, Any]) -> TradeTick:
        # the buyer was the maker: the seller took liquidity
        aggressor = AggressorSide.SELLER if d["m"] else AggressorSide.BUYER
        iid = f"{symbol}.{self.venue}"
        return TradeTick(iid, _num(d["p"]), _num(d["q"]), aggressor, str(d["t"]), int(d["T"]) * MS)

    def _quote(self, symbol: str, d: dict[str, Any]) -> QuoteTick | None:
        bid, ask = _num(d["b"]), _num(d["a"])
        if not bid or not ask:
            return None  # a side of the book is empty: no quote
        iid = f"{symbol}.{self.venue}"
        return QuoteTick(iid, bid, _num(d["B"]), ask, _num(d["A"]), time.time_ns())  # no time sent

    def _apply_all(self, book: _Book, diffs: list[dict[str, Any]]) -> None:
        """Emit `diffs` as book updates: those the snapshot holds dropped, the first after it
        following the snapshot when it straddles it, every other one following `U - 1`."""
        out: list[RawData] = []
        for d in diffs:
            first, last = int(d["U"]), int(d["u"])
            prev = first - 1
            if book.after is not None:
                if last <= book.after:
                    continue
                if first <= book.after + 1:
                    prev = book.after
                book.after = None
            ts = int(d["E"]) * MS
            deltas = streaming.book_deltas(book.instrument_id, d["b"], d["a"], last, ts)
            out.append(BookUpdate(book.instrument_id, last, prev, tuple(deltas)))
        self._emit(out)
