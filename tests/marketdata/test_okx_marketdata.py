"""OKX market data (adapter `okx`): the book checksum as OKX documents it, on the recorded `books`
messages and on the fake's; a corrupted checksum or a skipped seqId resyncs through the venue
registry and the book is right afterwards; instruments carry OKX's filters; trades and quotes."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from meltica.domain.control import VenueState
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import AggressorSide, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.domain.values import OrderSide
from meltica.marketdata import adapters
from meltica.marketdata.normalize import Counters, Normalizer
from meltica.marketdata.okx import OkxAdapter
from meltica.marketdata.okx_book import OkxBook, checksum_text, crc32_signed
from meltica.topics import BOOK, INSTRUMENTS, TRADES
from tests.fakes.okx.book import FakeBook, okx_checksum, recorded_book
from tests.fakes.okx.fake import FakeOkx
from tests.marketdata import harness
from tests.marketdata.harness import Book, Registry
from tests.waiting import wait_until

WS = Path(__file__).resolve().parents[1] / "data" / "okx" / "spot" / "ws_json"
BTC = "BTC-USD.OKX"
RECORDED_CHECKSUM, TRUE_CHECKSUM = -855196043, -2102840145
Feed = harness.Feed[OkxAdapter]
rebuilt = partial(harness.rebuilt, instrument_id=BTC)


def recorded(name: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads((WS / f"{name}.json").read_text())
    return message


# -- the checksum ---------------------------------------------------------------------------------------
def test_the_checksum_text_is_okx_documented_interleaving() -> None:
    """OKX's documentation's examples: best levels first, bid then ask, the longer side's rest alone."""
    assert (
        checksum_text([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
        == "3366.1:7:3366.8:9:3366:6:3368:8"
    )
    assert (
        checksum_text([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])
        == "3366.1:7:3366.8:9:3368:8:3372:8"
    )
    assert checksum_text([("3366.1", "7"), ("3366", "6")], [("3366.8", "9")]) == "3366.1:7:3366.8:9:3366:6"
    deep = [(str(100 - i), "1") for i in range(30)]
    assert checksum_text(deep, []).split(":")[-2:] == ["76", "1"]  # the best 25 only
    assert crc32_signed("3366.1:7:3366.8:9:3366:6:3368:8") == okx_checksum(
        [("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]
    )


def test_the_recorded_books_messages_are_shapes_their_checksum_does_not_verify() -> None:
    """The recorded snapshot's checksum is not its levels' (see tests/data/okx/SOURCES.md): both the
    adapter's and the fake's reading of OKX's algorithm give the same other value."""
    data = recorded("ws_books_snapshot")["data"][0]
    book = OkxBook()
    book.load(data["bids"], data["asks"])
    assert data["checksum"] == RECORDED_CHECKSUM
    assert book.checksum() == TRUE_CHECKSUM == recorded_book("x").checksum()
    assert checksum_text(*book.top()).startswith("8476.97:256:8476.98:415:8475.55:101:8477:7")
    update = recorded("ws_books_update")["data"][0]
    assert (update["prevSeqId"], update["seqId"]) == (data["seqId"], data["seqId"] + 1)
    assert update["bids"] == data["bids"]  # the "update" repeats the snapshot: not a consecutive recording


def test_recorded_books_verified_with_their_checksum_recomputed() -> None:
    """The recorded snapshot and update, their checksum as OKX computes it: they verify and are
    passed on with exact decimals; with the recorded checksum the update is refused (a gap)."""
    adapter = OkxAdapter({"symbols": "BTC-USDT"})  # never connected: messages handed in directly
    normalizer, counters = Normalizer("OKX"), Counters()
    snapshot, update = recorded("ws_books_snapshot"), recorded("ws_books_update")
    snapshot["data"][0]["checksum"] = update["data"][0]["checksum"] = TRUE_CHECKSUM
    adapter._dispatch(snapshot)
    adapter._dispatch(update)
    published = [e for item in adapter.poll() or [] for e in normalizer.accept(item, counters)]
    head = published[0]
    assert isinstance(head, OrderBookSnapshot)
    assert (head.instrument_id, head.sequence, head.ts) == ("BTC-USDT.OKX", 123456, 1597026383085 * 1_000_000)
    assert (head.bids[0].price, head.bids[0].size, head.asks[1].price) == (
        Decimal("8476.97"),
        Decimal(256),
        Decimal(8477),
    )
    assert [b.price for b in head.bids] == sorted((b.price for b in head.bids), reverse=True)
    assert {(type(e).__name__, e.sequence) for e in published[1:]} == {("OrderBookDelta", 123457)}
    assert (len(published), counters.gaps, adapter.checksum_mismatches) == (1 + 16, 0, 0)

    later = recorded("ws_books_update")  # the recorded checksum: the levels do not give it
    later["data"][0].update(prevSeqId=123457, seqId=123458)
    adapter._dispatch(later)
    for item in adapter.poll() or []:
        assert normalizer.accept(item, counters) == []
    assert adapter.checksum_mismatches == 1
    assert (counters.gaps, normalizer.needs_resync) == (1, {"BTC-USDT.OKX"})


def test_updates_built_by_okx_algorithm_chain_verify_and_a_corrupt_one_is_a_gap() -> None:
    """Synthetic updates from the recorded snapshot, made by the fake's own reading of OKX's
    algorithm (levels removed, added, resized; seqIds not consecutive; a keep-alive)."""
    adapter = OkxAdapter({"symbols": "BTC-USD"})
    normalizer, counters = Normalizer("OKX"), Counters()
    venue = recorded_book("BTC-USD")

    def push(data: dict[str, Any], action: str = "update") -> None:
        adapter._dispatch(
            {"arg": {"channel": "books", "instId": "BTC-USD"}, "action": action, "data": [data]}
        )

    push(venue.snapshot(1), "snapshot")
    bids, asks = dict(venue.bids), dict(venue.asks)
    bids.pop("8476.97")
    bids["8476.5"] = "3.25"
    asks["8476.98"] = "0.5"
    push(venue.replace(bids, asks, 2))
    push(
        {
            "asks": [],
            "bids": [],
            "ts": "3",
            "checksum": venue.checksum(),
            "prevSeqId": venue.seq,
            "seqId": venue.seq,
        }
    )
    asks.pop("8477")
    push(venue.replace(bids, asks, 4))
    events = [e for item in adapter.poll() or [] for e in normalizer.accept(item, counters)]
    assert rebuilt(events, instrument_id="BTC-USD.OKX") == levels(venue)
    assert [e.sequence for e in events if isinstance(e, OrderBookDelta)][-1] == venue.seq == 123456 + 6
    assert (counters.gaps, counters.duplicates, adapter.checksum_mismatches) == (0, 0, 0)

    bad = venue.replace({**bids, "8470": "1"}, asks, 5)
    bad["checksum"] += 1
    push(bad)
    push(venue.replace(bids, asks, 6))  # out of sync: dropped until a snapshot
    assert [normalizer.accept(item, counters) for item in adapter.poll() or []] == [[]]
    assert (counters.gaps, normalizer.needs_resync, adapter.checksum_mismatches) == (1, {"BTC-USD.OKX"}, 1)


def levels(book: FakeBook) -> Book:
    return {
        OrderSide.BUY: {Decimal(p): Decimal(s) for p, s in book.bids.items()},
        OrderSide.SELL: {Decimal(p): Decimal(s) for p, s in book.asks.items()},
    }


def test_recorded_trades_and_bbo_are_normalized() -> None:
    adapter = OkxAdapter({"symbols": "BTC-USD,BTC-USDT"})
    adapter._dispatch(recorded("ws_trades"))
    adapter._dispatch(recorded("ws_bbo_tbt"))
    adapter._dispatch(
        {"event": "subscribe", "arg": {"channel": "trades", "instId": "BTC-USD"}, "connId": "a"}
    )
    trade, quote = adapter.poll() or []
    assert isinstance(trade, TradeTick)
    assert isinstance(quote, QuoteTick)
    assert (trade.instrument_id, trade.price, trade.size, trade.trade_id) == (
        "BTC-USD.OKX",
        Decimal("42219.9"),
        Decimal("0.12060306"),
        "130639474",
    )
    assert (trade.aggressor_side, trade.ts) == (AggressorSide.BUYER, 1630048897897 * 1_000_000)
    assert (quote.instrument_id, quote.bid_px, quote.bid_qty, quote.ask_px, quote.ask_qty) == (
        "BTC-USDT.OKX",
        Decimal("8476.97"),
        Decimal(256),
        Decimal("8476.98"),
        Decimal(415),
    )


# -- parameters -----------------------------------------------------------------------------------------
def test_bad_parameters_are_refused_with_the_reason(tmp_path: Path) -> None:
    refused = [
        ("unknown parameter 'testnet'; okx takes api_key_file, demo, depth,", {"testnet": "true"}),
        ("okx needs symbols", {"symbols": " , "}),
        ("'BTCUSDT' is not an OKX spot instId", {"symbols": "BTCUSDT"}),
        ("depth must be true or false, got 'maybe'", {"depth": "maybe"}),
        ("rest_url must be a http or https URL", {"rest_url": "ftp://x"}),
        ("ws_url must be a ws or wss URL", {"ws_url": "http://x"}),
        ("venue must be letters, digits, _ or -", {"venue": "O.KX"}),
        (f"passphrase_file: no such file: {tmp_path / 'nope'}", {"passphrase_file": str(tmp_path / "nope")}),
    ]
    for reason, bad in refused:
        with pytest.raises(ValueError, match=re.escape(reason)):
            adapters.check("okx", {"symbols": "BTC-USDT", **bad})
    made = adapters.make("okx", {"symbols": "btc-usdt, ETH-USDT,BTC-USDT", "depth": "FALSE"})
    assert isinstance(made, OkxAdapter)
    assert (made.symbols, made.venue, made.depth) == (["BTC-USDT", "ETH-USDT"], "OKX", False)
    assert (made.rest_url, made.ws_url) == ("https://www.okx.com", "wss://ws.okx.com:8443")
    assert OkxAdapter({"symbols": "BTC-USDT", "demo": "true"}).ws_url == "wss://wspap.okx.com:8443"


# -- against the fake -----------------------------------------------------------------------------------
@pytest.fixture
def fake() -> Iterator[FakeOkx]:
    with FakeOkx() as started:
        yield started


def params(fake: FakeOkx, **more: str) -> dict[str, str]:
    return {"symbols": "BTC-USD,ETH-USD", "rest_url": fake.rest_url, "ws_url": fake.ws_url, **more}


def fake_book(fake: FakeOkx, inst_id: str = "BTC-USD") -> Book:
    bids, asks = fake.book(inst_id)
    return {
        OrderSide.BUY: {Decimal(p): Decimal(s) for p, s in bids.items()},
        OrderSide.SELL: {Decimal(p): Decimal(s) for p, s in asks.items()},
    }


@pytest.fixture
def feed(fake: FakeOkx) -> Iterator[Feed]:
    adapter = OkxAdapter(params(fake))
    adapter.connect()
    try:
        yield Feed(adapter)
    finally:
        adapter.close()


def test_instruments_come_first_with_okx_filters(feed: Feed) -> None:
    first = wait_until(lambda: feed.pump()[:2], 20, "the instruments")
    assert all(isinstance(i, Instrument) for i in first)
    btc, eth = first
    assert (btc.instrument_id, btc.symbol, btc.venue) == (BTC, "BTC-USD", "OKX")
    assert (btc.base_currency, btc.quote_currency, btc.asset_class) == ("BTC", "USD", "SPOT")
    assert (btc.price_increment, btc.size_increment) == (Decimal("0.1"), Decimal("0.00000001"))
    assert (btc.min_quantity, btc.max_quantity, btc.min_notional) == (
        Decimal("0.00001"),
        Decimal(9999999999),
        None,
    )
    assert (btc.price_precision, btc.size_precision) == (1, 8)
    assert (eth.instrument_id, eth.price_increment, eth.min_quantity) == (
        "ETH-USD.OKX",
        Decimal("0.01"),
        Decimal("0.0001"),
    )


def test_an_unknown_instrument_fails_the_connection(fake: FakeOkx) -> None:
    adapter = OkxAdapter(params(fake, symbols="BTC-USD,DOGE-USD"))
    try:
        with pytest.raises(ValueError, match="OKX has no spot instrument DOGE-USD"):
            adapter.connect()
    finally:
        adapter.close()


def test_trades_quotes_and_the_book_arrive_normalized(fake: FakeOkx, feed: Feed) -> None:
    wait_until(lambda: feed.of(OrderBookSnapshot), 20, "the snapshot")
    assert sorted(fake.subscribes) == sorted(
        (c, s) for s in ("BTC-USD", "ETH-USD") for c in ("books", "bbo-tbt", "trades")
    )
    fake.trade("BTC-USD", "42219.90", "0.5", side="sell")
    fake.set_book("BTC-USD", {"42000.1": "1.5", "41999": "2"}, {"42001": "0.25"})
    fake.keep_alive("BTC-USD")
    [trade] = wait_until(lambda: feed.of(TradeTick), 20, "the trade")
    assert (trade.instrument_id, trade.price, trade.size, trade.aggressor_side) == (
        BTC,
        Decimal("42219.9"),
        Decimal("0.5"),
        AggressorSide.SELLER,
    )
    assert str(trade.price) == "42219.9"
    quote = wait_until(
        lambda: [q for q in feed.of(QuoteTick) if q.bid_px == Decimal("42000.1")], 20, "a quote"
    )[0]
    assert (quote.bid_qty, quote.ask_px, quote.ask_qty) == (Decimal("1.5"), Decimal(42001), Decimal("0.25"))
    wait_until(lambda: rebuilt(feed.pump()) == fake_book(fake), 20, "the book")
    assert (feed.counters.gaps, feed.counters.duplicates, feed.adapter.checksum_mismatches) == (0, 0, 0)


def test_a_dropped_socket_reconnects_and_the_book_starts_again(fake: FakeOkx, feed: Feed) -> None:
    wait_until(lambda: feed.of(OrderBookSnapshot), 20, "the first snapshot")
    assert fake.drop() == 1
    fake.set_book("BTC-USD", {"8400": "3"}, {"8500": "1"})  # while down: that update is lost
    wait_until(lambda: feed.adapter.connects == 2 and fake.connections() == 1, 20, "a reconnect")
    fake.set_book("BTC-USD", {"8400": "3", "8399.5": "1"}, {"8500": "1"})
    wait_until(lambda: rebuilt(feed.pump()) == fake_book(fake), 20, "the book after the reconnect")
    assert len([s for s in feed.of(OrderBookSnapshot) if s.instrument_id == BTC]) == 2
    assert (feed.counters.gaps, feed.counters.resyncs) == (0, 0)


# -- through the venue registry -------------------------------------------------------------------------
@pytest.fixture
def registry() -> Iterator[Registry]:
    made = Registry("okx")
    yield made
    made.venues.shutdown()


def test_through_the_registry_events_land_in_the_market_data_topics(
    fake: FakeOkx, registry: Registry
) -> None:
    registry.add("ok", **params(fake))
    registry.wait_live("ok")
    registry.wait_snapshot()
    fake.trade("BTC-USD", "8476", "0.1")
    fake.set_book("BTC-USD", {"8476.5": "1"}, {"8477.5": "1"})
    wait_until(registry.landed, 20, "instruments, trades, quotes and book events in the log")
    assert [i.instrument_id for i in registry.events(INSTRUMENTS)] == [BTC, "ETH-USD.OKX"]
    assert registry.events(TRADES)[0].price == Decimal(8476)
    wait_until(lambda: rebuilt(registry.events(BOOK)) == fake_book(fake), 20, "the book in the log")


@pytest.mark.parametrize("fault", ["corrupt_next_checksum", "skip_next_update"])
def test_a_bad_checksum_or_a_skipped_seq_id_resyncs_and_the_book_is_right(
    fault: str, fake: FakeOkx, registry: Registry
) -> None:
    registry.add("ok", **params(fake, symbols="BTC-USD"))
    registry.wait_snapshot()
    fake.set_book("BTC-USD", {"8476.5": "1"}, {"8477.5": "2"})
    getattr(fake, fault)()
    fake.set_book("BTC-USD", {"8476.5": "1", "8476": "4"}, {"8477.5": "2"})  # corrupted, or never sent
    fake.set_book("BTC-USD", {"8476.5": "1", "8476": "4"}, {"8477.5": "1"})
    counters = registry.venues.connections["ok"].counters
    wait_until(lambda: (counters.gaps, counters.resyncs) == (1, 1), 20, "the gap and the resync")
    fake.set_book("BTC-USD", {"8476.5": "1", "8476": "4"}, {"8477.5": "1", "8478": "3"})  # follows the resync
    wait_until(
        lambda: rebuilt(registry.events(BOOK)) == fake_book(fake), 20, "the book right after the resync"
    )
    assert fake_book(fake)[OrderSide.SELL] == {Decimal("8477.5"): Decimal(1), Decimal(8478): Decimal(3)}
    snapshots = [e.sequence for e in registry.events(BOOK) if isinstance(e, OrderBookSnapshot)]
    assert len(snapshots) == 2
    assert fake.subscribes.count(("books", "BTC-USD")) == 2  # resynced by resubscribing
    states = registry.states("ok")
    gap = states.index(("DEGRADED", f"book sequence gap on {BTC}: resyncing from a snapshot"))
    assert states[gap + 1] == ("LIVE", f"resynced {BTC} at sequence {snapshots[1]}")
    assert registry.venues.states()["ok"] is VenueState.LIVE


def test_a_resync_whose_snapshot_does_not_verify_tries_again(fake: FakeOkx, feed: Feed) -> None:
    """A resubscription's snapshot with a wrong checksum is refused; the next one is taken."""
    wait_until(lambda: feed.of(OrderBookSnapshot), 20, "the first snapshot")
    original = fake._op
    broken = {"left": 1}

    def corrupt_snapshot(sock: Any, body: Any) -> None:
        if body.get("op") == "subscribe" and broken["left"]:
            broken["left"] -= 1
            real_send = sock.send

            def send(message: Any) -> None:
                if isinstance(message, dict) and message.get("action") == "snapshot":
                    message = copy.deepcopy(message)
                    message["data"][0]["checksum"] += 1
                real_send(message)

            sock.send = send
            try:
                original(sock, body)
            finally:
                sock.send = real_send
            return
        original(sock, body)

    fake._op = corrupt_snapshot  # type: ignore[method-assign]
    fake.corrupt_next_checksum()
    fake.set_book("BTC-USD", {"8470": "1"}, {"8480": "1"})
    wait_until(lambda: feed.pump() and feed.counters.resyncs == 1, 30, "the resync")
    assert feed.adapter.checksum_mismatches == 2  # the update, then the first resubscription's snapshot
    wait_until(lambda: rebuilt(feed.pump()) == fake_book(fake), 20, "the book after the resync")
    assert fake.subscribes.count(("books", "BTC-USD")) == 3
