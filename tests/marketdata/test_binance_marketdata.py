"""Binance market data (adapter `binance`) against the protocol-true fake: instruments with their
filters, normalized trades and quotes, the book synced by update id and resynced after a gap, a
dropped socket reconnected, events in the log through the venue registry, and the CLI's check."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from meltica.cli import rest
from meltica.cli.app import app as cli
from meltica.domain.control import VenueAction, VenueState
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import AggressorSide, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.domain.values import OrderSide
from meltica.events.mapping import from_record
from meltica.marketdata import adapters
from meltica.marketdata.binance import BinanceAdapter
from meltica.marketdata.normalize import Counters, Normalizer
from meltica.projections import migrations
from meltica.topics import BOOK, INSTRUMENTS, QUOTES, TRADES, VENUE_COMMANDS
from tests.api.conftest import Api
from tests.fakes.binance.fake import FakeBinance
from tests.marketdata import harness
from tests.marketdata.harness import Book, Registry
from tests.waiting import wait_until

BTC = "BTCUSDT.BINANCE"
Feed = harness.Feed[BinanceAdapter]
rebuilt = partial(harness.rebuilt, instrument_id=BTC)


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance() as started:
        started.set_book("BTCUSDT", {"49000": "1"}, {"51000": "2"})
        yield started


def params(fake: FakeBinance, **more: str) -> dict[str, str]:
    return {"symbols": "BTCUSDT,ETHBTC", "rest_url": fake.rest_url, "ws_url": fake.ws_url, **more}


@pytest.fixture
def feed(fake: FakeBinance) -> Iterator[Feed]:
    adapter = BinanceAdapter(params(fake))
    adapter.connect()
    try:
        yield Feed(adapter)
    finally:
        adapter.close()


def venue_book(fake: FakeBinance, symbol: str = "BTCUSDT") -> Book:
    """The fake's book as a REST depth snapshot shows it."""
    depth = httpx.get(f"{fake.rest_url}/api/v3/depth", params={"symbol": symbol}).json()
    return {
        OrderSide.BUY: {Decimal(p): Decimal(q) for p, q in depth["bids"]},
        OrderSide.SELL: {Decimal(p): Decimal(q) for p, q in depth["asks"]},
    }


# -- parameters ---------------------------------------------------------------------------------------
def test_bad_parameters_are_refused_with_the_reason(tmp_path: Path) -> None:
    key, secret = tmp_path / "key", tmp_path / "secret"
    key.write_text("k")
    secret.write_text("s")
    both = {"api_key_file": str(key), "secret_file": str(secret)}
    refused = [
        (
            "unknown parameter 'colour'; binance takes api_key_file, depth,",
            {"symbols": "BTCUSDT", "colour": "red"},
        ),
        ("binance needs symbols", {"symbols": ""}),
        ("binance needs symbols", {"symbols": " , "}),
        ("'BTC-USDT' is not a Binance symbol", {"symbols": "BTC-USDT"}),
        ("depth must be true or false, got 'maybe'", {"symbols": "BTCUSDT", "depth": "maybe"}),
        ("rest_url must be a http or https URL", {"symbols": "BTCUSDT", "rest_url": "ftp://x"}),
        ("ws_url must be a ws or wss URL", {"symbols": "BTCUSDT", "ws_url": "http://x"}),
        (
            f"api_key_file: no such file: {tmp_path / 'nope'}",
            {**both, "api_key_file": str(tmp_path / "nope")},
        ),
        (f"secret_file: not a file: {tmp_path}", {**both, "secret_file": str(tmp_path)}),
        ("api_key_file and secret_file go together", {"api_key_file": str(key)}),
    ]
    for reason, bad in refused:
        with pytest.raises(ValueError, match=re.escape(reason)):
            adapters.check("binance", {"symbols": "BTCUSDT", **bad})
    good = {"symbols": "btcusdt,ETHBTC", "testnet": "TRUE", "depth": "false"}
    made = adapters.make("binance", {**good, "api_key_file": str(key), "secret_file": str(secret)})
    assert isinstance(made, BinanceAdapter)
    assert (made.symbols, made.venue, made.depth) == (["BTCUSDT", "ETHBTC"], "BINANCE", False)
    assert made.rest_url == "https://testnet.binance.vision"
    assert made.ws_url == "wss://stream.testnet.binance.vision"


