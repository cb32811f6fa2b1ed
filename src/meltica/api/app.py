"""The FastAPI application: commands go into the log as events, queries read the projections.

`create_app` composes the middleware (body limit, audit trail, request counts), the problem+json
handlers, the key guard and one router per resource (`meltica.api.routes`); the routes reach the
app's services, clock and helpers through `meltica.api.deps`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from meltica import __version__, telemetry
from meltica.api import auth, problems, web
from meltica.api.audit import AuditTrail
from meltica.api.deps import AppParts, Reload, Services
from meltica.api.idempotency import Keys
from meltica.api.limits import BodyLimit
from meltica.api.observed import Observed
from meltica.api.routes import (
    admin,
    analytics,
    backtests,
    bars,
    health,
    orders,
    portfolio,
    reference,
    risk,
    strategies,
    streams,
    venues,
)
from meltica.api.stream_slots import StreamSlots
from meltica.api.waiting import OrderWaiter
from meltica.backtest.jobs import BacktestJobs
from meltica.clock import Clock, LiveClock
from meltica.events.envelope import order_id_for

__all__ = ["MAX_BODY", "Reload", "Services", "create_app", "order_id_for"]

MAX_BODY = 64 * 1024
ROUTERS = (
    health,
    orders,
    portfolio,
    analytics,
    reference,
    bars,
    streams,
    backtests,
    risk,
    venues,
    strategies,
    admin,
)
"""In the order of the OpenAPI document."""


def create_app(services: Services, clock: Clock | None = None) -> FastAPI:
    """The API over `services`; every timestamp it writes comes from `clock` (default: wall time)."""
    # Commands wait for the log at most `log_timeout`; audit records are written off the request path.
    services = dataclasses.replace(services, publisher=services.publisher.with_deadline(services.log_timeout))
    clock = clock or LiveClock()
    trail = AuditTrail(services.publisher)

    jobs = BacktestJobs(
        services.db,
        workers=services.backtest_workers,
        queued=services.backtest_queue,
        roots=services.replay_dirs,
        modules=services.strategy_modules,
    )
    jobs.start()  # jobs a stopped or killed server left queued or running run again here

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(jobs.close)
        await run_in_threadpool(trail.close)

    app = FastAPI(
        title="Meltica",
        version=__version__,
        description="Event-sourced order management and trading.",
        lifespan=lifespan,
        docs_url=None,  # `web` serves /docs and /redoc from vendored assets
        redoc_url=None,
    )
    app.state.services = services
    app.state.audit = trail
    app.state.parts = AppParts(
        services, clock, OrderWaiter(services.db), Keys(services.db), StreamSlots(), jobs
    )
    problems.install(app)
    auth.install(app, services.db, clock=clock)
    _middleware(app, trail, clock)
    for resource in ROUTERS:
        app.include_router(resource.router)
    web.install(app)  # /ui, /docs, /redoc, /v1/me
    return app


def _middleware(app: FastAPI, trail: AuditTrail, clock: Clock) -> None:
    requests = telemetry.meter().create_counter(
        "meltica_api_requests", description="REST API requests answered"
    )
    app.add_middleware(Observed, trail=trail, clock=clock, requests=requests)  # counts, audit trail
    app.add_middleware(BodyLimit, limit=MAX_BODY)  # the outermost: before anything reads a body
