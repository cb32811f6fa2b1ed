"""Recorded market data files as Meltica events: Binance klines, TrueFX quotes, Tardis trades.

Each reader yields domain events in file order and raises `ValueError` naming the line of
the first malformed row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from meltica.domain.marketdata import (
    AggressorSide,
    Bar,
    BookAction,
    BookLevel,
    OrderBookDelta,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from meltica.domain.values import OrderSide

MS = 1_000_000
US = 1_000


def _rows(path: Path, header: bool) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        if header:
            next(reader, None)
        for line, row in enumerate(reader, start=2 if header else 1):
            if row:
                yield line, row


class BadRowError(ValueError):
    """A row of a recorded file that cannot be read; `line` is its line number."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _bad(path: Path, line: int, err: Exception) -> BadRowError:
    reason = "a value is not a decimal number" if isinstance(err, InvalidOperation) else str(err)
    return BadRowError(f"{path.name}:{line}: {reason}", line)


def binance_klines(path: Path, instrument_id: str, interval: str = "1-MINUTE") -> Iterator[Bar]:
    """Binance kline CSV (no header): open_time_ms, open, high, low, close, volume, close_time_ms, ..."""
    for line, row in _rows(path, header=False):
        try:
            open_ms, o, h, lo, c, v, close_ms = row[:7]
            yield Bar(
                instrument_id,
                f"{interval}-LAST",
                Decimal(o),
                Decimal(h),
                Decimal(lo),
                Decimal(c),
                Decimal(v),
                int(open_ms) * MS,
                (int(close_ms) + 1) * MS,
            )
        except (ValueError, InvalidOperation) as err:
            raise _bad(path, line, err) from err


def truefx_quotes(path: Path, instrument_id: str, size: Decimal = Decimal(1_000_000)) -> Iterator[QuoteTick]:
    """Bid/ask CSV with header timestamp, bid, ask (timestamps like 2020-01-02 00:00:00.123 or epoch ms)."""
    for line, row in _rows(path, header=True):
        try:
            stamp, bid, ask = row[:3]
            yield QuoteTick(instrument_id, Decimal(bid), size, Decimal(ask), size, _timestamp_ns(stamp))
        except (ValueError, InvalidOperation) as err:
            raise _bad(path, line, err) from err


def tardis_trades(path: Path, instrument_id: str) -> Iterator[TradeTick]:
    """Tardis trades CSV: exchange, symbol, timestamp(us), local_timestamp(us), id, side, price, amount."""
    for line, row in _rows(path, header=True):
        try:
            _ex, _sym, ts_us, _local, trade_id, side, price, amount = row[:8]
            aggressor = {"buy": AggressorSide.BUYER, "sell": AggressorSide.SELLER}.get(
                side, AggressorSide.NONE
            )
            yield TradeTick(
                instrument_id, Decimal(price), Decimal(amount), aggressor, trade_id, int(ts_us) * US
            )
        except (ValueError, InvalidOperation) as err:
            raise _bad(path, line, err) from err


