"""A backtest job survives `meltica up` killed with SIGKILL mid-run: the next start runs it again
from the start, with the same result and report as a run nobody interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from meltica.api.keys import create_key
from meltica.backtest.jobs import FINAL
from meltica.projections import queries
from meltica.projections.tables import backtest_jobs
from tests.e2e.up_process import free_port, meltica_up_process
from tests.waiting import wait_until

DATA = (Path(__file__).parents[1] / "data").resolve()
BODY = {
    "source": str(DATA / "usdjpy-m1-bid-2013.csv"),
    "format": "fxcm",
    "params": {"fast": 10, "slow": 30},
    "commission": "0.0001",
    "mark_interval": "0",  # every move marked: slow enough to be caught running
}


@contextmanager
def up(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`meltica up --no-demo` on a free port, reading the test data; yields the process and its API URL."""
    port = free_port()
    settings = {"MELTICA_LOG_BACKEND": "sqlite", "MELTICA_REPLAY_DIRS": json.dumps([str(DATA)])}
    with meltica_up_process(data_dir, port, **settings) as (proc, _):
        yield proc, f"http://127.0.0.1:{port}"


def test_a_job_killed_mid_run_completes_after_a_restart_with_the_same_report(tmp_path: Path) -> None:
    with up(tmp_path) as (proc, url):
        db = create_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
        secret = create_key(db, "quant", ["read", "trade"])
        db.dispose()
        client = httpx.Client(base_url=url, headers={"X-API-Key": secret}, timeout=15)

        def job(job_id: str) -> dict[str, Any]:
            found: dict[str, Any] = client.get(f"/v1/backtests/jobs/{job_id}").json()
            return found

        reference_id = client.post("/v1/backtests", json=BODY).json()["job_id"]
        wait_until(lambda: job(reference_id)["status"] == "done", 300, "the uninterrupted run")
        ids = [client.post("/v1/backtests", json=BODY).json()["job_id"] for _ in range(3)]
        wait_until(lambda: job(ids[0])["status"] == "running" and job(ids[0])["processed"] > 0, 120, "a run")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        client.close()

    db = create_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
    interrupted = [queries.backtest_job(db, j) for j in ids]
    db.dispose()
    assert interrupted[0] is not None
    assert interrupted[0]["status"] == "running"
    assert 0 < interrupted[0]["processed"] < interrupted[0]["total"]

    with up(tmp_path) as (_, url):
        client = httpx.Client(base_url=url, headers={"X-API-Key": secret}, timeout=15)

        def finished(job_id: str) -> bool:
            return client.get(f"/v1/backtests/jobs/{job_id}").json()["status"] in FINAL

        for job_id in ids:  # taken over once the killed server's lease (15 s) runs out
            wait_until(lambda j=job_id: finished(j), 300, job_id)
        finals = [client.get(f"/v1/backtests/jobs/{j}").json() for j in ids]
        assert [f["status"] for f in finals] == ["done"] * 3, finals
        reference = client.get(f"/v1/backtests/jobs/{reference_id}").json()["backtest_id"]

        def result(backtest_id: str) -> tuple[Any, ...]:
            doc = client.get(f"/v1/backtests/{backtest_id}").json()
            report = client.get(f"/v1/backtests/{backtest_id}/report").text
            return (doc["fills"], doc["realized_pnl"], doc["stats"], doc["equity"], report)

        expected = result(reference)
        assert expected[0] > 0
        for final in finals:
            assert result(final["backtest_id"]) == expected
        client.close()


def test_a_clean_stop_leaves_its_jobs_queued_for_the_next_start(tmp_path: Path) -> None:
    with up(tmp_path) as (_, url):
        db = create_engine(f"sqlite:///{tmp_path / 'readmodels.db'}")
        secret = create_key(db, "quant", ["read", "trade"])
        client = httpx.Client(base_url=url, headers={"X-API-Key": secret}, timeout=15)
        ids = [client.post("/v1/backtests", json=BODY).json()["job_id"] for _ in range(3)]
        cancelled = ids.pop()
        assert client.delete(f"/v1/backtests/jobs/{cancelled}").status_code == 202

        def running() -> bool:
            job = client.get(f"/v1/backtests/jobs/{ids[0]}").json()
            return job["status"] == "running" and job["processed"] > 0

        wait_until(running, 120, "a run")
        client.close()  # SIGINT as the context ends
    with db.connect() as conn:
        rows = conn.execute(
            select(backtest_jobs.c.status, backtest_jobs.c.runner).where(backtest_jobs.c.job_id.in_(ids))
        ).all()
    db.dispose()
    assert sorted(rows) == [("queued", None), ("queued", None)]

    with up(tmp_path) as (_, url):
        client = httpx.Client(base_url=url, headers={"X-API-Key": secret}, timeout=15)

        def finished(job_id: str) -> bool:
            return client.get(f"/v1/backtests/jobs/{job_id}").json()["status"] in FINAL

        for job_id in ids:
            wait_until(lambda j=job_id: finished(j), 300, job_id)
        assert [client.get(f"/v1/backtests/jobs/{j}").json()["status"] for j in ids] == ["done", "done"]
        assert client.get(f"/v1/backtests/jobs/{cancelled}").json()["status"] == "cancelled"
        client.close()
