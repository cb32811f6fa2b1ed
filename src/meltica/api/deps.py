"""What the routes depend on, each as one `Annotated` alias: the app's services (the command
publisher, the read-model database, the clock, the order waiter, ...) and the caller's key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine

from meltica.api.auth import AdminKey, ReadKey, TradeKey
from meltica.api.idempotency import Keys
from meltica.api.stream_slots import StreamSlots
from meltica.api.waiting import OrderWaiter
from meltica.backtest.jobs import BacktestJobs
from meltica.clock import Clock
from meltica.log.base import EventLog
from meltica.runtime.publisher import Publisher

__all__ = [
    "AdminKey",
    "AppParts",
    "AppServices",
    "Backtests",
    "Commands",
    "IdempotencyKeys",
    "Now",
    "ReadKey",
    "ReadModels",
    "Reload",
    "Services",
    "Streams",
    "TradeKey",
    "Waiter",
]

Reload = Callable[[str], dict[str, Any]]
"""The configuration file's reload, given the operator's name: what changed."""


@dataclass
class Services:
    """What the API needs: the log to write commands to, the read-model database."""

    log: EventLog
    publisher: Publisher
    db: Engine
    reload: Reload | None = None  # the configuration file's reload, where there is one
    log_timeout: float = 3.0  # seconds a call waits for the log before answering 503 log-unavailable
    replay_dirs: tuple[Path, ...] = ()  # folders a replay venue added over the API may read (none: no file)
    secret_dirs: tuple[
        Path, ...
    ] = ()  # folders a live venue's credential files named over the API must be in
    backtest_workers: int = 2  # backtest jobs run at once (`POST /v1/backtests`)
    backtest_queue: int = 8  # more that may wait; past that a submission is 503
    strategy_modules: tuple[str, ...] = ()  # module prefixes a `module:Class` strategy may come from
    bar_widths: tuple[str, ...] | None = None  # what the bar builder makes (None: not told)


@dataclass(frozen=True)
class AppParts:
    """One application's parts (`app.state.parts`): its services, clock and shared helpers."""

    services: Services
    clock: Clock
    waiter: OrderWaiter
    idempotency: Keys
    streams: StreamSlots
    backtests: BacktestJobs


async def _parts(request: Request) -> AppParts:
    parts: AppParts = request.app.state.parts
    return parts


_Parts = Annotated[AppParts, Depends(_parts)]


async def _services(parts: _Parts) -> Services:
    return parts.services


async def _db(parts: _Parts) -> Engine:
    return parts.services.db


async def _publisher(parts: _Parts) -> Publisher:
    return parts.services.publisher


async def _clock(parts: _Parts) -> Clock:
    return parts.clock


async def _waiter(parts: _Parts) -> OrderWaiter:
    return parts.waiter


async def _idempotency(parts: _Parts) -> Keys:
    return parts.idempotency


async def _streams(parts: _Parts) -> StreamSlots:
    return parts.streams


async def _backtests(parts: _Parts) -> BacktestJobs:
    return parts.backtests


AppServices = Annotated[Services, Depends(_services)]
ReadModels = Annotated[Engine, Depends(_db)]
"""The read-model database (read through `meltica.projections.queries`)."""
Commands = Annotated[Publisher, Depends(_publisher)]
"""Writes commands to the log (within the app's log deadline)."""
Now = Annotated[Clock, Depends(_clock)]
"""The app's one clock: every timestamp a command or audit record carries."""
Waiter = Annotated[OrderWaiter, Depends(_waiter)]
IdempotencyKeys = Annotated[Keys, Depends(_idempotency)]
Streams = Annotated[StreamSlots, Depends(_streams)]
Backtests = Annotated[BacktestJobs, Depends(_backtests)]
"""The backtest job runner (its worker threads, its jobs' progress and cancel flags)."""
