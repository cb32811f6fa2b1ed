"""Backtests as jobs (`POST /v1/backtests`): a request checked up front (source inside the allowed
folders, a catalog strategy and its parameters), then run off the request path by a bounded set
of worker threads. Each job's status and progress are kept in `backtest_jobs`; its result goes
through `meltica.backtest.store` with its HTML report.

Jobs outlive their server: each row keeps its checked request and the server running it (`runner`),
whose heartbeat is the row's `updated_at`. A server that stops releases its jobs; one that dies
stops beating. Any server then takes over the released ones at once and the silent ones after
`lease_s`, and runs them again from the start (a backtest is deterministic: the same result). A
server that finds its job taken over stops it; a cancelled job stays cancelled."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update

from meltica.backtest.engine import MARK_INTERVAL_NS, run_backtest
from meltica.backtest.report import render
from meltica.backtest.sources import Selection, Source, open_source
from meltica.backtest.store import save
from meltica.domain.instruments import Instrument, spot
from meltica.domain.marketdata import OrderBookDelta, OrderBookSnapshot
from meltica.errors import MelticaError
from meltica.marketdata.adapters import outside
from meltica.marketdata.formats import DataFormat
from meltica.marketdata.instruments import DEFAULT_INSTRUMENTS
from meltica.projections.tables import backtest_jobs
from meltica.strategies.catalog import Modules, build

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
LEASE_S = 15.0  # a job whose server has not beaten for this long is taken over
INTERRUPTED = "interrupted by a restart"


class SourceRefusedError(ValueError):
    """A source a remote caller may not name: outside the allowed folders, or Kafka."""


class BusyError(RuntimeError):
    """Every worker is busy and the queue is full."""


def instrument_of(instrument_id: str) -> Instrument:
    """A built-in instrument, or a spot one with fine increments named SYMBOL.VENUE."""
    known = {i.instrument_id: i for i in DEFAULT_INSTRUMENTS}
    symbol, _, venue = instrument_id.rpartition(".")
    return known.get(instrument_id) or spot(
        symbol,
        venue or "SIM",
        symbol[:3],
        symbol[3:] or "USD",
        price_increment="0.00000001",
        size_increment="0.00000001",
    )


def confined_source(
    spec: str, roots: Sequence[Path], file_format: DataFormat | None, instrument_id: str | None
) -> Source:
    """The source `spec` names, if a remote caller may read it: `log:DIR`, `archive:DIR` or a file,
    resolved inside `roots`; Kafka is refused (the server's own topics are not the caller's to
    name). A SourceRefusedError, or a ValueError for a malformed spec."""
    kind, sep, rest = spec.partition(":")
    if sep and kind == "kafka":
        raise SourceRefusedError("kafka: sources are not available over the API; use `meltica backtest run`")
    named = rest if sep and kind in ("log", "archive") else spec
    if not named:
        raise ValueError(f"{kind}: needs a folder, {kind}:DIR")
    path = Path(named).expanduser().resolve()
    problem = outside(path, roots)
    if problem:
        raise SourceRefusedError(problem)
    resolved = f"{kind}:{path}" if sep and kind in ("log", "archive") else str(path)
    return open_source(resolved, file_format=file_format, instrument_id=instrument_id)


@dataclass(frozen=True)
class JobRequest:
    """A checked backtest: where its data comes from and what runs on it."""

    source: Source
    source_spec: str
    strategy: str
    params: dict[str, str]
    selection: Selection
    commission: Decimal = Decimal(0)
    cash: Decimal = Decimal(10_000_000)
    mark_interval_ns: int = MARK_INTERVAL_NS
    file_format: DataFormat | None = None  # what a file source holds
    file_instrument: str | None = None  # the instrument a file source's rows are

    def document(self) -> str:
        """The request as JSON, all a restart needs to open it again."""
        sel = self.selection
        return json.dumps(
            {
                "source": self.source_spec,
                "format": None if self.file_format is None else self.file_format.value,
                "file_instrument": self.file_instrument,
                "strategy": self.strategy,
                "params": self.params,
                "start_ns": sel.start_ns,
                "end_ns": sel.end_ns,
                "instruments": list(sel.instruments),
                "venues": list(sel.venues),
                "commission": str(self.commission),
                "cash": str(self.cash),
                "mark_interval_ns": self.mark_interval_ns,
            }
        )

    @classmethod
    def reopened(cls, document: str, roots: Sequence[Path]) -> JobRequest:
        """A stored request, its source checked again against today's `roots`."""
        d = json.loads(document)
        file_format = None if d["format"] is None else DataFormat(d["format"])
        source = confined_source(d["source"], roots, file_format, d["file_instrument"])
        selection = Selection(d["start_ns"], d["end_ns"], tuple(d["instruments"]), tuple(d["venues"]))
        return cls(
            source,
            d["source"],
            d["strategy"],
            dict(d["params"]),
            selection,
            Decimal(d["commission"]),
            Decimal(d["cash"]),
            int(d["mark_interval_ns"]),
            file_format,
            d["file_instrument"],
        )