def _timestamp_ns(stamp: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (UTC when no offset is given)."""
    if stamp.isdigit():
        return int(stamp) * MS
    dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    seconds = int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)
    return seconds * 1_000_000_000 + dt.microsecond * 1_000


def ohlc_bars(
    path: Path, instrument_id: str, width_ns: int = 60_000_000_000, spec: str = "1-MINUTE-BID"
) -> Iterator[Bar]:
    """OHLC CSV with header timestamp, open, high, low, close[, volume] (FXCM minute bars); the
    timestamp opens the bar, which closes `width_ns` later."""
    for line, row in _rows(path, header=True):
        try:
            stamp, o, h, lo, c = row[:5]
            volume = Decimal(row[5]) if len(row) > 5 and row[5] else Decimal(0)
            opened = _timestamp_ns(stamp)
            yield Bar(
                instrument_id,
                spec,
                Decimal(o),
                Decimal(h),
                Decimal(lo),
                Decimal(c),
                volume,
                opened,
                opened + width_ns,
            )
        except (ValueError, InvalidOperation) as err:
            raise _bad(path, line, err) from err


def binance_depth(path: Path, instrument_id: str) -> Iterator[OrderBookSnapshot | OrderBookDelta]:
    """Binance depth CSV (symbol, timestamp, first_update_id, last_update_id, side, update_type, price,
    qty, pu): rows of type `snap` become one snapshot per update id, `set` rows become deltas
    (quantity 0 deletes the level)."""
    snapshot: list[tuple[int, int, str, Decimal, Decimal]] = []

    def flush() -> Iterator[OrderBookSnapshot]:
        if snapshot:
            ts, seq = snapshot[0][0], snapshot[0][1]
            bids = tuple(BookLevel(px, qty) for _, _, s, px, qty in snapshot if s == "b")
            asks = tuple(BookLevel(px, qty) for _, _, s, px, qty in snapshot if s == "a")
            snapshot.clear()
            yield OrderBookSnapshot(instrument_id, seq, bids, asks, ts)

    for line, row in _rows(path, header=True):
        try:
            _sym, ts_ms, _first, last, side, kind, price, qty = row[:8]
            ts, seq, px, size = int(ts_ms) * MS, int(last), Decimal(price), Decimal(qty)
            if side not in ("a", "b"):
                raise ValueError(f"side must be a or b, got {side!r}")
            if kind == "snap":
                if snapshot and snapshot[0][1] != seq:
                    yield from flush()
                snapshot.append((ts, seq, side, px, size))
                continue
            yield from flush()
            book_side = OrderSide.BUY if side == "b" else OrderSide.SELL
            action = BookAction.DELETE if size == 0 else BookAction.UPDATE
            yield OrderBookDelta(instrument_id, action, book_side, px, size, seq, ts)
        except (ValueError, InvalidOperation) as err:
            raise _bad(path, line, err) from err
    yield from flush()


def binance_trades(path: Path, instrument_id: str) -> Iterator[TradeTick]:
    """Binance trades: the public data CSV (id, price, qty, quote_qty, time, is_buyer_maker[, ...],
    with or without a header; time in ms, or us in newer files) or a REST `trades` JSON array."""
    if path.suffix.lower() == ".json":
        yield from _binance_trades_json(path, instrument_id)
        return
    for line, row in _rows(path, header=False):
        if line == 1 and not row[0].strip().isdigit():
            continue  # a header
        try:
            trade_id, price, qty, _quote, when, buyer_maker = row[:6]
            yield _binance_trade(instrument_id, trade_id, price, qty, int(when), buyer_maker)
        except (ValueError, InvalidOperation) as err:
            raise _bad(path, line, err) from err


def _binance_trade(iid: str, trade_id: str, price: str, qty: str, when: int, buyer_maker: str) -> TradeTick:
    maker = buyer_maker.strip().lower()
    if maker not in ("true", "false"):
        raise ValueError(f"is_buyer_maker must be true or false, got {buyer_maker!r}")
    # the buyer was the maker: the seller took liquidity
    aggressor = AggressorSide.SELLER if maker == "true" else AggressorSide.BUYER
    ts = when * US if when > 10**14 else when * MS  # microseconds in newer dumps
    return TradeTick(iid, Decimal(price), Decimal(qty), aggressor, str(trade_id), ts)


def _binance_trades_json(path: Path, instrument_id: str) -> Iterator[TradeTick]:
    import json

    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path.name}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path.name}: expected a JSON array of trades")
    for i, r in enumerate(rows, start=1):
        try:
            yield _binance_trade(
                instrument_id, str(r["id"]), r["price"], r["qty"], int(r["time"]), str(r["isBuyerMaker"])
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as err:
            reason = "a value is not a decimal number" if isinstance(err, InvalidOperation) else f"{err}"
            raise ValueError(f"{path.name}: trade {i}: {reason}") from None
