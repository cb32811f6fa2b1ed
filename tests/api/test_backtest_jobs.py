"""Backtests as jobs over REST: submitted (`POST /v1/backtests`), followed (JSON and SSE), stored
with their HTML report, cancelled; refused sources, strategies and submissions past the runner's
capacity; and `meltica backtest submit --follow` against a running `meltica up`."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from meltica.api.app import Services, create_app
from meltica.api.keys import create_key
from meltica.backtest.jobs import BacktestJobs, Job
from meltica.cli.app import app as cli
from tests.api.conftest import Api
from tests.e2e.up_process import free_port, meltica_up

DATA = Path(__file__).parents[1] / "data"
BARS = DATA / "usdjpy-m1-bid-2013.csv"  # 28,761 one-minute bars
FOUR_DAYS = {"start": "2013-02-04", "end": "2013-02-08"}  # 5,756 of them


class Jobs:
    """A second app on the `api` fixture's log and read models, allowed to read tests/data, with
    one worker and one queue place."""

    def __init__(self, api: Api) -> None:
        self.api = api
        services = Services(
            api.log,
            api.publisher,
            api.db,
            replay_dirs=(DATA.resolve(),),
            backtest_workers=1,
            backtest_queue=1,
        )
        self.app = create_app(services)
        self.client = TestClient(self.app)
        self.runner: BacktestJobs = self.app.state.parts.backtests

    def submit(self, who: str = "trader", **body: Any) -> httpx.Response:
        request = {"source": str(BARS), "format": "fxcm", "strategy": "sma-cross", **body}
        return self.client.post("/v1/backtests", json=request, headers=self.api.auth(who))

    def job(self, job_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/v1/backtests/jobs/{job_id}", headers=self.api.auth("viewer"))
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def hold(self) -> tuple[threading.Event, threading.Event]:
        """Stop the running job at its first progress step until `release` is set: (held, release)."""
        held, release = threading.Event(), threading.Event()

        def listener(job: Job) -> None:
            if job.processed > 0 and not held.is_set():
                held.set()
                assert release.wait(60)

        self.runner.listeners.append(listener)
        return held, release


@pytest.fixture
def jobs(api: Api) -> Iterator[Jobs]:
    j = Jobs(api)
    yield j
    j.runner.close(timeout=60)


def test_submit_progress_done_listed_report(jobs: Jobs) -> None:
    answer = jobs.submit(params={"fast": 5, "slow": 20}, commission="0.0001", **FOUR_DAYS)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["Location"] == f"/v1/backtests/jobs/{job_id}"

    events = []
    url = f"/v1/backtests/jobs/{job_id}/events"
    with jobs.client.stream("GET", url, headers=jobs.api.auth("viewer")) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "done"
    progress = [e for n, e in events if n == "progress" and e["processed"] > 0]
    assert progress
    assert all(e["processed"] <= e["total"] == 5756 for e in progress)

    job = jobs.job(job_id)
    assert (job["status"], job["processed"], job["total"], job["reason"]) == ("done", 5756, 5756, "")
    assert job["params"] == {"fast": "5", "slow": "20"}
    listed = jobs.client.get("/v1/backtests", headers=jobs.api.auth("viewer")).json()["items"]
    [stored] = [b for b in listed if b["backtest_id"] == job["backtest_id"]]
    assert (stored["strategy"], stored["instrument_id"], stored["commission"]) == (
        "sma-cross",
        "USDJPY.SIM",
        "0.0001",
    )
    assert stored["fills"] > 0
    report = jobs.client.get(f"/v1/backtests/{job['backtest_id']}/report", headers=jobs.api.auth("viewer"))
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert "<html" in report.text
    assert "sma-cross on USDJPY.SIM" in report.text
    missing = jobs.client.get("/v1/backtests/nope/report", headers=jobs.api.auth("viewer"))
    assert missing.status_code == 404


def test_cancel_stops_a_running_job(jobs: Jobs) -> None:
    held, release = jobs.hold()
    job_id = jobs.submit().json()["job_id"]  # every bar: 15 progress steps
    assert held.wait(60)
    assert jobs.job(job_id)["status"] == "running"
    cancelled = jobs.client.delete(f"/v1/backtests/jobs/{job_id}", headers=jobs.api.auth())
    assert cancelled.status_code == 202, cancelled.text
    release.set()
    jobs.api.until(lambda: jobs.job(job_id)["status"] == "cancelled", timeout=60)
    job = jobs.job(job_id)
    assert 0 < job["processed"] < job["total"] == 28761
    assert job["backtest_id"] is None
    again = jobs.client.delete(f"/v1/backtests/jobs/{job_id}", headers=jobs.api.auth())
    assert again.status_code == 409


def test_too_many_jobs_are_refused(jobs: Jobs) -> None:
    held, release = jobs.hold()
    running = jobs.submit().json()["job_id"]
    assert held.wait(60)
    queued = jobs.submit(**FOUR_DAYS)
    assert queued.status_code == 202
    busy = jobs.submit(**FOUR_DAYS)
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert (busy.json()["type"].endswith("backtests-busy"), busy.headers["Retry-After"]) == (True, "5")
    queued_id = queued.json()["job_id"]
    assert jobs.client.delete(f"/v1/backtests/jobs/{queued_id}", headers=jobs.api.auth()).status_code == 202
    assert jobs.job(queued_id)["status"] == "cancelled"  # never started
    assert jobs.client.delete(f"/v1/backtests/jobs/{running}", headers=jobs.api.auth()).status_code == 202
    release.set()
    jobs.api.until(lambda: jobs.job(running)["status"] == "cancelled", timeout=60)
    assert jobs.job(queued_id)["processed"] == 0
    listed = jobs.client.get("/v1/backtests/jobs?status=cancelled&limit=1", headers=jobs.api.auth("viewer"))
    assert [j["job_id"] for j in listed.json()["items"]] == [running]
    cursor = listed.json()["next_cursor"]
    rest = jobs.client.get(f"/v1/backtests/jobs?cursor={cursor}", headers=jobs.api.auth("viewer")).json()
    assert [j["job_id"] for j in rest["items"]] == [queued_id]
    assert jobs.client.get("/v1/backtests/jobs?status=done", headers=jobs.api.auth()).json()["items"] == []


@pytest.mark.parametrize(
    "source",
    ["/etc/hostname", f"{DATA}/../../pyproject.toml", f"log:{DATA.parent}", "archive:/tmp", "kafka:"],
)
def test_a_source_outside_the_replay_folders_is_refused(jobs: Jobs, source: str) -> None:
    answer = jobs.submit(source=source)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("path-not-allowed")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"strategy": "no-such"}, "unknown strategy"),
        ({"params": {"fast": "x"}}, "fast"),
        ({"params": {"nope": 1}}, "no parameter"),
        ({"start": "yesterday"}, "ISO-8601"),
        ({"format": None}, "--format"),
    ],
)
def test_bad_requests_are_422(jobs: Jobs, body: dict[str, Any], says: str) -> None:
    answer = jobs.submit(**body)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["detail"]


def test_submitting_takes_the_trade_scope(jobs: Jobs) -> None:
    assert jobs.submit(who="viewer").status_code == 403
    assert jobs.client.get("/v1/backtests/jobs/nope", headers=jobs.api.auth("viewer")).status_code == 404


def test_a_job_without_data_fails_with_the_reason(jobs: Jobs) -> None:
    job_id = jobs.submit(start="2020-01-01").json()["job_id"]
    jobs.api.until(lambda: jobs.job(job_id)["status"] == "failed", timeout=60)
    assert "no market data" in jobs.job(job_id)["reason"]


def test_cli_submit_follows_a_job_on_a_running_stack(tmp_path: Path) -> None:
    port = free_port()
    env = {"MELTICA_DATA_DIR": str(tmp_path), "MELTICA_LOG_BACKEND": "sqlite"}
    with meltica_up(tmp_path, port, MELTICA_REPLAY_DIRS=json.dumps([str(DATA.resolve())])):
        from sqlalchemy import create_engine

        db = create_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
        secret = create_key(db, "quant", ["read", "trade"])
        db.dispose()
        cleared: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("MELTICA_"))
        env_cli = cleared | env | {"MELTICA_API_URL": f"http://127.0.0.1:{port}", "MELTICA_API_KEY": secret}
        result = CliRunner().invoke(
            cli,
            [
                *("backtest", "submit", "--source", str(BARS), "--format", "fxcm"),
                *("--from", "2013-02-04", "--to", "2013-02-06", "--follow", "--json"),
            ],
            env=env_cli,
        )
        assert result.exit_code == 0, result.stdout + result.stderr
        final = json.loads(result.stdout.strip().splitlines()[-1])
        assert (final["status"], final["processed"], final["total"]) == ("done", 2876, 2876)
        listed = httpx.get(
            f"http://127.0.0.1:{port}/v1/backtests", headers={"X-API-Key": secret}, timeout=15
        ).json()["items"]
        assert [b["backtest_id"] for b in listed] == [final["backtest_id"]]


def test_a_result_saved_by_the_cli_has_its_report(tmp_path: Path) -> None:
    cleared: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("MELTICA_"))
    result = CliRunner().invoke(
        cli,
        [
            *("backtest", "run", str(DATA / "ADABTC-1m-2021-11-27.csv"), "--format", "binance-klines"),
            *("--instrument", "ADABTC.BINANCE", "--param", "fast=2", "--param", "slow=4", "--save", "--json"),
        ],
        env=cleared | {"MELTICA_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    from sqlalchemy import create_engine

    from meltica.projections import queries

    db = create_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
    report = queries.backtest_report(db, json.loads(result.stdout)["backtest_id"])
    db.dispose()
    assert report is not None
    assert "sma-cross on ADABTC.BINANCE" in report