# -- the adapter ----------------------------------------------------------------------------------------
def test_instruments_come_first_with_the_symbol_filters(feed: Feed) -> None:
    first = wait_until(lambda: feed.pump()[:2], 20, "the instruments")
    assert all(isinstance(i, Instrument) for i in first)
    btc, ethbtc = first
    assert (btc.instrument_id, btc.base_currency, btc.quote_currency) == (BTC, "BTC", "USDT")
    assert (btc.price_increment, btc.size_increment) == (Decimal("0.01"), Decimal("0.00001"))
    assert (btc.min_quantity, btc.max_quantity, btc.min_notional) == (
        Decimal("0.00001"),
        Decimal(9000),
        Decimal(5),
    )
    assert (btc.price_precision, btc.size_precision) == (2, 5)
    assert (ethbtc.instrument_id, ethbtc.price_increment, ethbtc.min_notional) == (
        "ETHBTC.BINANCE",
        Decimal("0.00001"),
        Decimal("0.0001"),
    )


def test_an_unknown_symbol_fails_the_connection(fake: FakeBinance) -> None:
    adapter = BinanceAdapter(params(fake, symbols="BTCUSDT,DOGEUSDT"))
    try:
        with pytest.raises(ValueError, match="Binance has no spot symbol DOGEUSDT"):
            adapter.connect()
    finally:
        adapter.close()


def test_trades_and_quotes_arrive_normalized(fake: FakeBinance, feed: Feed) -> None:
    wait_until(lambda: fake.market_connections() == 1, 20, "the market stream")
    fake.trade("BTCUSDT", "50000.5", "0.25")  # the buyer rests: the seller took
    fake.set_book("BTCUSDT", {"49999": "1.5"}, {"50001": "0.5"})
    [trade] = wait_until(lambda: feed.of(TradeTick), 20, "the trade")
    assert (trade.instrument_id, trade.price, trade.size) == (BTC, Decimal("50000.5"), Decimal("0.25"))
    assert (trade.aggressor_side, trade.trade_id, trade.flags) == (AggressorSide.SELLER, "1", 0)
    assert str(trade.price) == "50000.5"  # no float, no trailing zeros
    quote = wait_until(
        lambda: [q for q in feed.of(QuoteTick) if q.bid_px == Decimal(49999)], 20, "the quote"
    )[0]
    assert (quote.instrument_id, quote.bid_qty, quote.ask_px, quote.ask_qty) == (
        BTC,
        Decimal("1.5"),
        Decimal(50001),
        Decimal("0.5"),
    )
    assert feed.counters.duplicates == feed.counters.gaps == 0


def test_a_dropped_socket_reconnects_and_syncs_the_book_again(fake: FakeBinance, feed: Feed) -> None:
    wait_until(lambda: feed.of(OrderBookSnapshot), 20, "the first snapshot")
    assert fake.drop_market_streams() == 1
    # the book moves while the socket is down (a reconnect waits 0.5 s at least): that diff is lost
    fake.set_book("BTCUSDT", {"49500": "3"}, {"50500": "1"})
    wait_until(lambda: feed.adapter.connects == 2 and fake.market_connections() == 1, 20, "a reconnect")
    fake.set_book("BTCUSDT", {"49500": "3", "49400": "1"}, {"50500": "1"})
    fake.trade("BTCUSDT", "50500", "1")
    wait_until(lambda: feed.of(TradeTick), 20, "a trade after the reconnect")
    wait_until(lambda: rebuilt(feed.pump()) == venue_book(fake), 20, "the book after the reconnect")
    snapshots = [s for s in feed.of(OrderBookSnapshot) if s.instrument_id == BTC]
    assert len(snapshots) == 2  # synced again from a snapshot of its own, not by a gap
    assert (feed.counters.gaps, feed.counters.resyncs) == (0, 0)


