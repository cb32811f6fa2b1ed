"""Venue/market-data adapters by name: what a connection of the registry runs.

An adapter connects (raising on failure), is polled for raw data (None: its data has ended) and,
for venues with books, answers a snapshot request when a gap needs a resync. Parameters arrive as
text (from the log) and are validated when the adapter is made, so a bad one is refused at once.
"""

from __future__ import annotations

import csv
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from meltica.domain.marketdata import OrderBookDelta, OrderBookSnapshot
from meltica.marketdata.binance import BinanceAdapter
from meltica.marketdata.formats import READERS as FILE_READERS
from meltica.marketdata.formats import DataFormat, opened
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.marketdata.normalize import BookUpdate, RawData
from meltica.marketdata.okx import OkxAdapter
from meltica.marketdata.replay import BadRowError
from meltica.marketdata.synthetic import SyntheticFeed


class Adapter(Protocol):
    venue: str

    def connect(self) -> None:
        """Open the connection; raise with the reason when it cannot be opened."""

    def poll(self) -> list[RawData] | None:
        """What arrived since the last poll ([] for nothing yet); None when the data has ended."""

    def snapshot(self, instrument_id: str) -> OrderBookSnapshot | None:
        """A fresh book snapshot of `instrument_id` (None if this venue has no books)."""

    def close(self) -> None:
        """Release the connection."""


def _int(params: dict[str, str], key: str, default: int, low: int = 0) -> int:
    raw = params.get(key, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key} must be an integer, got {raw!r}") from None
    if value < low:
        raise ValueError(f"{key} must be at least {low}, got {value}")
    return value


