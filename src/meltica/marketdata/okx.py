"""OKX spot market data (adapter `okx`): instruments, trades, best bid/ask and the checksummed book.

Instrument ids keep OKX's instId: `BTC-USDT.OKX` (the id OKX's REST and websockets take, so no
mapping can go wrong). On connect the adapter reads `/api/v5/public/instruments?instType=SPOT`
and yields the instruments of its `symbols`. Then one public websocket subscribes, per symbol, to
`trades`, `bbo-tbt` (quotes) and, with depth, `books` (400 levels: a snapshot, then updates).

The book is kept as OKX sends it and verified after the snapshot and every update: each update's
`prevSeqId` must be the `seqId` before it, and OKX's CRC32 `checksum` over the best 25 levels
(`okx_book.py`) must match. A missing update reaches the venue's `Normalizer` as a gap by its
sequence ids; a checksum mismatch is handed on as an update that follows no sequence, so the
Normalizer sees a gap there as well (counted as one). Either way the manager then asks
`snapshot()`, which resubscribes the instrument's `books` channel and answers with the snapshot
OKX sends for it; later updates follow that snapshot. An update with `seqId == prevSeqId` (OKX's
keep-alive when the book did not move) is verified and not passed on. A dropped socket is
reconnected with the registry's backoff and jitter, and every book starts again from the snapshot
its subscription brings.

As with Binance, the streams are read with aiohttp, not ccxt.pro: ccxt turns levels into floats
(the checksum is over OKX's strings, and Meltica's amounts are exact) and keeps seqIds to itself.
The instruments come from one public GET for the same reason: their filters stay exact strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meltica.domain.marketdata import (
    AggressorSide,
    BookLevel,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from meltica.marketdata import streaming
from meltica.marketdata.normalize import BookUpdate
from meltica.marketdata.okx_book import OkxBook
from meltica.retry import RetryPolicy
from meltica.venues.common import dec as _num

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("meltica.venues.okx")
MS = 1_000_000
DEFAULT_VENUE = "OKX"
LIVE = ("https://www.okx.com", "wss://ws.okx.com:8443")
DEMO_WS = "wss://wspap.okx.com:8443"  # demo trading's public websocket (REST is the same host)
PUBLIC_WS_PATH = "/ws/v5/public"
PING_EVERY_S = 20  # OKX closes a public socket idle for 30 s; "ping" keeps it open
SNAPSHOT_ATTEMPTS = 4  # resubscriptions of one resync before the connection fails
SNAPSHOT_TIMEOUT_S = 10  # waiting for the snapshot of one resubscription
NO_SEQUENCE = -2  # the previous sequence of a rejected update: it follows nothing the Normalizer has
INST_ID = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")


class ChecksumMismatchError(ValueError):
    """A book's levels do not give the checksum OKX sent with them."""


@dataclass
class _Book:
    """The sync state of one instrument's book (touched on the adapter's loop only)."""

    inst_id: str
    instrument_id: str
    levels: OkxBook = field(default_factory=OkxBook)
    seq: int | None = None  # the seqId the book is at; None: out of sync until a snapshot
    waiter: asyncio.Future[OrderBookSnapshot] | None = None  # a resync waiting for its snapshot


