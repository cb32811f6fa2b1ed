"""Recorded-data formats by name: how to read each file and which topic its events go to."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.marketdata import replay
from meltica.marketdata.mapped import ColumnMapping, read_mapped
from meltica.topics import BARS, BOOK, INSTRUMENTS, QUOTES, TRADES


class DataFormat(StrEnum):
    BINANCE_KLINES = "binance-klines"
    BINANCE_DEPTH = "binance-depth"
    TRUEFX = "truefx"
    TARDIS_TRADES = "tardis-trades"
    FXCM = "fxcm"
    BINANCE_TRADES = "binance-trades"
    GENERIC = "generic"  # CSV or Parquet with a column mapping


READERS: dict[DataFormat, Callable[[Path, str], Iterator[Any]]] = {
    DataFormat.BINANCE_KLINES: replay.binance_klines,
    DataFormat.BINANCE_DEPTH: replay.binance_depth,
    DataFormat.TRUEFX: replay.truefx_quotes,
    DataFormat.TARDIS_TRADES: replay.tardis_trades,
    DataFormat.FXCM: replay.ohlc_bars,
    DataFormat.BINANCE_TRADES: replay.binance_trades,
}

TOPIC_OF: dict[type, str] = {
    Bar: BARS,
    QuoteTick: QUOTES,
    TradeTick: TRADES,
    OrderBookDelta: BOOK,
    OrderBookSnapshot: BOOK,
    Instrument: INSTRUMENTS,  # a live venue's markets
}


@contextmanager
def opened(path: Path) -> Iterator[Path]:
    """`path` itself, or the single CSV inside a zip archive (as Binance publishes klines)."""
    if path.suffix.lower() != ".zip":
        yield path
        return
    with zipfile.ZipFile(path) as archive:
        members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".json", ".parquet"))]
        if len(members) != 1:
            raise ValueError(f"{path.name}: expected one CSV inside, found {len(members)}")
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(archive.extract(members[0], tmp))


def read(
    path: Path, file_format: DataFormat, instrument_id: str, mapping: ColumnMapping | None = None
) -> list[Any]:
    """Every event of the file, validated; a bad row raises ValueError naming its line. The
    generic format needs a column `mapping`."""
    if file_format is DataFormat.GENERIC:
        if mapping is None:
            raise ValueError("the generic format needs a column mapping (--kind and --map)")
        with opened(path) as data_path:
            return list(read_mapped(data_path, instrument_id, mapping))
    with opened(path) as csv_path:
        return list(READERS[file_format](csv_path, instrument_id))
