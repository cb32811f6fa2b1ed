"""An absurd amount (`meltica deposit DEP1 USDT 1e400`) is refused at every layer: the CLI, the
portfolio decider, the codec (write and read), and one bad row in an old log or read model never
breaks balance reads for everyone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert
from typer.testing import CliRunner

from meltica.api.app import Services, create_app
from meltica.api.keys import create_key
from meltica.cli.app import app as cli
from meltica.clock import SimulatedClock
from meltica.domain.amounts import amount_problem
from meltica.domain.portfolio import decider as portfolio
from meltica.domain.portfolio.events import AdjustBalance, BalanceChanged
from meltica.errors import DecodeError, EncodeError
from meltica.events import compiled, decimals
from meltica.events.codec import Codec
from meltica.log.memory import MemoryLog
from meltica.log.sqlite import SqliteLog
from meltica.processors.portfolio import PortfolioProcessor
from meltica.projections import migrations
from meltica.projections import tables as t
from meltica.projections.projector import Projector
from meltica.runtime.partitions import PartitionedProcessor
from meltica.runtime.publisher import Publisher
from meltica.topics import PORTFOLIO_COMMANDS, PORTFOLIO_EVENTS, dead_letter_topic, topic_specs
from meltica.topology import build_engine, inputs_of

HUGE = Decimal("1e400")


@contextmanager
def codec_before_the_fix(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Encode as the codec did before it had a range, to write what an old log may hold."""
    with monkeypatch.context() as m:
        m.setattr(decimals, "PRECISION", 10**9)
        m.setattr(compiled, "DECIMAL_PRECISION", 10**9)
        yield


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1000000", True),
        ("-250.5", True),
        ("0.000000000000000001", True),
        ("99999999999999999999", True),  # 20 digits before the point
        ("0", True),
        ("1e400", False),
        ("100000000000000000000", False),  # 21 digits
        ("0.0000000000000000001", False),  # 19 places
        ("12345678901234567890.123456789", False),  # 29 significant digits
        ("Infinity", False),
        ("NaN", False),
    ],
)
def test_amount_range(text: str, ok: bool) -> None:
    assert (amount_problem(Decimal(text)) is None) is ok


def test_the_portfolio_refuses_an_out_of_range_adjustment() -> None:
    state = portfolio.PortfolioState()
    with pytest.raises(ValueError, match="refused"):
        portfolio.decide(state, AdjustBalance("DEP1", "USDT", HUGE, "deposit", 1))
    big = Decimal("90000000000000000000")
    (event,) = portfolio.decide(state, AdjustBalance("DEP1", "USDT", big, "deposit", 1))
    portfolio.evolve(state, event)
    with pytest.raises(ValueError, match="more than 20 digits"):  # the total would leave the range
        portfolio.decide(state, AdjustBalance("DEP1", "USDT", big, "deposit", 2))


def test_the_portfolio_refuses_an_adjustment_it_would_have_to_round() -> None:
    state = portfolio.PortfolioState()
    (event,) = portfolio.decide(
        state, AdjustBalance("DEP3", "USDT", Decimal("99999999999999999999"), "deposit", 1)
    )
    portfolio.evolve(state, event)
    tiny = AdjustBalance("DEP3", "USDT", Decimal("0.000000000000000001"), "deposit", 2)
    with pytest.raises(ValueError, match=r"cannot be held exactly: .* more than 28 significant digits"):
        portfolio.decide(state, tiny)
    assert state.balance("DEP3", "USDT").total == Decimal("99999999999999999999")
    (fine,) = portfolio.decide(state, AdjustBalance("DEP3", "USDT", Decimal("-0.5"), "withdrawal", 3))
    assert isinstance(fine, BalanceChanged)
    assert fine.total == Decimal("99999999999999999998.5")


def test_the_codec_refuses_a_decimal_beyond_its_range_on_write_and_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec, log = Codec(), MemoryLog()
    for spec in topic_specs(1):
        log.create_topic(spec)
    command = AdjustBalance("DEP1", "USDT", HUGE, "deposit", 1)
    with pytest.raises(EncodeError, match="out of range"):
        Publisher(log, codec).publish(PORTFOLIO_COMMANDS, command)
    assert log.end_offset(PORTFOLIO_COMMANDS, 0) == 0
    with codec_before_the_fix(monkeypatch):
        Publisher(log, codec).publish(PORTFOLIO_COMMANDS, command)
    (rec,) = log.read(PORTFOLIO_COMMANDS, 0, 0, 10)
    with pytest.raises(DecodeError, match="out of range"):
        codec.decode_record(rec)
    assert decimals.to_wire(Decimal("9.9E+27")) == "9.9E+27"
    assert decimals.from_wire("0E+100") == 0  # zero is in range whatever its exponent


