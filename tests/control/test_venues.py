"""The venue registry: connections added, started, stopped and removed at run time through the
API, their states with reasons, duplicate suppression, book resync, failure and recovery."""

from __future__ import annotations

import shutil
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meltica.control.venues import VenueManager
from meltica.domain.control import ControlVenue, VenueAction, VenueStateChanged
from meltica.domain.marketdata import (
    OUT_OF_ORDER,
    AggressorSide,
    BookAction,
    BookLevel,
    OrderBookDelta,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from meltica.domain.values import OrderSide
from meltica.events.mapping import from_record
from meltica.marketdata import adapters
from meltica.marketdata.normalize import BookUpdate, Counters, Normalizer
from meltica.topics import BOOK, QUOTES, TRADES, VENUE_EVENTS
from tests.control.conftest import ControlStack
from tests.waiting import wait_until

DATA = Path(__file__).parents[1] / "data"
QUOTES_FILE = DATA / "usdjpy-ticks.csv"
TRADES_FILE = DATA / "bitmex_trades_XBTUSD.csv"


def events(stack: ControlStack, topic: str) -> list[Any]:
    found = []
    for p in range(stack.log.partitions(topic)):
        for rec in stack.log.read(topic, p, 0, 100_000):
            found.append((rec.seq, from_record(*stack.codec.decode_record(rec))))
    return [e for _, e in sorted(found, key=lambda x: x[0])]


def add(stack: ControlStack, name: str, adapter: str, start: bool = True, **params: Any) -> Any:
    body = {"name": name, "adapter": adapter, "params": params, "start": start}
    return stack.client.post("/v1/venues", json=body, headers=stack.auth("ops"))


# -- normalizer (pure) ------------------------------------------------------------------------------
def quote(ts: int, bid: str = "1", instrument: str = "EURUSD") -> QuoteTick:
    return QuoteTick(instrument, Decimal(bid), Decimal(1), Decimal(bid) + 1, Decimal(1), ts)


def test_normalizer_ids_duplicates_and_out_of_order() -> None:
    n, c = Normalizer("FXV"), Counters()
    [q] = n.accept(quote(10), c)
    assert q.instrument_id == "EURUSD.FXV"
    assert q.flags == 0
    assert n.accept(quote(10), c) == []  # the same quote from a second connection
    [late] = n.accept(quote(5, "2"), c)
    assert late.flags & OUT_OF_ORDER
    trade = TradeTick("EURUSD.FXV", Decimal(1), Decimal(1), AggressorSide.BUYER, "t-1", 11)
    assert len(n.accept(trade, c)) == 1
    assert n.accept(trade, c) == []
    assert (c.received, c.published, c.duplicates, c.out_of_order) == (5, 3, 2, 1)


def delta(seq: int, price: str = "100") -> OrderBookDelta:
    return OrderBookDelta("BOOK", BookAction.UPDATE, OrderSide.BUY, Decimal(price), Decimal(1), seq, seq)


def update(seq: int, prev: int) -> BookUpdate:
    return BookUpdate("BOOK", seq, prev, (delta(seq),))


def snapshot(seq: int) -> OrderBookSnapshot:
    return OrderBookSnapshot("BOOK", seq, (BookLevel(Decimal(99), Decimal(1)),), (), seq)


def test_normalizer_book_gap_waits_for_a_snapshot() -> None:
    n, c = Normalizer("X"), Counters()
    assert n.accept(update(1, 0), c) == []
    assert n.needs_resync == {"BOOK.X"}
    assert len(n.accept(snapshot(10), c)) == 1
    assert not n.needs_resync
    assert len(n.accept(update(11, 10), c)) == 1
    assert n.accept(update(11, 10), c) == []  # duplicate sequence
    assert n.accept(update(13, 12), c) == []
    assert n.needs_resync == {"BOOK.X"}
    assert n.accept(update(14, 13), c) == []  # dropped until the resync
    assert len(n.accept(snapshot(14), c)) == 1
    assert [d.sequence for d in n.accept(update(15, 14), c)] == [15]
    assert (c.gaps, c.resyncs, c.duplicates) == (1, 2, 1)


# -- through the registry -----------------------------------------------------------------------------
def test_a_duplicated_feed_produces_no_duplicate_events(make_stack: Any) -> None:
    stack = make_stack()
    for name in ("fx-primary", "fx-backup"):  # two connections (aliases) of one venue
        assert (
            add(stack, name, "replay", path=str(QUOTES_FILE), format="truefx", symbol="USDJPY").status_code
            == 202
        )
    for name in ("trades-a", "trades-b"):
        r = add(
            stack,
            name,
            "replay",
            path=str(TRADES_FILE),
            format="tardis-trades",
            symbol="XBTUSD",
            venue="BITMEX",
        )
        assert r.status_code == 202
    for name in ("fx-primary", "fx-backup", "trades-a", "trades-b"):
        stack.wait_venue(name, "STOPPED")
    stack.until(lambda: sum(stack.venue(n)["received"] for n in ("fx-primary", "fx-backup")) == 2000)
    quotes = [q for q in events(stack, QUOTES) if q.instrument_id != "BTCUSDT.SIM"]  # the stack's own
    trades = events(stack, TRADES)
    assert len(quotes) == 1000
    assert {q.instrument_id for q in quotes} == {"USDJPY.SIM"}
    assert len(trades) == 10
    assert {t.instrument_id for t in trades} == {"XBTUSD.BITMEX"}
    assert len({t.trade_id for t in trades}) == 10
    fx = [stack.venue(n) for n in ("fx-primary", "fx-backup")]
    assert sum(v["published"] for v in fx) == 1000
    assert sum(v["duplicates"] for v in fx) == 1000
    assert fx[0]["reason"].startswith("end of data after 1000 records")


class ScriptedBook:
    """A venue whose book stream loses update 13; its snapshot endpoint answers at 14."""

    PARAMS: set[str] = set()
    venue = "TEST"

    def __init__(self, params: dict[str, str]) -> None:
        self.batches: list[list[Any]] = [
            [snapshot(10), update(11, 10), update(12, 11), update(14, 13)],
            [update(15, 14), update(16, 15)],
        ]

    def connect(self) -> None:
        pass

    def poll(self) -> list[Any] | None:
        return self.batches.pop(0) if self.batches else None

    def snapshot(self, instrument_id: str) -> OrderBookSnapshot:
        assert instrument_id == "BOOK.TEST"
        return snapshot(14)

    def close(self) -> None:
        pass


def test_a_book_gap_triggers_a_resync_from_a_snapshot(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(adapters.ADAPTERS, "scripted", ScriptedBook)
    stack = make_stack()
    assert add(stack, "book", "scripted").status_code == 202
    final = stack.wait_venue("book", "STOPPED")
    assert (final["gaps"], final["resyncs"]) == (1, 1)
    book = events(stack, BOOK)
    seqs = [(type(e).__name__, e.sequence) for e in book]
    assert seqs == [
        ("OrderBookSnapshot", 10),
        ("OrderBookDelta", 11),
        ("OrderBookDelta", 12),
        ("OrderBookSnapshot", 14),
        ("OrderBookDelta", 15),
        ("OrderBookDelta", 16),
    ]
    states = [
        (e.state.value, e.reason) for e in events(stack, VENUE_EVENTS) if isinstance(e, VenueStateChanged)
    ]
    gap = states.index(("DEGRADED", "book sequence gap on BOOK.TEST: resyncing from a snapshot"))
    changes = [
        s for s in states[gap + 1 :] if s != states[gap]
    ]  # not the counters' reports of the same state
    assert changes[0] == ("LIVE", "resynced BOOK.TEST at sequence 14")


def test_a_failed_venue_shows_why_and_recovers_on_restart(make_stack: Any, tmp_path: Path) -> None:
    stack = make_stack()
    path = tmp_path / "later.csv"
    assert add(stack, "fx", "replay", path=str(path), format="truefx", symbol="USDJPY").status_code == 202
    failed = stack.wait_venue("fx", "FAILED")
    assert failed["reason"] == f"FileNotFoundError: no such file: {path}"
    gauge = {
        o.attributes["state"]: o.value for o in stack.venues.observations() if o.attributes["venue"] == "fx"
    }
    counted = {
        o.attributes["kind"]: o.value for o in stack.venues.counters() if o.attributes["venue"] == "fx"
    }
    assert counted["received"] == 0

    assert gauge["failed"] == 1
    assert gauge["live"] == 0

    shutil.copyfile(QUOTES_FILE, path)
    assert stack.client.post("/v1/venues/fx/start", headers=stack.auth("ops")).status_code == 202
    done = stack.wait_venue("fx", "STOPPED")
    assert done["published"] == 1000
    states = [e.state.value for e in events(stack, VENUE_EVENTS) if e.venue == "fx"]
    changes = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]  # counters repeat a state
    assert changes == ["STOPPED", "CONNECTING", "FAILED", "CONNECTING", "LIVE", "STOPPED"]

    path.write_text(
        path.read_text().replace(",86.728", ",8x.728", 1)
    )  # a corrupted row: fails, naming the line
    assert stack.client.post("/v1/venues/fx/start", headers=stack.auth("ops")).status_code == 202
    assert stack.wait_venue("fx", "FAILED")["reason"].startswith("ValueError: later.csv:")


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_registry_changes_and_refusals(make_stack: Any, db: str, request: pytest.FixtureRequest) -> None:
    stack = make_stack(url=None if db == "sqlite" else request.getfixturevalue("database_url"))
    bad = add(stack, "x", "carrier-pigeon")
    assert bad.status_code == 422
    assert "unknown adapter 'carrier-pigeon'" in bad.json()["detail"]
    bad = add(stack, "x", "synthetic", tick_ms="fast")
    assert bad.status_code == 422
    assert "tick_ms must be an integer" in bad.json()["detail"]
    assert add(stack, "sim", "synthetic", tick_ms=20).status_code == 202
    assert stack.wait_venue("sim", "LIVE")["reason"] == "connected to SIM"
    assert add(stack, "sim", "synthetic").status_code == 409
    stack.until(lambda: stack.venue("sim")["published"] > 0)
    assert (
        stack.client.post("/v1/venues", json={"name": "sim"}, headers=stack.auth("trader")).status_code == 403
    )
    r = stack.client.patch("/v1/venues/sim", json={"params": {"tick_ms": 50}}, headers=stack.auth("ops"))
    assert r.status_code == 202
    stack.until(
        lambda: stack.venue("sim")["params"]["tick_ms"] == "50" and stack.venue("sim")["state"] == "LIVE"
    )
    assert stack.client.post("/v1/venues/sim/stop", headers=stack.auth("ops")).status_code == 202
    assert stack.wait_venue("sim", "STOPPED")["reason"] == "stopped by operator"
    assert stack.client.delete("/v1/venues/sim", headers=stack.auth("ops")).status_code == 202
    stack.wait_venue("sim", "REMOVED")
    assert stack.get("/v1/venues")["items"] == []
    assert stack.client.get("/v1/venues/sim", headers=stack.auth("ops")).status_code == 404
    assert "replay" in stack.get("/v1/venues/adapters")


def test_the_registry_is_rebuilt_from_the_log_after_a_restart(make_stack: Any) -> None:
    stack = make_stack()
    assert add(stack, "sim", "synthetic", tick_ms=20).status_code == 202
    assert add(stack, "idle", "synthetic", start=False).status_code == 202
    stack.wait_venue("sim", "LIVE")
    stack.wait_venue("idle", "STOPPED")
    stack.stop.set()
    for thread in stack.threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), thread
    again = VenueManager(stack.log, stack.codec, stack.publisher)
    stop = threading.Event()
    runner = threading.Thread(target=again.run, args=(stop, 0.01))
    runner.start()
    try:
        # both venues back, and nothing else: the running one started again, the stopped one not
        wait_until(
            lambda: {n: s.value for n, s in again.states().items()} == {"sim": "LIVE", "idle": "STOPPED"},
            60,
            "the registry rebuilt from the log",
        )
    finally:
        stop.set()
        runner.join(timeout=10)


