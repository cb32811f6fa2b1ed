"""Backtest jobs outlive their server: a killed server's jobs are taken over after its lease and
run again with the same result, a stopped server's at once; a cancelled job stays cancelled; a job
that cannot run again fails as interrupted. Runners restarted in-process on one read-model database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from meltica.backtest.jobs import FINAL, BacktestJobs, Job, JobRequest, JobStatus, confined_source
from meltica.backtest.sources import Selection, instant_ns
from meltica.marketdata.formats import DataFormat
from meltica.projections import queries
from meltica.projections.tables import backtest_jobs, backtest_reports, backtests
from tests.api.conftest import Api

DATA = (Path(__file__).parents[1] / "data").resolve()
BARS = DATA / "usdjpy-m1-bid-2013.csv"


def request() -> JobRequest:
    """SMA(5/20) on four days of the FXCM bars (5,756 of them), with commission."""
    source = confined_source(str(BARS), (DATA,), DataFormat.FXCM, "USDJPY.SIM")
    selection = Selection(instant_ns("2013-02-04"), instant_ns("2013-02-08"), ("USDJPY.SIM",))
    return JobRequest(
        source,
        str(BARS),
        "sma-cross",
        {"fast": "5", "slow": "20"},
        selection,
        commission=Decimal("0.0001"),
        file_format=DataFormat.FXCM,
        file_instrument="USDJPY.SIM",
    )


class Runners:
    """Job runners on the `api` fixture's read models, each closed at the end."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.made: list[BacktestJobs] = []

    def new(
        self, *, lease_s: float, workers: int = 1, queued: int = 2, roots: tuple[Path, ...] = (DATA,)
    ) -> BacktestJobs:
        runner = BacktestJobs(self.api.db, workers=workers, queued=queued, roots=roots, lease_s=lease_s)
        self.made.append(runner)
        return runner

    def row(self, job_id: str) -> dict[str, Any]:
        found = queries.backtest_job(self.api.db, job_id)
        assert found is not None
        return found

    def until_final(self, job_id: str) -> dict[str, Any]:
        self.api.until(lambda: self.row(job_id)["status"] in FINAL, timeout=120)
        return self.row(job_id)

    def result(self, backtest_id: str) -> dict[str, Any]:
        with self.api.db.connect() as conn:
            row = (
                conn.execute(select(backtests).where(backtests.c.backtest_id == backtest_id)).mappings().one()
            )
            html = conn.execute(
                select(backtest_reports.c.html).where(backtest_reports.c.backtest_id == backtest_id)
            ).scalar_one()
        kept = ("fills", "realized_pnl", "open_position", "stats", "equity", "strategy", "params")
        return {**{k: row[k] for k in kept}, "report": html}


@pytest.fixture
def runners(api: Api) -> Iterator[Runners]:
    r = Runners(api)
    yield r
    for runner in r.made:
        runner.close(timeout=60)


def hold(runner: BacktestJobs) -> tuple[threading.Event, threading.Event]:
    """Stop the runner's running job at its first progress step until `release` is set."""
    held, release = threading.Event(), threading.Event()

    def listener(job: Job) -> None:
        if job.processed > 0 and not held.is_set():
            held.set()
            assert release.wait(120)

    runner.listeners.append(listener)
    return held, release


def test_a_dead_servers_job_is_taken_over_and_gives_the_same_result(runners: Runners) -> None:
    dead = runners.new(lease_s=3600)  # beats once an hour: silent from here on, as if killed
    held, release = hold(dead)
    job_id = dead.submit(request(), "trader").job_id
    assert held.wait(60)
    interrupted = runners.row(job_id)
    assert interrupted["status"] == "running"
    assert 0 < interrupted["processed"] < 5756

    survivor = runners.new(lease_s=0.5)
    survivor.start()
    done = runners.until_final(job_id)
    assert (done["status"], done["processed"], done["total"], done["reason"]) == ("done", 5756, 5756, "")
    assert survivor.job(job_id) is not None

    release.set()  # the old server wakes up: its job is no longer its own, it writes nothing more
    runners.api.until(lambda: (j := dead.job(job_id)) is not None and j.status in FINAL, timeout=60)
    assert runners.row(job_id) == done

    uninterrupted = runners.new(lease_s=3600)
    reference = runners.until_final(uninterrupted.submit(request(), "trader").job_id)
    assert reference["status"] == "done"
    assert runners.result(done["backtest_id"]) == runners.result(reference["backtest_id"])
    with runners.api.db.connect() as conn:
        assert len(conn.execute(select(backtests.c.backtest_id)).all()) == 2  # none from the old server


def test_a_stopped_server_releases_its_jobs_and_cancelled_ones_stay_cancelled(runners: Runners) -> None:
    stopping = runners.new(lease_s=3600, queued=2)
    held, release = hold(stopping)
    running = stopping.submit(request(), "trader").job_id
    assert held.wait(60)
    queued = stopping.submit(request(), "trader").job_id
    cancelled = stopping.submit(request(), "trader").job_id
    assert stopping.cancel(cancelled) is not None
    stopping.close(timeout=0)
    assert [runners.row(j)["status"] for j in (running, queued, cancelled)] == [
        "queued",
        "queued",
        "cancelled",
    ]
    release.set()

    nxt = runners.new(lease_s=3600, workers=2)  # released jobs need no lease to run out
    nxt.start()
    assert [runners.until_final(j)["status"] for j in (running, queued)] == ["done", "done"]
    assert runners.row(cancelled)["reason"] == "cancelled before it started"
    assert runners.result(runners.row(running)["backtest_id"]) == runners.result(
        runners.row(queued)["backtest_id"]
    )


@pytest.mark.parametrize(
    ("stored", "roots", "says"),
    [
        (None, (DATA,), "interrupted by a restart; it cannot run again: its request was not stored"),
        (
            request().document(),
            (),
            "interrupted by a restart; it cannot run again:",
        ),  # outside the folders now
    ],
)
def test_a_job_that_cannot_run_again_fails_as_interrupted(
    runners: Runners, stored: str | None, roots: tuple[Path, ...], says: str
) -> None:
    now = datetime.now(UTC)
    with runners.api.db.begin() as conn:
        conn.execute(
            insert(backtest_jobs).values(
                job_id="old",
                status=JobStatus.RUNNING.value,
                reason="",
                strategy="sma-cross",
                params=json.dumps({}),
                source=str(BARS),
                processed=100,
                total=5756,
                backtest_id=None,
                submitted_by="trader",
                submitted_at=now,
                updated_at=now,
                request=stored,
                runner=None,
            )
        )
    runners.new(lease_s=3600, roots=roots).start()
    failed = runners.until_final("old")
    assert failed["status"] == "failed"
    assert failed["reason"].startswith(says)


def test_a_request_is_stored_whole() -> None:
    original = request()
    again = JobRequest.reopened(original.document(), (DATA,))
    assert again.document() == original.document()
    assert (again.selection, again.commission, again.file_format) == (
        original.selection,
        Decimal("0.0001"),
        DataFormat.FXCM,
    )