def test_the_cli_refuses_an_absurd_deposit_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELTICA_DATA_DIR", str(tmp_path))
    for amount in ("1e400", "99999999999999999999.999999999"):
        result = CliRunner().invoke(cli, ["deposit", "DEP1", "USDT", amount])
        assert result.exit_code == 2, result.output
        assert "amount" in result.output
    if (tmp_path / "log.db").exists():
        with SqliteLog(tmp_path / "log.db") as log:
            assert all(
                log.end_offset(PORTFOLIO_COMMANDS, p) == 0 for p in range(log.partitions(PORTFOLIO_COMMANDS))
            )


def test_the_cli_says_a_deposit_is_submitted_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELTICA_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["deposit", "DEP3", "USDT", "0.000000000000000001"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "DEP3: +0.000000000000000001 USDT submitted" in said
    assert "meltica balances" in said


def test_an_absurd_deposit_in_an_old_log_breaks_no_balance_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(2):
        log.create_topic(spec)
    publisher = Publisher(log, codec)
    with codec_before_the_fix(monkeypatch):  # what the engine used to accept and write
        publisher.publish(PORTFOLIO_COMMANDS, AdjustBalance("DEP1", "USDT", HUGE, "deposit", 1))
        publisher.publish(
            PORTFOLIO_EVENTS, BalanceChanged("DEP1", "USDT", HUGE, HUGE, Decimal(0), HUGE, "deposit", 1)
        )
    publisher.publish(PORTFOLIO_COMMANDS, AdjustBalance("OK1", "USDT", Decimal("1000"), "deposit", 2))
    engine = build_engine(log, codec)
    engine.drain()
    assert engine.stats.dead_letters == 1  # the absurd deposit, which no longer decodes
    url = f"sqlite:///{tmp_path / 'rm.db'}"
    migrations.upgrade(url)
    db = create_engine(url)
    projector = Projector(log, codec, db)
    projector.catch_up()
    assert projector.skipped == 1  # the absurd event, noted in the log as not projected
    assert "not projected: portfolio.events" in caplog.text
    client = TestClient(create_app(Services(log, publisher, db)))
    auth = {"X-API-Key": create_key(db, "viewer", ["read"])}
    answer = client.get("/v1/balances", headers=auth)
    assert answer.status_code == 200, answer.text
    rows = {(b["account_id"], b["asset"]): b["total"] for b in answer.json()["items"]}
    assert rows == {("OK1", "USDT"): "1000"}

    # a row a projector wrote before the fix (read models are not rebuilt on upgrade) reads back too
    with db.begin() as conn:
        conn.execute(
            insert(t.balances).values(
                account_id="DEP1", asset="USDT", total=HUGE, free=HUGE, locked=0, ts_event=1
            )
        )
    answer = client.get("/v1/balances", headers=auth)
    assert answer.status_code == 200, answer.text
    assert {b["account_id"] for b in answer.json()["items"]} == {"OK1", "DEP1"}


def test_an_output_the_codec_refuses_dead_letters_its_input_and_the_engine_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(portfolio, "amount_problem", lambda value: None)  # past the domain's own check
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(2):
        log.create_topic(spec)
    publisher = Publisher(log, codec)
    big = Decimal("9.9E+27")  # inside the wire's range; twice that is not
    for account, amount in (("DEP1", big), ("DEP1", big), ("OK1", Decimal(5))):
        publisher.publish(PORTFOLIO_COMMANDS, AdjustBalance(account, "USDT", amount, "deposit", 1))
    engine = build_engine(log, codec)
    engine.drain()
    assert engine.stats.dead_letters == 1
    totals = [
        codec.decode_record(r).record["total"]
        for p in range(log.partitions(PORTFOLIO_EVENTS))
        for r in log.read(PORTFOLIO_EVENTS, p, 0, 100)
    ]
    assert sorted(totals) == [Decimal(5), big]


def test_a_kafka_partition_dead_letters_an_input_whose_output_the_codec_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(portfolio, "amount_problem", lambda value: None)
    log, codec = MemoryLog(), Codec()
    for spec in topic_specs(1):
        log.create_topic(spec)
    big = Decimal("9.9E+27")
    for _ in range(2):
        Publisher(log, codec).publish(PORTFOLIO_COMMANDS, AdjustBalance("DEP1", "USDT", big, "deposit", 1))
    core = PartitionedProcessor(
        "portfolio",
        lambda p: PortfolioProcessor(),
        inputs_of("portfolio"),
        codec=codec,
        reader=log,
        clock=SimulatedClock(0),
        snapshot_key=bytes(32),
    )
    state = core.restore(0)
    first, second = (core.apply(state, rec, live=True) for rec in log.read(PORTFOLIO_COMMANDS, 0, 0, 10))
    assert [m.topic for m in first] == [PORTFOLIO_EVENTS]
    assert [m.topic for m in second] == [dead_letter_topic(PORTFOLIO_COMMANDS)]
    assert b"output not encodable" in dict(second[0].headers)["meltica.dlq.reason"]