class OkxAdapter(streaming.LoopThreadAdapter):
    """OKX spot market data for `symbols` (comma-separated instIds), as instruments `instId.VENUE`."""

    KIND = "okx"

    PARAMS = {
        "symbols",
        "venue",
        "demo",
        "rest_url",
        "ws_url",
        "depth",
        "api_key_file",
        "secret_file",
        "passphrase_file",
    }

    def __init__(self, params: dict[str, str]) -> None:
        super().__init__(log)
        self.symbols = streaming.symbols(
            "okx",
            params,
            self.PARAMS,
            INST_ID,
            "comma-separated OKX instIds, e.g. BTC-USDT,ETH-USDT",
            "an OKX spot instId (BASE-QUOTE, e.g. BTC-USDT)",
        )
        self.venue = streaming.venue(params, DEFAULT_VENUE)
        self.depth = streaming.flag(params, "depth", True)
        self.rest_url = streaming.url(params, "rest_url", LIVE[0], ("http://", "https://"))
        self.demo = streaming.flag(params, "demo", False)
        self.ws_url = streaming.url(params, "ws_url", DEMO_WS if self.demo else LIVE[1], ("ws://", "wss://"))
        streaming.key_files(params, ("api_key_file", "secret_file", "passphrase_file"))  # never read here
        self.checksum_mismatches = 0  # books found not to match OKX's checksum
        self._books = {s: _Book(s, f"{s}.{self.venue}") for s in self.symbols} if self.depth else {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    # -- the manager's side (its thread; connect, poll and close are the base's) ----------------------
    def snapshot(self, instrument_id: str) -> OrderBookSnapshot | None:
        book = self._books.get(instrument_id.rpartition(".")[0])
        if book is None or book.instrument_id != instrument_id:
            return None
        return self._run(self._resync(book), timeout=SNAPSHOT_ATTEMPTS * (SNAPSHOT_TIMEOUT_S + 10))

    # -- the adapter's loop ---------------------------------------------------------------------------
    async def _open(self) -> None:
        """The HTTP session, the instruments of `symbols` (emitted first), the stream started."""
        import aiohttp

        from meltica.venues.okx import wire

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        url = f"{self.rest_url}/api/v5/public/instruments"
        async with self._session.get(url, params={"instType": "SPOT"}) as response:
            body = await response.text()
            if response.status != 200:
                raise ConnectionError(f"GET /api/v5/public/instruments: HTTP {response.status} {body[:200]}")
        answer = json.loads(body)
        if str(answer.get("code")) != "0":
            raise ConnectionError(
                f"GET /api/v5/public/instruments: OKX code {answer.get('code')} {answer.get('msg')}"
            )
        by_id = {str(i["instId"]): i for i in answer["data"]}
        missing = [s for s in self.symbols if s not in by_id]
        if missing:
            raise ValueError(f"OKX has no spot instrument {missing[0]}")
        self._emit([wire.instrument_of(by_id[s], self.venue) for s in self.symbols])
        self._stream = asyncio.get_running_loop().create_task(self._stream_main())

    def _subscriptions(self) -> list[dict[str, str]]:
        args = [{"channel": c, "instId": s} for s in self.symbols for c in ("trades", "bbo-tbt")]
        return args + [{"channel": "books", "instId": s} for s in self._books]

    async def _stream_forever(self) -> None:
        """Read the public stream, reconnecting a dropped socket after the registry's backoff."""
        import aiohttp

        assert self._session is not None  # nosec B101 # typing; opened by connect
        retry, attempt = RetryPolicy(), 0
        while True:
            for book in self._books.values():  # each book starts again from its subscription's snapshot
                book.seq = None
            try:
                async with self._session.ws_connect(self.ws_url + PUBLIC_WS_PATH) as ws:
                    self._ws = ws
                    self.connects += 1
                    await ws.send_json({"op": "subscribe", "args": self._subscriptions()})
                    log.info("okx %s: public stream open (%d symbols)", self.venue, len(self.symbols))
                    if await self._read(ws):
                        attempt = 0
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                log.warning("okx %s: public stream: %s: %s", self.venue, type(err).__name__, err)
            finally:
                self._ws = None
            attempt += 1
            delay = retry.delay(attempt)
            log.warning("okx %s: public stream closed; reconnecting in %.1f s", self.venue, delay)
            await asyncio.sleep(delay)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Handle messages until the socket closes (pinging it while idle); True if any data came."""
        import aiohttp

        carried = False
        pinger = asyncio.ensure_future(self._ping(ws))
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT or msg.data == "pong":
                    continue
                try:
                    carried = self._dispatch(json.loads(msg.data)) or carried
                except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as err:
                    log.warning(
                        "okx %s: skipped a malformed message (%s: %s)", self.venue, type(err).__name__, err
                    )
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pinger
        return carried

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(PING_EVERY_S)
            await ws.send_str("ping")

    async def _resync(self, book: _Book) -> OrderBookSnapshot:
        """A fresh snapshot of `book` for the manager: its `books` channel resubscribed, and the
        snapshot that brings (tried again when it does not arrive or does not verify)."""
        retry = RetryPolicy()
        arg = {"channel": "books", "instId": book.inst_id}
        for attempt in range(1, SNAPSHOT_ATTEMPTS + 1):
            waiter: asyncio.Future[OrderBookSnapshot] = asyncio.get_running_loop().create_future()
            book.waiter, book.seq = waiter, None
            try:
                ws = self._ws
                if ws is not None:  # else the reconnect subscribes, and its snapshot answers
                    await ws.send_json({"op": "unsubscribe", "args": [arg]})
                    await ws.send_json({"op": "subscribe", "args": [arg]})
                snapshot = await asyncio.wait_for(waiter, SNAPSHOT_TIMEOUT_S)
            except (ChecksumMismatchError, TimeoutError, ConnectionError) as err:
                if attempt == SNAPSHOT_ATTEMPTS:
                    raise ConnectionError(f"books snapshot of {book.inst_id} failed: {err}") from err
                await asyncio.sleep(retry.delay(attempt))
                continue
            finally:
                if book.waiter is waiter:
                    book.waiter = None
            self._drop_queued(book.instrument_id, snapshot.sequence)  # updates the snapshot holds
            return snapshot
        raise AssertionError("unreachable")  # pragma: no cover

    # -- messages -------------------------------------------------------------------------------------
    def _dispatch(self, message: dict[str, Any]) -> bool:
        """Handle one message; True if it carried market data."""
        if "event" in message:
            if message["event"] == "error":
                log.warning("okx %s: %s (code %s)", self.venue, message.get("msg"), message.get("code"))
            return False
        channel = str(message["arg"]["channel"])
        inst_id = str(message["arg"]["instId"])
        iid = f"{inst_id}.{self.venue}"
        for d in message["data"]:
            if channel == "trades":
                side = AggressorSide.BUYER if d["side"] == "buy" else AggressorSide.SELLER  # the taker's
                self._emit(
                    [TradeTick(iid, _num(d["px"]), _num(d["sz"]), side, str(d["tradeId"]), int(d["ts"]) * MS)]
                )
            elif channel == "bbo-tbt":
                if d["bids"] and d["asks"]:  # a side of the book is empty: no quote
                    (bid, bid_sz, *_), (ask, ask_sz, *_) = d["bids"][0], d["asks"][0]
                    quote = QuoteTick(
                        iid, _num(bid), _num(bid_sz), _num(ask), _num(ask_sz), int(d["ts"]) * MS
                    )
                    self._emit([quote])
            elif channel == "books" and inst_id in self._books:
                self._book(self._books[inst_id], str(message.get("action", "update")), d)
        return True

    def _book(self, book: _Book, action: str, d: dict[str, Any]) -> None:
        seq, prev, ts = int(d["seqId"]), int(d["prevSeqId"]), int(d["ts"]) * MS
        if action == "snapshot":
            book.levels.load(d["bids"], d["asks"])
            if book.levels.checksum() != int(d["checksum"]):
                self._mismatch(book, seq)
                return
            book.seq = seq
            bids, asks = book.levels.top(max(len(book.levels.bids), len(book.levels.asks)))
            snapshot = OrderBookSnapshot(
                book.instrument_id,
                seq,
                tuple(BookLevel(_num(p), _num(q)) for p, q in bids),
                tuple(BookLevel(_num(p), _num(q)) for p, q in asks),
                ts,
            )
            if book.waiter is not None and not book.waiter.done():
                book.waiter.set_result(snapshot)
            else:
                self._emit([snapshot])
            return
        if book.seq is None:
            return  # out of sync: dropped until a snapshot (the Normalizer was told)
        if prev != book.seq:  # an update was lost: the Normalizer sees the gap by the sequence ids
            log.warning("okx %s: %s: seqId gap (%d after %d)", self.venue, book.inst_id, prev, book.seq)
            book.seq = None
            self._emit([BookUpdate(book.instrument_id, seq, prev, ())])
            return
        book.levels.apply(d["bids"], d["asks"])
        if book.levels.checksum() != int(d["checksum"]):
            self._mismatch(book, seq)
            return
        if seq == prev:
            return  # a keep-alive: the book did not move
        book.seq = seq
        deltas = streaming.book_deltas(book.instrument_id, d["bids"], d["asks"], seq, ts)
        self._emit([BookUpdate(book.instrument_id, seq, prev, tuple(deltas))])

    def _mismatch(self, book: _Book, seq: int) -> None:
        """The book at `seq` does not verify: a resync waiting for it tries again; otherwise the
        Normalizer gets an update that follows no sequence (a gap), and the manager resyncs."""
        self.checksum_mismatches += 1
        book.seq = None
        log.warning(
            "okx %s: %s: book checksum mismatch at seqId %d; resyncing", self.venue, book.inst_id, seq
        )
        if book.waiter is not None and not book.waiter.done():
            book.waiter.set_exception(ChecksumMismatchError(f"snapshot {seq}: checksum mismatch"))
        else:
            self._emit([BookUpdate(book.instrument_id, seq, NO_SEQUENCE, ())])
