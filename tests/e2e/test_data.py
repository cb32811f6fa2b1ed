"""`meltica data import` and `meltica data archive` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


def meltica(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")} | {
        "MELTICA_DATA_DIR": str(data_dir)
    }
    return subprocess.run(
        [sys.executable, "-m", "meltica", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_import_every_format_then_archive(tmp_path: Path) -> None:
    zipped = tmp_path / "klines.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(DATA / "ADABTC-1m-2021-11-27.csv", "ADABTC-1m-2021-11-27.csv")
    imports = [
        (zipped, "binance-klines", "ADABTC.BINANCE"),
        (DATA / "btcusdt-depth-snap.csv", "binance-depth", "BTCUSDT.BINANCE"),
        (DATA / "btcusdt-depth-update.csv", "binance-depth", "BTCUSDT.BINANCE"),
        (DATA / "usdjpy-ticks.csv", "truefx", "USDJPY.SIM"),
        (DATA / "bitmex_trades_XBTUSD.csv", "tardis-trades", "XBTUSD.BITMEX"),
    ]
    for path, fmt, instrument in imports:
        done = meltica(tmp_path, "data", "import", str(path), "--format", fmt, "--instrument", instrument)
        assert done.returncode == 0, done.stderr
    archive = tmp_path / "archive"
    done = meltica(tmp_path, "data", "archive", str(archive))
    assert done.returncode == 0, done.stderr
    pq = pytest.importorskip("pyarrow.parquet")
    quotes = pq.read_table(
        archive / "instrument=USDJPY.SIM" / "date=2013-01-01" / "marketdata.quotes.parquet"
    )
    assert quotes.num_rows == 1000
    assert quotes.column("bid_px").to_pylist()[0] == "86.655"
    trades = list(archive.glob("instrument=XBTUSD.BITMEX/*/marketdata.trades.parquet"))
    assert len(trades) == 1
    book = list(archive.glob("instrument=BTCUSDT.BINANCE/*/marketdata.book.parquet"))
    assert pq.read_table(book[0]).num_rows == 101


def test_a_bad_row_imports_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "quotes.csv"
    bad.write_text("timestamp,bid,ask\n2013-01-01 22:00:00,86.6,86.7\n2013-01-01 22:00:01,86.6,oops\n")
    done = meltica(tmp_path, "data", "import", str(bad), "--format", "truefx", "--instrument", "USDJPY.SIM")
    assert done.returncode == 1
    assert "quotes.csv:3" in done.stderr
    assert "nothing was imported" in done.stderr
    info = json.loads(meltica(tmp_path, "info", "--json").stdout)
    assert all(t["records"] == 0 for t in info["topics"] if t["name"] == "marketdata.quotes")


def test_replay_a_time_range_of_a_recording_into_another_stack(tmp_path: Path) -> None:
    recording, live = tmp_path / "recording", tmp_path / "live"
    done = meltica(
        recording,
        "data",
        "import",
        str(DATA / "usdjpy-ticks.csv"),
        "--format",
        "truefx",
        "--instrument",
        "USDJPY.SIM",
    )
    assert done.returncode == 0, done.stderr
    done = meltica(
        live,
        "data",
        "replay",
        str(recording),
        "--from",
        "2013-01-01T22:00:00Z",
        "--to",
        "2013-01-01T22:30:00Z",
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(meltica(live, "info", "--json").stdout)
    [quotes] = [t for t in info["topics"] if t["name"] == "marketdata.quotes"]
    assert 0 < quotes["records"] < 1000


def test_import_any_csv_through_a_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "eurusd.csv"
    path.write_text("time_us,bid_px,ask_px\n1700000000000000,1.1000,1.1002\n1700000000500000,1.1001,1.1003\n")
    base = ["data", "import", str(path), "--format", "generic", "--instrument", "EURUSD.FX"]
    args = [*base, "--kind", "quotes"]
    done = meltica(tmp_path, *args, "--map", "ts=time_us,bid=bid_px,ask=ask_px", "--time-unit", "us")
    assert done.returncode == 0, done.stderr
    assert "2 events from eurusd.csv into marketdata.quotes" in done.stdout
    wrong = meltica(tmp_path, *args, "--map", "ts=time,bid=bid_px,ask=ask_px")
    assert wrong.returncode == 1
    assert "no column 'time'; it has time_us, bid_px, ask_px" in wrong.stderr
    missing = meltica(tmp_path, *base)
    assert missing.returncode == 1
    assert "--format generic needs --kind and --map" in missing.stderr