def test_a_failed_snapshot_drops_the_socket_and_the_reconnect_syncs_the_book(
    fake: FakeBinance, feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    wait_until(lambda: feed.of(OrderBookSnapshot), 20, "the first snapshot")
    fake.fail_next(1)  # the next REST call, the snapshot after the reconnect, answers 503
    fake.drop_market_streams()
    fake.set_book("BTCUSDT", {"48000": "1"}, {"52000": "1"})
    wait_until(lambda: feed.adapter.connects == 3, 20, "a second reconnect after the failed snapshot")
    wait_until(lambda: rebuilt(feed.pump()) == venue_book(fake), 20, "the book after the reconnects")
    assert "book snapshot failed" in caplog.text
    assert "HTTP 503" in caplog.text


def test_without_depth_no_book_is_followed(fake: FakeBinance) -> None:
    adapter = BinanceAdapter(params(fake, depth="false"))
    adapter.connect()
    try:
        events = Feed(adapter)
        wait_until(lambda: fake.market_connections() == 1, 20, "the market stream")
        fake.set_book("BTCUSDT", {"49800": "1"}, {"50200": "1"})
        wait_until(lambda: events.of(QuoteTick), 20, "a quote")
        assert not [e for e in events.pump() if isinstance(e, OrderBookSnapshot | OrderBookDelta)]
        assert adapter.snapshot(BTC) is None
    finally:
        adapter.close()


def test_diffs_follow_a_snapshot_by_update_id() -> None:
    """Binance's procedure on diffs that do not meet the snapshot at a boundary: buffered while it is
    fetched, those it holds dropped, the first straddling `lastUpdateId + 1` applied after it."""
    adapter = BinanceAdapter({"symbols": "BTCUSDT"})  # never connected: messages handed in directly
    normalizer, counters = Normalizer("BINANCE"), Counters()

    def diff(first: int, last: int, bid: str) -> dict[str, Any]:
        data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last, "b": [[bid, "1"]], "a": []}
        return {"stream": "btcusdt@depth@100ms", "data": data}

    adapter._dispatch(diff(1000, 1003, "1"))  # buffered: no snapshot yet
    assert adapter.poll() == []
    book = adapter._books["BTCUSDT"]
    snapshot = OrderBookSnapshot(BTC, 1005, (), (), 1)
    adapter._apply_all(book, book.settle(snapshot.sequence))  # u 1003 <= 1005: in the snapshot already
    adapter._dispatch(diff(1004, 1008, "2"))  # straddles 1006: follows the snapshot
    adapter._dispatch(diff(1009, 1010, "3"))
    adapter._dispatch(diff(1012, 1013, "4"))  # 1011 never came: a gap
    published = [e for item in [snapshot, *(adapter.poll() or [])] for e in normalizer.accept(item, counters)]
    assert [(type(e).__name__, e.sequence) for e in published] == [
        ("OrderBookSnapshot", 1005),
        ("OrderBookDelta", 1008),
        ("OrderBookDelta", 1010),
    ]
    assert normalizer.needs_resync == {BTC}
    assert counters.gaps == 1


# -- through the venue registry ----------------------------------------------------------------------------
@pytest.fixture
def registry() -> Iterator[Registry]:
    made = Registry("binance")
    yield made
    made.venues.shutdown()


def test_through_the_registry_events_land_in_the_market_data_topics(
    fake: FakeBinance, registry: Registry
) -> None:
    registry.add("bn", **params(fake))
    registry.wait_live("bn")
    # synced first: a change the snapshot already holds sends no delta
    registry.wait_snapshot()
    fake.trade("BTCUSDT", "50000", "0.1")
    fake.set_book("BTCUSDT", {"49990": "1"}, {"50010": "1"})
    wait_until(registry.landed, 20, "instruments, trades, quotes and book events in the log")
    assert [i.instrument_id for i in registry.events(INSTRUMENTS)] == [BTC, "ETHBTC.BINANCE"]
    assert registry.events(INSTRUMENTS)[0].min_notional == Decimal(5)
    [trade] = registry.events(TRADES)
    assert (trade.instrument_id, trade.price) == (BTC, Decimal(50000))
    assert registry.events(QUOTES)[-1].bid_px == Decimal(49990)
    assert ("LIVE", "connected to BINANCE") in registry.states("bn")
    wait_until(lambda: rebuilt(registry.events(BOOK)) == venue_book(fake), 20, "the book in the log")


