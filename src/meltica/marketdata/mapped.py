"""Any CSV or Parquet file as market data, through a column mapping.

A mapping names which column holds each field of the kind of data (quotes, trades or bars) and
how timestamps are written (s, ms, us, ns since the epoch, or ISO-8601). Every row is checked;
the first bad one is reported with its line (CSV) or row number (Parquet) and nothing is kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from meltica.domain.marketdata import AggressorSide, Bar, QuoteTick, TradeTick
from meltica.marketdata.replay import _timestamp_ns


class Kind(StrEnum):
    QUOTES = "quotes"
    TRADES = "trades"
    BARS = "bars"


REQUIRED = {
    Kind.QUOTES: ("ts", "bid", "ask"),
    Kind.TRADES: ("ts", "price", "size"),
    Kind.BARS: ("ts", "open", "high", "low", "close"),
}
OPTIONAL = {
    Kind.QUOTES: ("bid_size", "ask_size"),
    Kind.TRADES: ("side", "trade_id"),
    Kind.BARS: ("volume",),
}
TIME_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
SIDES = {
    "buy": AggressorSide.BUYER,
    "b": AggressorSide.BUYER,
    "buyer": AggressorSide.BUYER,
    "sell": AggressorSide.SELLER,
    "s": AggressorSide.SELLER,
    "seller": AggressorSide.SELLER,
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds which field; `time_unit` is s, ms, us, ns or iso."""

    kind: Kind
    columns: Mapping[str, str]
    time_unit: str = "ms"
    bar_width_ns: int = 60 * 10**9
    bar_spec: str = "1-MINUTE-LAST"

    def __post_init__(self) -> None:
        known = set(REQUIRED[self.kind]) | set(OPTIONAL[self.kind])
        unknown = sorted(set(self.columns) - known)
        if unknown:
            raise ValueError(f"{self.kind} have no field {unknown[0]!r}; fields: {', '.join(sorted(known))}")
        missing = [f for f in REQUIRED[self.kind] if f not in self.columns]
        if missing:
            raise ValueError(f"map a column to {', '.join(missing)} (e.g. --map {missing[0]}=<column>)")
        if self.time_unit not in (*TIME_UNITS, "iso"):
            raise ValueError(f"time unit must be one of s, ms, us, ns, iso; got {self.time_unit!r}")


def parse_columns(text: str) -> dict[str, str]:
    """`ts=time,bid=bid_px` -> {"ts": "time", "bid": "bid_px"}."""
    pairs = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        field, sep, column = item.partition("=")
        if not sep or not field or not column:
            raise ValueError(f"expected field=column, got {item!r}")
        pairs[field.strip()] = column.strip()
    return pairs


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) of a CSV with a header, or of a Parquet file."""
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("Parquet files need pyarrow: pip install 'meltica[archive]'") from None
        table = pq.read_table(path)
        row = 0
        for batch in table.to_batches(max_chunksize=10_000):
            for record in batch.to_pylist():
                row += 1
                yield f"row {row}", record
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        for line, record in enumerate(reader, start=2):
            yield f"{path.name}:{line}", record


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with path.open(newline="") as f:
        return next(csv.reader(f), [])


def read_mapped(
    path: Path, instrument_id: str, mapping: ColumnMapping
) -> Iterator[QuoteTick | TradeTick | Bar]:
    """The events of every row; a ValueError names the first bad row and why."""
    available = _columns(path)
    absent = [c for c in mapping.columns.values() if c not in available]
    if absent:
        raise ValueError(f"{path.name}: no column {absent[0]!r}; it has {', '.join(available)}")
    col = mapping.columns
    for where, row in _rows(path):
        try:
            yield _event(row, col, instrument_id, mapping, where)
        except (ValueError, InvalidOperation, TypeError, KeyError) as err:
            reason = "a value is not a decimal number" if isinstance(err, InvalidOperation) else str(err)
            raise ValueError(f"{where}: {reason}") from None


def _ts(raw: Any, unit: str) -> int:
    if unit == "iso" or (isinstance(raw, str) and not raw.strip().lstrip("-").isdigit()):
        if hasattr(raw, "timestamp"):  # a Parquet timestamp column
            return int(raw.timestamp() * 1_000_000) * 1_000
        return _timestamp_ns(str(raw))
    return int(raw) * TIME_UNITS[unit]


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        raise ValueError("a required value is empty")
    return Decimal(str(value))


def _event(
    row: dict[str, Any], col: Mapping[str, str], iid: str, m: ColumnMapping, where: str
) -> QuoteTick | TradeTick | Bar:
    ts = _ts(row[col["ts"]], m.time_unit)
    if m.kind is Kind.QUOTES:
        one = Decimal(1)
        bid_size = _dec(row[col["bid_size"]]) if "bid_size" in col else one
        ask_size = _dec(row[col["ask_size"]]) if "ask_size" in col else one
        return QuoteTick(iid, _dec(row[col["bid"]]), bid_size, _dec(row[col["ask"]]), ask_size, ts)
    if m.kind is Kind.TRADES:
        side = AggressorSide.NONE
        if "side" in col:
            text = str(row[col["side"]]).strip().lower()
            if text not in SIDES and text not in ("", "none"):
                raise ValueError(f"side must be buy or sell, got {text!r}")
            side = SIDES.get(text, AggressorSide.NONE)
        trade_id = str(row[col["trade_id"]]) if "trade_id" in col else where
        return TradeTick(iid, _dec(row[col["price"]]), _dec(row[col["size"]]), side, trade_id, ts)
    volume = _dec(row[col["volume"]]) if "volume" in col else Decimal(0)
    o, h, lo, c = (_dec(row[col[f]]) for f in ("open", "high", "low", "close"))
    if not lo <= min(o, c) <= max(o, c) <= h:
        raise ValueError(f"high {h} and low {lo} do not bound open {o} and close {c}")
    return Bar(iid, m.bar_spec, o, h, lo, c, volume, ts, ts + m.bar_width_ns)
