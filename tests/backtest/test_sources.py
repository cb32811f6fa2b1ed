"""One recording, four sources: the embedded log of a data directory, Kafka topics, the Parquet
archive and the file itself give the same backtest — fills, PnL and output events to the byte."""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meltica.backtest.engine import BacktestResult, run_backtest
from meltica.backtest.sources import Selection, instant_ns, open_source
from meltica.cli.app import app
from meltica.events.codec import Codec
from meltica.log.base import EventLog
from meltica.log.sqlite import SqliteLog
from meltica.marketdata import archive
from meltica.marketdata.formats import TOPIC_OF, DataFormat
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.runtime.publisher import Publisher
from meltica.strategies.sma_cross import SmaCross
from meltica.topics import topic_specs

DATA = Path(__file__).resolve().parents[1] / "data" / "usdjpy-m1-bid-2013.csv"
USDJPY = DEFAULT_INSTRUMENTS[2]
runner = CliRunner()
RANGE = Selection(instant_ns("2013-02-01T06:00:00"), instant_ns("2013-02-02T18:00:00"))


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """The first 3,000 FXCM bars as a file of their own."""
    path = tmp_path / "bars.csv"
    with DATA.open() as f:
        path.write_text("".join(itertools.islice(f, 3001)))
    return path


def record(log: EventLog, path: Path) -> int:
    """Append the file's events to the market-data topics, as `meltica data import` does."""
    for spec in topic_specs(3):
        log.create_topic(spec)
    events = open_source(str(path), file_format=DataFormat.FXCM, instrument_id=USDJPY.instrument_id).events(
        Selection()
    )
    publisher = Publisher(log, Codec())
    for start in range(0, len(events), 1000):
        log.append([publisher.message(TOPIC_OF[type(e)], e) for e in events[start : start + 1000]])
    return len(events)


def backtest(spec: str, path: Path) -> BacktestResult:
    data = open_source(spec, file_format=DataFormat.FXCM, instrument_id=USDJPY.instrument_id).events(RANGE)
    return run_backtest(
        data, USDJPY, SmaCross(USDJPY.instrument_id, fast=5, slow=20), commission=Decimal("0.0001")
    )


@pytest.mark.kafka
def test_log_kafka_archive_and_file_give_the_same_backtest(
    recording: Path, tmp_path: Path, kafka_bootstrap: str
) -> None:
    from meltica.log.kafka import KafkaLog

    data_dir = tmp_path / "data"
    with SqliteLog(data_dir / "log.db") as log:
        recorded = record(log, recording)
        archive.write(log, Codec(), tmp_path / "archive")
    namespace = f"bt-{uuid.uuid4().hex[:10]}"
    kafka = KafkaLog(kafka_bootstrap, namespace=namespace)
    try:
        assert record(kafka, recording) == recorded == 3000
    finally:
        kafka.close()

    results = {
        "file": backtest(str(recording), recording),
        "log": backtest(f"log:{data_dir}", recording),
        "kafka": backtest(f"kafka:{kafka_bootstrap}?namespace={namespace}", recording),
        "archive": backtest(f"archive:{tmp_path / 'archive'}", recording),
    }
    reference = results["file"]
    assert len(reference.fills) > 50
    assert reference.realized_pnl != 0
    for name, result in results.items():
        assert result.fills == reference.fills, name
        assert (result.realized_pnl, result.open_position) == (
            reference.realized_pnl,
            reference.open_position,
        )
        assert result.stats.summary() == reference.stats.summary(), name
        assert result.output == reference.output, name

    # the CLI: `kafka:` takes the cluster and namespace from the settings; a range after the
    # last record finds no offset (offsets_for_times answers -1) and so no data
    env = {"MELTICA_KAFKA_BOOTSTRAP": kafka_bootstrap, "MELTICA_NAMESPACE": namespace}
    args = [
        "backtest",
        "run",
        "--json",
        "--param",
        "fast=5",
        "--param",
        "slow=20",
        "--from",
        "2013-02-01T06:00:00",
    ]
    via_kafka = runner.invoke(app, [*args, "--source", "kafka:", "--to", "2013-02-02T18:00"], env=env)
    via_file = runner.invoke(
        app, [*args, "--source", str(recording), "--format", "fxcm", "--to", "2013-02-02T18:00"]
    )
    assert via_kafka.exit_code == 0, via_kafka.stderr
    assert json.loads(via_kafka.stdout) == json.loads(via_file.stdout)
    later = runner.invoke(app, ["backtest", "run", "--source", "kafka:", "--from", "2100-01-01"], env=env)
    assert later.exit_code == 1
    assert "holds no market data" in later.stderr


