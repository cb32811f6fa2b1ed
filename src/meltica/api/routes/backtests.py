"""Backtests: saved results (their summaries, one with its equity curve, its HTML report) and
backtest jobs submitted here (`POST /v1/backtests`), with their progress as JSON or SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from meltica.api.deps import AppServices, Backtests, ReadKey, ReadModels, Streams, TradeKey
from meltica.api.numbers import Amount
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.params import MAX_PARAMS, checked_params, invalid
from meltica.api.problems import Problem, not_found, strategy_not_allowed
from meltica.api.schemas import Page
from meltica.backtest.jobs import (
    FINAL,
    BusyError,
    JobRequest,
    JobStatus,
    SourceRefusedError,
    confined_source,
)
from meltica.backtest.sources import Selection, instant_ns
from meltica.backtest.store import as_document
from meltica.control.specs import ParamValue, Strict
from meltica.errors import MelticaError
from meltica.marketdata.formats import DataFormat
from meltica.processors.bars import parse_width
from meltica.projections import queries
from meltica.strategies.catalog import StrategyNotAllowedError, build

router = APIRouter(tags=["backtests"])
BUSY_RETRY_S = 5
_POLL_S = 0.1  # how often a progress stream looks at its job
_KEEPALIVE_S = 15.0  # a comment line after this long without a change


class BacktestRequest(Strict):
    """A backtest to run as a job: the same choices as `meltica backtest run`."""

    source: str = Field(
        max_length=1024,
        description="log:DIR (a data directory's embedded log), archive:DIR (the Parquet archive) or "
        "a file path; each inside the server's replay folders (MELTICA_REPLAY_DIRS). Kafka: only "
        "`meltica backtest run`.",
    )
    format: DataFormat | None = Field(default=None, description="What a file source holds.")
    strategy: str = Field(
        default="sma-cross",
        max_length=64,
        description="A shipped strategy (GET /v1/strategies/catalog), or module:Class of a module "
        "under the server's strategy_modules prefixes (none by default: 403 strategy-not-allowed).",
    )
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=MAX_PARAMS)
    instruments: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Instrument ids (default: a file's USDJPY.SIM, or every instrument recorded).",
    )
    venues: list[str] = Field(default_factory=list, max_length=32, description="Only these venues.")
    start: str | None = Field(default=None, max_length=64, description="ISO-8601 start (event time).")
    end: str | None = Field(default=None, max_length=64, description="ISO-8601 end, exclusive.")
    commission: Amount = Field(default=Decimal(0), description="Fee as a fraction of notional.")
    cash: Amount = Field(default=Decimal(10_000_000), description="Starting balance of the account.")
    mark_interval: str = Field(default="1h", max_length=16, description="Mark positions at most this often.")


class Busy(Problem):
    """503 `backtests-busy`, with Retry-After: the job runner is full."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, "backtests-busy", "Backtests busy", detail, retry_after=BUSY_RETRY_S)

    def response(self, instance: str) -> JSONResponse:
        answer = super().response(instance)
        answer.headers["Retry-After"] = str(BUSY_RETRY_S)
        return answer


def _request(body: BacktestRequest, services: AppServices) -> JobRequest:
    """The job `body` asks for, checked now: else 422 (`path-not-allowed`: outside the replay folders)."""
    recorded = body.source.partition(":")[0] in ("log", "kafka", "archive")
    wanted = list(body.instruments or ([] if recorded else ["USDJPY.SIM"]))
    if any(len(i) > 128 or not i.isprintable() for i in wanted + body.venues):
        raise invalid("instrument ids and venues are at most 128 printable characters")
    if body.commission < 0 or body.cash <= 0:
        raise invalid("commission is at least 0 and cash more than 0")
    try:
        params = checked_params(body.params)
        for iid in wanted or ["ANY.SIM"]:  # an unknown strategy or parameter: 422 now
            build(body.strategy, iid, params, modules=services.strategy_modules)
        marks_ns = 0 if body.mark_interval.strip() == "0" else parse_width(body.mark_interval)[1]
        selection = Selection(instant_ns(body.start), instant_ns(body.end), tuple(wanted), tuple(body.venues))
        file_instrument = wanted[0] if len(wanted) == 1 else None
        source = confined_source(body.source, services.replay_dirs, body.format, file_instrument)
    except SourceRefusedError as err:
        raise Problem(422, "path-not-allowed", "Path not allowed", str(err)) from None
    except StrategyNotAllowedError as err:
        raise strategy_not_allowed(str(err)) from None
    except (ValueError, MelticaError) as err:
        raise invalid(str(err)) from None
    return JobRequest(
        source,
        body.source,
        body.strategy,
        params,
        selection,
        body.commission,
        body.cash,
        marks_ns,
        file_format=body.format,
        file_instrument=file_instrument,
    )


def _job(db: Engine, job_id: str) -> dict[str, Any]:
    found = queries.backtest_job(db, job_id)
    if found is None:
        raise not_found(f"backtest job {job_id}")
    return found