class Cancelled(Exception):  # noqa: N818 - a signal, not an error
    """Raised in the run's progress callback once the job is cancelled: the engine stops there."""


class Lost(Exception):  # noqa: N818 - a signal, not an error
    """The job's row is no longer this server's to write: taken over, or cancelled elsewhere."""


@dataclass
class Job:
    """One job as this server runs it."""

    job_id: str
    request: JobRequest
    status: JobStatus = JobStatus.QUEUED
    processed: int = 0
    total: int = 0
    reason: str = ""
    backtest_id: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    released: bool = False  # its server is stopping: left queued for the next one, not cancelled

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status.value,
            "processed": self.processed,
            "total": self.total,
            "reason": self.reason,
            "backtest_id": self.backtest_id,
        }


Listener = Callable[[Job], None]


class BacktestJobs:
    """At most `workers` backtests at once and `queued` more waiting; past that `submit` raises
    BusyError. Every change of status and every progress step is written to `backtest_jobs`;
    `listeners` are called (in the worker) after each. `roots` are the folders a source may be in
    and `modules` the strategy modules a job may load, for jobs submitted and jobs taken over."""

    def __init__(
        self,
        db: Engine,
        *,
        workers: int = 2,
        queued: int = 8,
        roots: Sequence[Path] = (),
        modules: Modules = (),
        lease_s: float = LEASE_S,
    ) -> None:
        self.db = db
        self.workers = workers
        self.capacity = workers + queued
        self.roots = tuple(roots)
        self.modules = modules
        self.lease_s = lease_s
        self.runner = uuid.uuid4().hex  # this server, in the rows of the jobs it runs
        self.listeners: list[Listener] = []
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False

    def job(self, job_id: str) -> Job | None:
        """A job of this server's (None: not one of this server's, or finished long ago)."""
        with self._lock:
            return self._jobs.get(job_id)

    def start(self) -> None:
        """Look for jobs no server runs any more (at once, then while any job is active)."""
        with self._lock:
            self._keep_watching()

    def submit(self, request: JobRequest, submitted_by: str) -> Job:
        with self._lock:
            if self._closed:
                raise BusyError("the server is stopping")
            active = self._active()
            if active >= self.capacity:
                raise BusyError(
                    f"{active} backtests are queued or running, the most this server takes; retry later"
                )
            job = Job(str(uuid.uuid4()), request)
            now = datetime.now(UTC)
            with self.db.begin() as conn:
                conn.execute(
                    insert(backtest_jobs).values(
                        job_id=job.job_id,
                        status=job.status.value,
                        reason="",
                        strategy=request.strategy,
                        params=json.dumps(request.params),
                        source=request.source_spec,
                        processed=0,
                        total=0,
                        backtest_id=None,
                        submitted_by=submitted_by,
                        submitted_at=now,
                        updated_at=now,
                        request=request.document(),
                        runner=self.runner,
                    )
                )
            self._enqueue(job)
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job of this server's (a running one stops at its next
        progress step); None if it is not one of this server's."""
        job = self.job(job_id)
        if job is None:
            return None
        job.cancel.set()
        with self._lock:
            queued = job.status is JobStatus.QUEUED
            if queued:
                job.status = JobStatus.CANCELLED
                job.reason = "cancelled before it started"
        if queued:
            with contextlib.suppress(Lost):  # taken over meanwhile: the other server runs it
                self._record(job)
        return job

    def close(self, timeout: float = 0) -> None:
        """Stop: this server's queued and running jobs are released (queued again, for the next
        server to run), the workers end (waiting at most `timeout` seconds for each)."""
        with self._lock:
            self._closed = True
            mine = [j for j in self._jobs.values() if j.status not in FINAL]
            for job in mine:
                job.released = True
                job.cancel.set()
        self._stop.set()
        with self.db.begin() as conn:
            conn.execute(
                update(backtest_jobs)
                .where(backtest_jobs.c.runner == self.runner, backtest_jobs.c.status.in_(ACTIVE))
                .values(status=JobStatus.QUEUED.value, processed=0, total=0, runner=None)
            )
        for _ in self._threads:
            self._queue.put(None)
        for thread in [*self._threads, *([self._keeper] if self._keeper else [])]:
            thread.join(timeout)

    def take_over(self) -> list[Job]:
        """Take the jobs no server runs: released ones, and those whose server has not beaten for
        `lease_s` (it died); each runs again from the start, as far as there is room. One stored
        without its request fails as interrupted. Returns the jobs taken."""
        stale = datetime.now(UTC) - timedelta(seconds=self.lease_s)
        orphaned = or_(backtest_jobs.c.runner.is_(None), backtest_jobs.c.updated_at < stale)
        c = backtest_jobs.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(c.job_id, c.runner, c.request)
                .where(c.status.in_(ACTIVE), orphaned)
                .order_by(c.submitted_at, c.job_id)
            ).all()
        taken: list[Job] = []
        unrunnable: list[tuple[str, str]] = []
        for job_id, runner, document in rows:
            with self._lock:
                if self._closed or self._active() >= self.capacity:
                    break
                claim = (
                    update(backtest_jobs)
                    .where(c.job_id == job_id, c.status.in_(ACTIVE), orphaned)
                    .where(c.runner.is_(None) if runner is None else c.runner == runner)
                    .values(
                        status=JobStatus.QUEUED.value,
                        reason="",
                        processed=0,
                        total=0,
                        backtest_id=None,
                        runner=self.runner,
                        updated_at=datetime.now(UTC),
                    )
                )
                with self.db.begin() as conn:
                    if conn.execute(claim).rowcount != 1:
                        continue  # another server took it first
                try:
                    if document is None:
                        raise ValueError("its request was not stored")
                    request = JobRequest.reopened(document, self.roots)
                except (ValueError, KeyError, MelticaError) as err:
                    unrunnable.append((job_id, f"{INTERRUPTED}; it cannot run again: {err}"[:2000]))
                    continue
                job = Job(job_id, request)
                self._enqueue(job)
                taken.append(job)
        for job_id, reason in unrunnable:
            log.warning("backtest job %s: %s", job_id, reason)
            with self.db.begin() as conn:
                conn.execute(
                    update(backtest_jobs)
                    .where(c.job_id == job_id, c.runner == self.runner, c.status.in_(ACTIVE))
                    .values(status=JobStatus.FAILED.value, reason=reason, updated_at=datetime.now(UTC))
                )
        for job in taken:
            log.info("backtest job %s: taken over, it runs again from the start", job.job_id)
        return taken

    def _active(self) -> int:
        return sum(1 for j in self._jobs.values() if j.status not in FINAL)

    def _enqueue(self, job: Job) -> None:
        """Queue `job` (holding the lock): workers and the keeper start as needed."""
        self._forget_finished()
        self._jobs[job.job_id] = job
        if len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, name="backtest-job", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._keep_watching()
        self._queue.put(job)

    def _keep_watching(self) -> None:
        """Start the keeper if it is not running (holding the lock)."""
        if self._keeper is None and not self._closed:
            self._keeper = threading.Thread(target=self._keep, name="backtest-keeper", daemon=True)
            self._keeper.start()

    def _keep(self) -> None:
        """Beat for this server's jobs and take over orphaned ones, every `lease_s / 3`; end once
        no job is active anywhere, or the database has failed a minute running while this
        server has no job (a submission starts it again)."""
        failures = 0
        while True:
            try:
                with self.db.begin() as conn:
                    conn.execute(
                        update(backtest_jobs)
                        .where(backtest_jobs.c.runner == self.runner, backtest_jobs.c.status.in_(ACTIVE))
                        .values(updated_at=datetime.now(UTC))
                    )
                self.take_over()
                with self.db.connect() as conn:
                    anywhere = (
                        conn.execute(
                            select(backtest_jobs.c.job_id).where(backtest_jobs.c.status.in_(ACTIVE)).limit(1)
                        ).first()
                        is not None
                    )
                failures = 0
            except Exception:  # the database is away: try again at the next beat, for a while
                log.exception("backtest jobs: the heartbeat failed")
                failures += 1
                anywhere = failures * self.lease_s / 3 < 60
            with self._lock:
                if self._closed or (not anywhere and self._active() == 0):
                    self._keeper = None
                    return
            if self._stop.wait(self.lease_s / 3):
                return

    def _forget_finished(self) -> None:
        """Keep at most 1,000 finished jobs in memory (the table keeps them all)."""
        finished = [k for k, j in self._jobs.items() if j.status in FINAL]
        for job_id in finished[: max(0, len(finished) - 1000)]:
            del self._jobs[job_id]

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.status is not JobStatus.QUEUED or job.released:
                    continue  # cancelled while queued (already recorded), or left for the next server
                job.status = JobStatus.RUNNING
            try:
                self._run(job)
            except Exception:  # recording the outcome failed (the database is down): the worker lives on
                log.exception("backtest job %s: its status could not be recorded", job.job_id)
                with self._lock:
                    if job.status not in FINAL:
                        job.status, job.reason = JobStatus.FAILED, "its status could not be recorded"

    def _set(self, job: Job, status: JobStatus, reason: str = "") -> None:
        with self._lock:
            job.status = status
            job.reason = reason
        self._record(job)

    def _record(self, job: Job) -> None:
        """Write the job's state, if its row is still this server's active job; else Lost."""
        c = backtest_jobs.c
        with self.db.begin() as conn:
            written = conn.execute(
                update(backtest_jobs)
                .where(c.job_id == job.job_id, c.runner == self.runner, c.status.in_(ACTIVE))
                .values(
                    status=job.status.value,
                    reason=job.reason,
                    processed=job.processed,
                    total=job.total,
                    backtest_id=job.backtest_id,
                    updated_at=datetime.now(UTC),
                )
            ).rowcount
        if written != 1:
            raise Lost
        for listener in self.listeners:
            listener(job)

    def _progress(self, job: Job, n: int) -> None:
        job.processed += n
        self._record(job)
        if job.cancel.is_set():
            raise Cancelled

    def _run(self, job: Job) -> None:
        try:
            self._record(job)
            try:
                outcome = self._backtest(job)
            except Cancelled:
                if job.released:
                    raise Lost from None
                self._set(job, JobStatus.CANCELLED, "cancelled while running")
            except (ValueError, ArithmeticError, MelticaError) as err:
                self._set(job, JobStatus.FAILED, str(err)[:2000])
            except Lost:
                raise
            except Exception as err:  # a bug: the job fails, the worker lives on
                log.exception("backtest job %s failed", job.job_id)
                self._set(job, JobStatus.FAILED, f"{type(err).__name__}: {err}"[:2000])
            else:
                self._set(job, JobStatus.FAILED if outcome else JobStatus.DONE, outcome)
        except Lost:  # released by close(), taken over or cancelled elsewhere: not ours to finish
            with self._lock:
                job.status, job.reason = JobStatus.CANCELLED, "no longer run by this server"
            log.info("backtest job %s: no longer run by this server", job.job_id)

    def _backtest(self, job: Job) -> str:
        """Run the job; returns why its strategies failed ("" when none did)."""
        request = job.request
        data = request.source.events(request.selection)
        if job.cancel.is_set():
            raise Cancelled
        if not data:
            raise ValueError(f"{request.source_spec} holds no market data for this selection")
        ids = list(request.selection.instruments) or list(dict.fromkeys(e.instrument_id for e in data))
        chosen = [build(request.strategy, iid, request.params, modules=self.modules) for iid in ids]
        if len(chosen) > 1:  # one instance per instrument, on one account: ids tell them apart
            chosen = [
                build(
                    request.strategy,
                    iid,
                    request.params,
                    strategy_id=f"{s.strategy_id}.{iid}",
                    modules=self.modules,
                )
                for s, iid in zip(chosen, ids, strict=True)
            ]
        job.total = len(data)
        self._record(job)
        result = run_backtest(
            data,
            [instrument_of(iid) for iid in ids],
            chosen,
            commission=request.commission,
            cash=request.cash,
            mark_interval_ns=request.mark_interval_ns,
            progress=lambda n: self._progress(job, n),
        )
        charted = [
            e
            for e in data
            if e.instrument_id == ids[0] and not isinstance(e, OrderBookDelta | OrderBookSnapshot)
        ]
        job.backtest_id = save(
            self.db,
            result,
            strategy=request.strategy,
            params=request.params,
            instrument_id=",".join(ids),
            source=request.source_spec,
            commission=request.commission,
            report=render(result, charted, f"{request.strategy} on {', '.join(ids)}"),
        )
        return "; ".join(result.failures)[:2000]