def test_a_depth_gap_resyncs_from_a_snapshot_and_the_book_is_right(
    fake: FakeBinance, registry: Registry
) -> None:
    registry.add("bn", **params(fake, symbols="BTCUSDT"))
    registry.wait_snapshot()
    fake.set_book("BTCUSDT", {"49100": "1"}, {"51000": "2"})
    fake.lose_next_depth_update()
    fake.set_book("BTCUSDT", {"49200": "2"}, {"51000": "2"})  # its diff never arrives: a gap
    fake.set_book("BTCUSDT", {"49300": "3"}, {"50900": "1"})
    counters = registry.venues.connections["bn"].counters
    wait_until(lambda: (counters.gaps, counters.resyncs) == (1, 1), 20, "the gap and the resync")
    fake.set_book("BTCUSDT", {"49300": "3", "49400": "1"}, {"50900": "1"})  # diffs follow the new snapshot
    wait_until(
        lambda: rebuilt(registry.events(BOOK)) == venue_book(fake), 20, "the book right after the resync"
    )
    assert venue_book(fake)[OrderSide.BUY] == {Decimal(49400): Decimal(1), Decimal(49300): Decimal(3)}
    snapshots = [e.sequence for e in registry.events(BOOK) if isinstance(e, OrderBookSnapshot)]
    assert len(snapshots) == 2
    states = registry.states("bn")
    gap = states.index(("DEGRADED", f"book sequence gap on {BTC}: resyncing from a snapshot"))
    assert states[gap + 1] == ("LIVE", f"resynced {BTC} at sequence {snapshots[1]}")
    assert registry.venues.states()["bn"] is VenueState.LIVE


# -- the CLI ------------------------------------------------------------------------------------------------
def test_the_cli_adds_a_binance_connection_and_refuses_a_bad_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    api = Api(url)  # the API on an embedded log (its engine is not started: only the registry is asked)

    def request(method: str, address: str, **kw: Any) -> httpx.Response:
        kw.pop("timeout", None)
        return api.client.request(method, address.removeprefix("http://embedded"), **kw)

    monkeypatch.setattr(rest.httpx, "request", request)
    monkeypatch.setenv("MELTICA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MELTICA_API_URL", "http://embedded")
    monkeypatch.setenv("MELTICA_API_KEY", api.keys["ops"])
    urls = ["-p", "rest_url=http://127.0.0.1:9", "-p", "ws_url=ws://127.0.0.1:9"]
    runner = CliRunner()
    done = runner.invoke(cli, ["venues", "add", "bn", "binance", "-p", "symbols=BTCUSDT,ETHUSDT", *urls])
    assert done.exit_code == 0, done.output
    command, start = _events(api, VENUE_COMMANDS)
    assert (start.action, start.venue) == (VenueAction.START, "bn")
    assert (command.action, command.adapter) == (VenueAction.ADD, "binance")
    assert command.params["symbols"] == "BTCUSDT,ETHUSDT"
    bad = runner.invoke(cli, ["venues", "add", "bx", "binance", "-p", "symbols=BTCUSDT", "-p", "region=eu"])
    assert bad.exit_code == 1
    assert "unknown parameter 'region'" in bad.output
    missing = runner.invoke(cli, ["venues", "add", "bx", "binance", *urls])
    assert missing.exit_code == 1
    assert "binance needs symbols" in missing.output
    assert [c.venue for c in _events(api, VENUE_COMMANDS)] == ["bn", "bn"]  # nothing refused went in
    listed = api.client.get("/v1/venues/adapters", headers=api.auth("ops")).json()
    assert {"symbols", "depth", "rest_url", "ws_url"} <= set(listed["binance"])


def _events(api: Api, topic: str) -> list[Any]:
    found = []
    for p in range(api.log.partitions(topic)):
        for rec in api.log.read(topic, p, 0, 100_000):
            found.append((rec.seq, from_record(*api.codec.decode_record(rec))))
    return [e for _, e in sorted(found, key=lambda x: x[0])]


def test_stop_closes_the_loop_thread(fake: FakeBinance) -> None:
    adapter = BinanceAdapter(params(fake))
    before = {t.name for t in threading.enumerate()}
    adapter.connect()
    assert f"binance-{adapter.venue}" in {t.name for t in threading.enumerate()} - before
    adapter.close()
    wait_until(lambda: fake.market_connections() == 0, 20, "the socket closed")
    assert f"binance-{adapter.venue}" not in {t.name for t in threading.enumerate()}