def test_after_a_restart_finished_replays_stay_done_and_resent_data_is_dropped(make_stack: Any) -> None:
    stack = make_stack()
    assert (
        add(stack, "fx", "replay", path=str(QUOTES_FILE), format="truefx", symbol="USDJPY").status_code == 202
    )
    stack.wait_venue("fx", "STOPPED")
    stack.until(lambda: stack.venue("fx")["published"] == 1000)
    stack.stop.set()
    for thread in stack.threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), thread

    again = VenueManager(stack.log, stack.codec, stack.publisher, report_every=0)
    again.recover()  # as after a restart of the process
    assert {n: s.value for n, s in again.states().items()} == {"fx": "STOPPED"}
    assert again.connections["fx"].thread is None  # the finished replay is not started again
    cmd = ControlVenue(
        VenueAction.ADD, "fx-again", "op", 0, "replay", {"path": str(QUOTES_FILE), "symbol": "USDJPY"}
    )
    again.apply(cmd)
    again.apply(ControlVenue(VenueAction.START, "fx-again", "op", 0))
    wait_until(lambda: again.connections["fx-again"].thread is None, 60, "the replay fx-again to end")
    counters = again.connections["fx-again"].counters
    assert (counters.received, counters.published, counters.duplicates) == (1000, 0, 1000)
    quotes = [q for q in events(stack, QUOTES) if q.instrument_id == "USDJPY.SIM"]
    assert len(quotes) == 1000
    again.shutdown()