def test_the_log_source_selects_a_range_and_leaves_a_running_writer_alone(
    recording: Path, tmp_path: Path
) -> None:
    with SqliteLog(tmp_path / "log.db") as log:
        record(log, recording)
        writer = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # the owner is in the middle of a write
        try:
            events = open_source(f"log:{tmp_path}").events(RANGE)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    everything = open_source(str(recording), file_format=DataFormat.FXCM, instrument_id="USDJPY.SIM").events(
        Selection()
    )
    assert RANGE.start_ns is not None
    assert RANGE.end_ns is not None
    assert events == [e for e in everything if RANGE.start_ns <= e.ts < RANGE.end_ns]
    assert len(events) == 960  # Friday 06:00 to the weekend close at 22:00: 16 hours of minute bars
    assert open_source(f"log:{tmp_path}").events(Selection(venues=("BINANCE",))) == []


def test_a_source_that_is_not_one_says_what_it_takes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="log:DIR"):
        open_source(str(tmp_path / "nothing.csv"))
    with pytest.raises(ValueError, match="no embedded log"):
        open_source(f"log:{tmp_path}").events(Selection())
    with pytest.raises(ValueError, match="needs a bootstrap"):
        open_source("kafka:")


def test_book_and_trades_of_two_venues_come_back_the_same_from_log_and_archive(tmp_path: Path) -> None:
    """Snapshots with their levels, deltas without an order id, trades: the archive's rows rebuild the
    recorded events, in the order the log gives them; a venue selects its instruments."""
    data = Path(__file__).resolve().parents[1] / "data"
    files = [
        (data / "btcusdt-depth-snap.csv", DataFormat.BINANCE_DEPTH, "BTCUSDT.BINANCE"),
        (data / "btcusdt-depth-update.csv", DataFormat.BINANCE_DEPTH, "BTCUSDT.BINANCE"),
        (data / "bitmex_trades_XBTUSD.csv", DataFormat.TARDIS_TRADES, "XBTUSD.BITMEX"),
    ]
    recorded = []
    with SqliteLog(tmp_path / "data" / "log.db") as log:
        for spec in topic_specs(3):
            log.create_topic(spec)
        publisher = Publisher(log, Codec())
        for path, fmt, iid in files:
            events = open_source(str(path), file_format=fmt, instrument_id=iid).events(Selection())
            log.append([publisher.message(TOPIC_OF[type(e)], e) for e in events])
            recorded += events
        archive.write(log, Codec(), tmp_path / "archive")
    from_log = open_source(f"log:{tmp_path / 'data'}").events(Selection())
    from_archive = open_source(f"archive:{tmp_path / 'archive'}").events(Selection())
    assert from_archive == from_log
    assert sorted(from_log, key=lambda e: (e.ts, e.instrument_id)) == from_log
    assert {type(e).__name__ for e in from_log} == {"OrderBookSnapshot", "OrderBookDelta", "TradeTick"}
    assert sorted(map(repr, from_log)) == sorted(map(repr, recorded))
    bitmex = open_source(f"archive:{tmp_path / 'archive'}").events(Selection(venues=("BITMEX",)))
    assert bitmex == [e for e in from_log if e.instrument_id == "XBTUSD.BITMEX"]
    assert len(bitmex) == 10