def summary(row: dict[str, Any]) -> dict[str, Any]:
    return as_document(row, with_equity=False)


@router.get("/v1/backtests", response_model=Page)
def list_backtests(
    _: ReadKey,
    db: ReadModels,
    strategy: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    found = queries.backtests(db, limit=limit, after=after(queries.BACKTESTS, cursor), strategy=strategy)
    return page(queries.BACKTESTS, found, summary)


@router.get("/v1/backtests/jobs", response_model=Page)
def list_backtest_jobs(
    _: ReadKey,
    db: ReadModels,
    status: JobStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    """The backtest jobs submitted here, oldest first, with their status and progress."""
    found = queries.backtest_jobs(
        db,
        limit=limit,
        after=after(queries.BACKTEST_JOBS, cursor),
        status=None if status is None else status.value,
    )
    return page(queries.BACKTEST_JOBS, found)


@router.get("/v1/backtests/{backtest_id}")
def get_backtest(backtest_id: str, _: ReadKey, db: ReadModels) -> dict[str, Any]:
    found = queries.backtest(db, backtest_id)
    if found is None:
        raise not_found(f"backtest {backtest_id}")
    return as_document(found, with_equity=True)


@router.post("/v1/backtests", status_code=202)
def submit_backtest(
    body: BacktestRequest, k: TradeKey, services: AppServices, jobs: Backtests, response: Response
) -> dict[str, Any]:
    """Run a backtest as a job: 202 with its id and Location; its status and progress at
    `/v1/backtests/jobs/{job_id}` (SSE: `/events`), its result in `/v1/backtests` once done. 503
    `backtests-busy` while this server runs and queues the most it takes."""
    request = _request(body, services)
    try:
        job = jobs.submit(request, k.name)
    except BusyError as err:
        raise Busy(str(err)) from None
    location = f"/v1/backtests/jobs/{job.job_id}"
    response.headers["Location"] = location
    return {"job_id": job.job_id, "status": job.status.value, "location": location}


@router.get("/v1/backtests/jobs/{job_id}")
def get_backtest_job(job_id: str, _: ReadKey, db: ReadModels) -> dict[str, Any]:
    """A job's status (queued, running, done, failed with the reason, cancelled), its progress
    (market-data events processed of the total) and, once done, its `backtest_id`."""
    return _job(db, job_id)


@router.delete("/v1/backtests/jobs/{job_id}", status_code=202)
def cancel_backtest_job(job_id: str, _: TradeKey, db: ReadModels, jobs: Backtests) -> dict[str, Any]:
    """Cancel a queued or running job (a running one stops within a few thousand events); 409 if it
    has finished."""
    found = _job(db, job_id)
    if found["status"] in FINAL:
        raise Problem(409, "finished", "Job finished", f"backtest job {job_id} is {found['status']}")
    if jobs.cancel(job_id) is None:
        raise Problem(409, "elsewhere", "Job on another server", f"backtest job {job_id} runs elsewhere")
    return {"job_id": job_id, "status": "cancel requested"}


@router.get("/v1/backtests/jobs/{job_id}/events", response_class=StreamingResponse)
async def backtest_job_events(job_id: str, key: ReadKey, db: ReadModels, slots: Streams) -> StreamingResponse:
    """The job's progress as Server-Sent Events (`progress`, with processed and total), then one
    event named for its final status (done, failed, cancelled), and the stream ends."""
    await run_in_threadpool(_job, db, job_id)  # 404 before the stream starts
    body = _job_events(db, job_id)
    slots.admit(key.key_id, body)  # counts against the key's open streams
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _job_events(db: Engine, job_id: str) -> AsyncIterator[str]:
    yield ": connected\n\n"
    last: dict[str, Any] | None = None
    quiet = 0.0
    while True:
        row = await run_in_threadpool(queries.backtest_job, db, job_id)
        if row is None:
            return
        seen = {k: row[k] for k in ("status", "processed", "total", "reason", "backtest_id")}
        if seen != last:
            last = seen
            final = row["status"] in FINAL
            data = json.dumps({"job_id": job_id, **seen})
            yield f"event: {row['status'] if final else 'progress'}\ndata: {data}\n\n"
            if final:
                return
            quiet = 0.0
        elif quiet >= _KEEPALIVE_S:  # a long load shows no progress: keep proxies and clients reading
            yield ": waiting\n\n"
            quiet = 0.0
        await asyncio.sleep(_POLL_S)
        quiet += _POLL_S


@router.get("/v1/backtests/{backtest_id}/report", response_class=HTMLResponse)
def backtest_report(backtest_id: str, _: ReadKey, db: ReadModels) -> Response:
    """A stored backtest's HTML report (statistics, equity, drawdown, trades on price)."""
    html = queries.backtest_report(db, backtest_id)
    if html is None:
        raise not_found(f"a report of backtest {backtest_id}")
    return HTMLResponse(
        html, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    )
