"""What the streaming venue adapters (Binance, OKX) share: their asyncio loop in a thread of its own
behind the manager's blocking `poll()`/`close()`, and the parsing of their parameters.

A subclass opens its session and stream in `_open()` (on the loop) and keeps reading in
`_stream_forever()`; what it reads goes out through `_emit()`. A stream that ends by an error (a
bug, never a drop: drops are reconnected) is raised by the next `poll()`, which fails the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from meltica.domain.marketdata import BookAction, OrderBookDelta
from meltica.domain.values import OrderSide
from meltica.marketdata.normalize import BookUpdate, RawData
from meltica.venues.common import dec

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")
VENUE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # the suffix of instrument ids: no dot
BOOLEAN = {"true": True, "false": False}


class LoopThreadAdapter:
    """The adapter's event loop in a thread; the manager's thread calls `connect()`, `poll()` (what
    arrived since) and `close()`."""

    KIND: ClassVar[str]  # the adapter's kind, as logs and the loop's thread name it
    venue: str

    def __init__(self, log: logging.Logger) -> None:
        self.connects = 0  # stream connections opened so far
        self._log = log
        self._out: list[RawData] = []
        self._out_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stream: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None  # what ended the stream (a bug: never a drop)

    # -- the manager's side (its thread) --------------------------------------------------------------
    def connect(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        name = f"{self.KIND}-{self.venue}"
        self._thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._run(self._open(), timeout=60)

    def poll(self) -> list[RawData] | None:
        if self._failure is not None:
            raise self._failure
        with self._out_lock:
            out, self._out = self._out, []
        return out

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if not loop.is_running():
            loop.close()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        assert self._loop is not None, "connect first"  # nosec B101 # typing; a usage error
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _emit(self, items: list[RawData]) -> None:
        with self._out_lock:
            self._out.extend(items)

    def _drop_queued(self, instrument_id: str, sequence: int) -> None:
        """Drop the book updates of `instrument_id` still queued that a snapshot at `sequence` holds."""
        with self._out_lock:
            self._out = [
                item
                for item in self._out
                if not (
                    isinstance(item, BookUpdate)
                    and item.instrument_id == instrument_id
                    and item.sequence <= sequence
                )
            ]

    # -- the adapter's loop ---------------------------------------------------------------------------
    async def _open(self) -> None:
        """Open the session, emit the instruments and start `_stream_main()` as `self._stream`."""
        raise NotImplementedError

    async def _stream_forever(self) -> None:
        """Read the stream, reconnecting a dropped socket."""
        raise NotImplementedError

    async def _shutdown(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream
        if self._session is not None:
            await self._session.close()

    async def _stream_main(self) -> None:
        try:
            await self._stream_forever()
        except Exception as err:  # a bug, not a drop: poll() raises it and the connection fails
            self._log.exception("%s %s: market stream failed", self.KIND, self.venue)
            self._failure = err


def book_deltas(
    iid: str, bids: list[list[str]], asks: list[list[str]], sequence: int, ts: int
) -> list[OrderBookDelta]:
    """A book update's levels (`[price, size, ...]`; size 0 deletes the level), bids then asks."""
    return [_delta(iid, OrderSide.BUY, lv, sequence, ts) for lv in bids] + [
        _delta(iid, OrderSide.SELL, lv, sequence, ts) for lv in asks
    ]


def _delta(iid: str, side: OrderSide, level: list[str], sequence: int, ts: int) -> OrderBookDelta:
    price, size = dec(level[0]), dec(level[1])
    action = BookAction.DELETE if size == 0 else BookAction.UPDATE
    return OrderBookDelta(iid, action, side, price, size, sequence, ts)


# -- parameters ---------------------------------------------------------------------------------------
def symbols(
    kind: str, params: dict[str, str], allowed: set[str], pattern: re.Pattern[str], hint: str, what: str
) -> list[str]:
    """The `symbols` of `params` (comma-separated, upper-cased, each once) after refusing a parameter
    not `allowed`; `hint` says what symbols the adapter takes, `what` what one of them is."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; {kind} takes {', '.join(sorted(allowed))}")
    named = (s.strip().upper() for s in params.get("symbols", "").split(","))
    found = list(dict.fromkeys(s for s in named if s))
    if not found:
        raise ValueError(f"{kind} needs symbols ({hint})")
    bad = [s for s in found if not pattern.match(s)]
    if bad:
        raise ValueError(f"symbols: {bad[0]!r} is not {what}")
    return found


def venue(params: dict[str, str], default: str) -> str:
    """The venue the instrument ids end in."""
    name = params.get("venue", default)
    if not VENUE.match(name):
        raise ValueError(f"venue must be letters, digits, _ or -, got {name!r}")
    return name


def flag(params: dict[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() not in BOOLEAN:
        raise ValueError(f"{name} must be true or false, got {raw!r}")
    return BOOLEAN[raw.lower()]


def url(params: dict[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    found = params.get(name, default).rstrip("/")
    if not found.startswith(schemes) or found.endswith("//"):
        raise ValueError(f"{name} must be a {' or '.join(s[:-3] for s in schemes)} URL, got {found!r}")
    return found


def key_files(params: dict[str, str], names: tuple[str, ...]) -> None:
    """Refuse a named key file that is not a readable file (market data never reads it)."""
    for name in names:
        if name in params:
            readable(name, Path(params[name]).expanduser())


def readable(name: str, path: Path) -> None:
    """Refuse a key file that is not a readable file (its content is never read here)."""
    if not path.exists():
        raise ValueError(f"{name}: no such file: {path}")
    if not path.is_file():
        raise ValueError(f"{name}: not a file: {path}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{name}: not readable: {path}")