def _only(params: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; this adapter takes {', '.join(sorted(allowed))}")


class SyntheticAdapter:
    """The synthetic market (a seeded random walk) on the simulated venue's instruments, in real time."""

    PARAMS = {"seed", "tick_ms", "venue", "instruments"}

    def __init__(self, params: dict[str, str]) -> None:
        _only(params, self.PARAMS)
        self.venue = params.get("venue", "SIM")
        wanted = [s for s in params.get("instruments", "").split(",") if s]
        known = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise ValueError(
                f"unknown instrument {unknown[0]!r}; the synthetic market has {', '.join(known)}"
            )
        chosen = [known[s] for s in wanted] or list(DEFAULT_INSTRUMENTS)
        # its ticks are of this venue's instruments (SYMBOL.VENUE), priced as the default ones
        self.instruments = [
            i
            if i.venue == self.venue
            else replace(i, venue=self.venue, instrument_id=f"{i.symbol}.{self.venue}")
            for i in chosen
        ]
        self.seed = _int(params, "seed", 7)
        self.interval_ns = _int(params, "tick_ms", 500, low=1) * 1_000_000
        self._ticks: Iterator[Any] | None = None
        self._pending: Any = None

    def connect(self) -> None:
        start = time.time_ns()  # trade ids name the start, so a restarted feed never repeats one
        prefix = f"SYN{start // 1_000_000}"
        feed = SyntheticFeed(
            self.instruments, seed=self.seed, interval_ns=self.interval_ns, trade_id_prefix=prefix
        )
        self._ticks = feed.ticks(start)

    def poll(self) -> list[RawData] | None:
        assert self._ticks is not None, "connect first"  # nosec B101 # typing; a usage error
        now, out = time.time_ns(), list[RawData]()
        while True:
            tick = self._pending if self._pending is not None else next(self._ticks)
            if tick.ts > now:
                self._pending = tick
                return out
            self._pending = None
            out.append(tick)

    def snapshot(self, instrument_id: str) -> OrderBookSnapshot | None:
        return None

    def close(self) -> None:
        self._ticks = None


class ReplayAdapter:
    """A recorded file (any `meltica data import` format) replayed at `speed` (0: as fast as possible)."""

    PARAMS = {"path", "format", "symbol", "venue", "speed", "batch"}

    def __init__(self, params: dict[str, str]) -> None:
        _only(params, self.PARAMS)
        if "path" not in params or "symbol" not in params:
            raise ValueError("replay needs path and symbol")
        try:
            self.format = DataFormat(params.get("format", "truefx"))
        except ValueError:
            raise ValueError(f"format must be one of {', '.join(f.value for f in DataFormat)}") from None
        if self.format is DataFormat.GENERIC:
            raise ValueError("format generic needs a column mapping: import it with `meltica data import`")
        self.path = Path(params["path"]).expanduser()
        self.venue = params.get("venue", "SIM")
        self.symbol = params["symbol"]
        self.speed = _int(params, "speed", 0)
        self.batch = _int(params, "batch", 500, low=1)
        self._events: list[Any] = []
        self._next = 0
        self._started: tuple[int, int] | None = None  # (wall ns, first event ts)

    def connect(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"no such file: {self.path}")
        try:
            with opened(self.path) as csv_path:  # validated whole: a bad row fails the connection
                self._events = list(_book_updates(FILE_READERS[self.format](csv_path, self.symbol)))
        except BadRowError as err:  # the reason may quote the file: name the line, not what it holds
            raise ValueError(f"{self.path.name}:{err.line}: not a valid {self.format.value} row") from None
        except (ValueError, UnicodeError, OSError, csv.Error, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{self.path.name}: not a readable {self.format.value} file ({type(err).__name__})"
            ) from None
        self._next = 0
        self._started = None

    def poll(self) -> list[RawData] | None:
        if self._next >= len(self._events):
            return None
        end = min(len(self._events), self._next + self.batch)
        if self.speed:
            if self._started is None:
                self._started = (time.time_ns(), self._events[self._next].ts)
            wall0, ts0 = self._started
            due = ts0 + (time.time_ns() - wall0) * self.speed
            end = self._next
            while end < len(self._events) and self._events[end].ts <= due and end - self._next < self.batch:
                end += 1
        out, self._next = self._events[self._next : end], end
        return out

    def snapshot(self, instrument_id: str) -> OrderBookSnapshot | None:
        """The latest snapshot in the file up to the replay position."""
        snaps = [e for e in self._events[: self._next] if isinstance(e, OrderBookSnapshot)]
        return snaps[-1] if snaps else None

    def close(self) -> None:
        self._events = []


def _book_updates(events: Iterator[Any]) -> Iterator[Any]:
    """Recorded deltas grouped into book messages by sequence, each following the one before it."""
    last: int | None = None
    group: list[OrderBookDelta] = []
    for e in events:
        if group and not (isinstance(e, OrderBookDelta) and e.sequence == group[0].sequence):
            seq = group[0].sequence
            yield BookUpdate(group[0].instrument_id, seq, seq - 1 if last is None else last, tuple(group))
            last, group = seq, []
        if isinstance(e, OrderBookDelta):
            group.append(e)
            continue
        if isinstance(e, OrderBookSnapshot):
            last = e.sequence
        yield e
    if group:
        seq = group[0].sequence
        yield BookUpdate(group[0].instrument_id, seq, seq - 1 if last is None else last, tuple(group))


ADAPTERS: dict[str, Callable[[dict[str, str]], Adapter]] = {
    "synthetic": SyntheticAdapter,
    "replay": ReplayAdapter,
    "binance": BinanceAdapter,
    "okx": OkxAdapter,
}


def make(adapter: str, params: dict[str, str]) -> Adapter:
    """The adapter named `adapter` with `params`; unknown names and bad parameters are a ValueError."""
    if adapter not in ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r}; one of {', '.join(ADAPTERS)}")
    return ADAPTERS[adapter](params)


def check(adapter: str, params: dict[str, str], roots: Sequence[Path] | None = None) -> None:
    """Refuse an unknown adapter or bad parameters now (before a command goes into the log); with
    `roots`, also a file outside them (what a client over the API may name: `outside`)."""
    made = make(adapter, params)
    if roots is not None and isinstance(made, ReplayAdapter):
        problem = outside(made.path, roots)
        if problem:
            raise PathRefusedError(problem)


class PathRefusedError(ValueError):
    """A file parameter outside the folders a client may name."""


def outside(path: Path, roots: Sequence[Path]) -> str | None:
    """Why `path` may not be read for a client (None when it may): once resolved (`..` and links
    followed), it must be inside one of `roots`."""
    real = path.resolve()
    if any(real.is_relative_to(root.resolve()) for root in roots):
        return None
    where = ", ".join(str(r) for r in roots) or "none are configured"
    return f"path {path} is outside the replay directories ({where}); see MELTICA_REPLAY_DIRS"
