"""The FastAPI application: commands go into the log as events, queries read the projections."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine, Table, or_, select, text
from starlette.concurrency import run_in_threadpool

from meltica import __version__, telemetry
from meltica.api import admin_keys, auth, control, problems, web
from meltica.api.audit import AuditTrail
from meltica.api.auth import AdminKey, ReadKey, TradeKey
from meltica.api.control import Reload
from meltica.api.idempotency import Keys, terms
from meltica.api.keys import ApiKey
from meltica.api.limits import ARRIVED, BodyLimit
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Keyset, Limit
from meltica.api.problems import Problem, not_found
from meltica.api.schemas import (
    Accepted,
    AmendRequest,
    BulkRequest,
    CancelAllRequest,
    KillSwitchRequest,
    LimitsBody,
    OrderRequest,
    Page,
)
from meltica.api.stream import KINDS
from meltica.api.stream import events as sse_events
from meltica.api.stream_slots import StreamSlots
from meltica.api.waiting import OrderWaiter
from meltica.backtest.store import as_document as backtest_document
from meltica.clock import LiveClock
from meltica.domain.audit import ApiCallAudited
from meltica.domain.orders.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    SubmitOrder,
    SubmitOrderList,
)
from meltica.domain.orders.model import TERMINAL, OrderSpec
from meltica.domain.risk.events import ResetKillSwitch, TripKillSwitch
from meltica.domain.risk.limits import DEFAULT_LIMITS, RiskLimits
from meltica.domain.values import ContingencyType, RiskScope
from meltica.events.envelope import derive_event_id
from meltica.log.base import EventLog
from meltica.projections import tables as t
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, RISK_COMMANDS

MAX_BODY = 64 * 1024
WAIT_FOR = {
    "accepted": frozenset({"ACCEPTED", "SUBMITTED", "NEW", "PARTIALLY_FILLED", "FILLED", "TRIGGERED"}),
    "acknowledged": frozenset({"NEW", "PARTIALLY_FILLED", "FILLED"}),
    "filled": frozenset({"FILLED"}),
}


# The lists and their unique sort keys (oldest first where rows have a time).
ORDERS = Keyset("orders", (t.orders.c.ts_created, t.orders.c.order_id))
ORDER_EVENTS = Keyset(
    "order-events", (t.order_events.c.ts_event, t.order_events.c.offset, t.order_events.c.event_id)
)
FILLS = Keyset("fills", (t.fills.c.ts_event, t.fills.c.trade_id))
POSITIONS = Keyset("positions", (t.positions.c.account_id, t.positions.c.instrument_id))
BALANCES = Keyset("balances", (t.balances.c.account_id, t.balances.c.asset))
PNL = Keyset("pnl", (t.pnl.c.account_id, t.pnl.c.instrument_id))
INSTRUMENTS = Keyset("instruments", (t.instruments.c.instrument_id,))
RISK_EVENTS = Keyset("risk-events", (t.risk_events.c.ts_event, t.risk_events.c.event_id))
BACKTESTS = Keyset("backtests", (t.backtests.c.created_at, t.backtests.c.backtest_id))


@dataclass
class Services:
    """What the API needs: the log to write commands to, the read-model database."""

    log: EventLog
    publisher: Publisher
    db: Engine
    reload: Reload | None = None  # the configuration file's reload, where there is one
    log_timeout: float = 3.0  # seconds a call waits for the log before answering 503 log-unavailable
    replay_dirs: tuple[Path, ...] = ()  # folders a replay venue added over the API may read (none: no file)


def order_id_for(account_id: str, client_order_id: str) -> str:
    """Deterministic order id: resubmitting the same client order id is the same order."""
    return derive_event_id(f"order/{account_id}/{client_order_id}")


def backtest_summary(row: dict[str, Any]) -> dict[str, Any]:
    return backtest_document(row, with_equity=False)


def limits_json(limits: RiskLimits) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, int | tuple) else v)
        for k, v in dataclasses.asdict(limits).items()
    }


def _spec(body: OrderRequest, key: ApiKey, **links: Any) -> OrderSpec:
    client_id = body.client_order_id or derive_event_id(f"api/{key.key_id}/{secrets.token_hex(16)}")
    return OrderSpec(
        order_id=order_id_for(body.account_id, client_id),
        client_order_id=client_id,
        account_id=body.account_id,
        instrument_id=body.instrument_id,
        side=body.side,
        order_type=body.type,
        quantity=body.quantity,
        price=body.price,
        trigger_price=body.trigger_price,
        trigger_type=body.trigger_type,
        time_in_force=body.time_in_force,
        expire_time_ns=body.expire_time_ns,
        post_only=body.post_only,
        reduce_only=body.reduce_only,
        tags={"api_key": key.key_id},
        **links,
    )


def create_app(services: Services) -> FastAPI:
    # Commands wait for the log at most `log_timeout`; audit records are written off the request path.
    services = dataclasses.replace(services, publisher=services.publisher.with_deadline(services.log_timeout))
    trail = AuditTrail(services.publisher)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
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
    problems.install(app)
    auth.install(app, services.db)
    clock = LiveClock()
    waiter = OrderWaiter(services.db)
    stream_slots = StreamSlots()
    idempotency_keys = Keys(services.db)

    requests = telemetry.meter().create_counter(
        "meltica_api_requests", description="REST API requests answered"
    )

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.add(1, {"method": request.method, "route": path, "status": str(response.status_code)})
        return response

    @app.middleware("http")
    async def audit(request: Request, call_next: Any) -> Response:
        """State-changing calls with a valid key are recorded, with their outcome, in `audit.events`."""
        changes = request.method in ("POST", "PUT", "PATCH", "DELETE")
        body = await request.body() if changes else b""
        response: Response = await call_next(request)
        key: ApiKey | None = getattr(request.state, "api_key", None)
        if changes and key is not None:
            event = ApiCallAudited(
                key.key_id,
                key.name,
                request.method,
                request.url.path,
                response.status_code,
                hashlib.sha256(body).hexdigest(),
                request.client.host if request.client else "",
                clock.now_ns(),
            )
            trail.record(event)  # queued: the event loop never waits for the log
        return response

    app.add_middleware(BodyLimit, limit=MAX_BODY)  # the outermost: before anything reads a body

    def rows(
        table: Table, *where: Any, order_by: Any = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows for the API's own use (lookups, limits); lists answer pages (`pagination`)."""
        with services.db.connect() as conn:
            stmt = select(table).where(*where).limit(limit)
            if order_by is not None:
                stmt = stmt.order_by(*order_by)
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def order_row(order_id: str) -> dict[str, Any]:
        found = rows(t.orders, t.orders.c.order_id == order_id)
        if not found:
            raise not_found(f"order {order_id}")
        return found[0]

    def seen_order(order_id: str, key: ApiKey) -> dict[str, Any]:
        """The order, if `key` may see its account; else 404, as if it did not exist."""
        row = order_row(order_id)
        if not key.may_use(row["account_id"]):
            raise not_found(f"order {order_id}")
        return row

    # -- health -----------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, str]:
        try:
            deadline = services.publisher.deadline
            assert deadline is not None  # nosec B101 # typing; inside the readiness try
            deadline(services.log.topics, "the event log")
            with services.db.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as err:
            raise Problem(503, "not-ready", "Not ready", f"{type(err).__name__}: {err}") from err
        return {"status": "ready"}

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus() -> Response:
        """Metrics in the Prometheus text format, through OpenTelemetry."""
        return Response(telemetry.prometheus_text(), media_type="text/plain; version=0.0.4")

    # -- orders -----------------------------------------------------------------------------------
    @app.post("/v1/orders", status_code=202, tags=["orders"], response_model=Accepted)
    async def submit_order(
        request: Request,
        body: OrderRequest,
        response: Response,
        k: TradeKey,
        wait: Literal["accepted", "acknowledged", "filled"] | None = None,
        timeout: Annotated[float, Query(gt=0, le=10)] = 5.0,
    ) -> Accepted:
        """With `wait`, answers once the order reaches that status or closes, or at the latest
        `timeout` seconds after the request arrived, with its status so far."""
        order_id = await run_in_threadpool(submit, body, k)
        location = f"/v1/orders/{order_id}"
        response.headers["Location"] = location
        status = "PENDING_NEW"
        if wait is not None:
            left = request.scope.get(ARRIVED, time.monotonic()) + timeout - time.monotonic()
            status = await waiter.wait(order_id, WAIT_FOR[wait], left)
            if status == "DENIED":
                reason = (await run_in_threadpool(order_row, order_id)).get("reason")
                raise Problem(422, "risk-denied", "Denied by pre-trade risk", str(reason), order_id=order_id)
        return Accepted(order_id=order_id, status=status, location=location)

    def idempotent(spec: OrderSpec) -> None:
        """409 if the spec's client order id is an order submitted with another body."""
        differ = idempotency_keys.differences(spec.order_id, terms(spec))
        if differ:
            raise Problem(
                409,
                "conflict",
                "Idempotency key reused",
                f"client_order_id {spec.client_order_id} is order {spec.order_id}, "
                f"submitted with another {', '.join(differ)}",
                order_id=spec.order_id,
                fields=differ,
            )

    def submit(body: OrderRequest, k: ApiKey) -> str:
        """Check one order and write its SubmitOrder; its order id."""
        k.require_account(body.account_id)
        if not rows(t.instruments, t.instruments.c.instrument_id == body.instrument_id):
            raise Problem(
                422, "unknown-instrument", "Unknown instrument", f"{body.instrument_id} is not defined"
            )
        spec = _spec(body, k)
        problem = spec.problems()
        if problem:
            raise Problem(422, "validation", "Invalid order", problem)
        if body.client_order_id:
            idempotent(spec)
        services.publisher.publish(ORDER_COMMANDS, SubmitOrder(spec, clock.now_ns()))
        idempotency_keys.remember(spec.order_id, terms(spec))
        return spec.order_id

    @app.post("/v1/orders/bulk", status_code=202, tags=["orders"])
    def submit_bulk(body: BulkRequest, k: TradeKey) -> dict[str, Any]:
        """Several orders at once; OCO and BRACKET lists are accepted or denied as a whole."""
        accounts = {o.account_id for o in body.orders}
        for account in sorted(accounts):
            k.require_account(account)
        if len(accounts) != 1:
            raise Problem(422, "validation", "One account per list", "every order of a list has one account")
        given = Counter(o.client_order_id for o in body.orders if o.client_order_id)
        twice = sorted(c for c, n in given.items() if n > 1)
        if twice:
            raise Problem(
                422,
                "validation",
                "Duplicate client_order_id",
                f"client_order_id {', '.join(twice)} appears more than once in the request",
                client_order_ids=twice,
            )
        for o in body.orders:
            if not rows(t.instruments, t.instruments.c.instrument_id == o.instrument_id):
                raise Problem(
                    422, "unknown-instrument", "Unknown instrument", f"{o.instrument_id} is not defined"
                )
        plain = [_spec(o, k) for o in body.orders]
        ids = [s.order_id for s in plain]
        list_id = derive_event_id("list/" + "/".join(ids))
        if body.contingency == "OCO":
            specs = [
                dataclasses.replace(
                    s,
                    contingency_type=ContingencyType.OCO,
                    order_list_id=list_id,
                    linked_order_ids=tuple(i for i in ids if i != s.order_id),
                )
                for s in plain
            ]
        elif body.contingency == "BRACKET":
            if len(plain) != 3:
                raise Problem(422, "validation", "A bracket is three orders", "entry, take-profit, stop-loss")
            entry, tp, sl = plain
            specs = [
                dataclasses.replace(entry, contingency_type=ContingencyType.OTO, order_list_id=list_id),
                dataclasses.replace(
                    tp,
                    contingency_type=ContingencyType.OCO,
                    order_list_id=list_id,
                    parent_order_id=entry.order_id,
                    linked_order_ids=(sl.order_id,),
                ),
                dataclasses.replace(
                    sl,
                    contingency_type=ContingencyType.OCO,
                    order_list_id=list_id,
                    parent_order_id=entry.order_id,
                    linked_order_ids=(tp.order_id,),
                ),
            ]
        else:
            specs = plain
        for s in specs:
            if s.problems():
                raise Problem(422, "validation", "Invalid order", f"{s.client_order_id}: {s.problems()}")
        for s, o in zip(specs, body.orders, strict=True):
            if o.client_order_id:
                idempotent(s)
        services.publisher.publish(
            ORDER_COMMANDS, SubmitOrderList(list_id, accounts.pop(), tuple(specs), clock.now_ns())
        )
        for s in specs:
            idempotency_keys.remember(s.order_id, terms(s))
        return {"order_list_id": list_id, "order_ids": ids}

    @app.post("/v1/orders/cancel-all", status_code=202, tags=["orders"])
    def cancel_all(body: CancelAllRequest, k: TradeKey) -> dict[str, str]:
        k.require_account(body.account_id)
        services.publisher.publish(
            ORDER_COMMANDS, CancelAllOrders(body.account_id, clock.now_ns(), body.instrument_id, body.side)
        )
        return {"account_id": body.account_id, "status": "cancel-all requested"}

    @app.get("/v1/orders", tags=["orders"], response_model=Page)
    def list_orders(
        k: ReadKey,
        account_id: str | None = None,
        instrument_id: str | None = None,
        status: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page:
        where = [
            c
            for c in (
                t.orders.c.account_id == account_id if account_id else None,
                t.orders.c.instrument_id == instrument_id if instrument_id else None,
                t.orders.c.status == status.upper() if status else None,
            )
            if c is not None
        ]
        where += k.account_filter(t.orders.c.account_id)
        return ORDERS.page(services.db, t.orders, where, limit, cursor)

    @app.get("/v1/orders/{order_id}", tags=["orders"])
    def get_order(order_id: str, k: ReadKey) -> dict[str, Any]:
        return seen_order(order_id, k)

    @app.get("/v1/orders/{order_id}/events", tags=["orders"], response_model=Page)
    def order_events(order_id: str, k: ReadKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page:
        seen_order(order_id, k)
        return ORDER_EVENTS.page(
            services.db, t.order_events, [t.order_events.c.order_id == order_id], limit, cursor
        )

    @app.delete("/v1/orders/{order_id}", status_code=202, tags=["orders"])
    def cancel_order(order_id: str, k: TradeKey) -> dict[str, str]:
        row = seen_order(order_id, k)
        if row["status"] in TERMINAL:
            raise Problem(409, "conflict", "Order is closed", f"order {order_id} is {row['status']}")
        services.publisher.publish(
            ORDER_COMMANDS, CancelOrder(order_id, row["account_id"], row["instrument_id"], clock.now_ns())
        )
        return {"order_id": order_id, "status": "cancel requested"}

    @app.patch("/v1/orders/{order_id}", status_code=202, tags=["orders"])
    def amend_order(order_id: str, body: AmendRequest, k: TradeKey) -> dict[str, str]:
        row = seen_order(order_id, k)
        if row["status"] in TERMINAL:
            raise Problem(409, "conflict", "Order is closed", f"order {order_id} is {row['status']}")
        if body.quantity is None and body.price is None and body.trigger_price is None:
            raise Problem(422, "validation", "Nothing to amend", "give quantity, price or trigger_price")
        cmd = AmendOrder(
            order_id,
            row["account_id"],
            row["instrument_id"],
            clock.now_ns(),
            body.quantity,
            body.price,
            body.trigger_price,
        )
        services.publisher.publish(ORDER_COMMANDS, cmd)
        return {"order_id": order_id, "status": "amend requested"}

    # -- portfolio and reference data ---------------------------------------------------------------
    @app.get("/v1/fills", tags=["portfolio"], response_model=Page)
    def fills(
        k: ReadKey,
        account_id: str | None = None,
        order_id: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page:
        where = [
            c
            for c in (
                t.fills.c.account_id == account_id if account_id else None,
                t.fills.c.order_id == order_id if order_id else None,
            )
            if c is not None
        ]
        where += k.account_filter(t.fills.c.account_id)
        return FILLS.page(services.db, t.fills, where, limit, cursor)

    def per_account(
        keyset: Keyset, table: Table, k: ApiKey, account_id: str | None, limit: int, cursor: str | None
    ) -> Page:
        """A page of a per-account read model: the key's accounts, or the one asked for."""
        where = [
            *k.account_filter(table.c.account_id),
            *([table.c.account_id == account_id] if account_id else []),
        ]
        return keyset.page(services.db, table, where, limit, cursor)

    @app.get("/v1/positions", tags=["portfolio"], response_model=Page)
    def positions(
        k: ReadKey, account_id: str | None = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page:
        return per_account(POSITIONS, t.positions, k, account_id, limit, cursor)

    @app.get("/v1/balances", tags=["portfolio"], response_model=Page)
    def balances(
        k: ReadKey, account_id: str | None = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page:
        return per_account(BALANCES, t.balances, k, account_id, limit, cursor)

    @app.get("/v1/pnl", tags=["portfolio"], response_model=Page)
    def pnl(
        k: ReadKey, account_id: str | None = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page:
        return per_account(PNL, t.pnl, k, account_id, limit, cursor)

    @app.get("/v1/instruments", tags=["reference"], response_model=Page)
    def instruments(_: ReadKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page:
        return INSTRUMENTS.page(services.db, t.instruments, [], limit, cursor)

    # -- stream -----------------------------------------------------------------------------------
    @app.get("/v1/stream", tags=["stream"], response_class=StreamingResponse)
    async def stream(
        request: Request,
        key: ReadKey,
        account_id: str | None = None,
        kinds: Annotated[str, Query(description="Comma-separated: orders, portfolio.")] = "orders,portfolio",
        limit: Annotated[
            int | None, Query(ge=1, le=100_000, description="Close after this many events.")
        ] = None,
    ) -> StreamingResponse:
        """Order, fill, position and balance changes as Server-Sent Events, from now on."""
        asked = kinds.split(",")
        unknown = [k for k in asked if k not in KINDS]
        if unknown:
            raise Problem(
                422,
                "validation",
                "Unknown kinds",
                f"kinds is a comma-separated list of orders, portfolio; not {', '.join(unknown)[:200]}",
            )
        wanted = tuple(dict.fromkeys(KINDS[k] for k in asked))
        allowed = None if key.all_accounts else key.accounts
        alive = partial(auth.guard_of(request).keys.live, key.key_id)  # a revoked key's stream ends
        body = sse_events(services.log, services.publisher.codec, wanted, account_id, limit, allowed, alive)
        stream_slots.admit(key.key_id, body)  # 429 past the key's open streams
        return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # -- backtests --------------------------------------------------------------------------------
    @app.get("/v1/backtests", tags=["backtests"], response_model=Page)
    def list_backtests(
        _: ReadKey, strategy: str | None = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page:
        where = [t.backtests.c.strategy == strategy] if strategy else []
        return BACKTESTS.page(services.db, t.backtests, where, limit, cursor, backtest_summary)

    @app.get("/v1/backtests/{backtest_id}", tags=["backtests"])
    def get_backtest(backtest_id: str, _: ReadKey) -> dict[str, Any]:
        found = rows(t.backtests, t.backtests.c.backtest_id == backtest_id)
        if not found:
            raise not_found(f"backtest {backtest_id}")
        return backtest_document(found[0], with_equity=True)

    # -- risk -------------------------------------------------------------------------------------
    @app.get("/v1/risk/events", tags=["risk"], response_model=Page)
    def risk_events(k: ReadKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page:
        mine = k.account_filter(t.risk_events.c.scope_id)
        where = [or_(t.risk_events.c.scope != RiskScope.ACCOUNT.value, *mine)] if mine else []
        return RISK_EVENTS.page(services.db, t.risk_events, where, limit, cursor)

    @app.get("/v1/risk/limits", tags=["risk"])
    def risk_limits(k: ReadKey) -> list[dict[str, Any]]:
        """The limits in force per scope (the latest change of each), over the built-in defaults."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for e in rows(
            t.risk_events, t.risk_events.c.type == "RiskLimitsChanged", order_by=(t.risk_events.c.ts_event,)
        ):
            payload = json.loads(e["payload"])
            if payload["scope"] != RiskScope.ACCOUNT.value or k.may_use(payload["scope_id"]):
                latest[(payload["scope"], payload["scope_id"])] = payload
        defaults = {"scope": "DEFAULT", "scope_id": "", "limits": limits_json(DEFAULT_LIMITS)}
        return [defaults, *latest.values()]

    @app.put("/v1/risk/limits", status_code=202, tags=["risk"])
    def set_risk_limits(body: LimitsBody, k: AdminKey) -> dict[str, str]:
        cmd = body.command(k.name, clock.now_ns())
        services.publisher.publish(RISK_COMMANDS, cmd)
        return {"scope": body.scope, "scope_id": body.scope_id, "status": "limits change requested"}

    @app.post("/v1/risk/kill-switch", status_code=202, tags=["risk"])
    def kill_switch(body: KillSwitchRequest, k: AdminKey) -> dict[str, str]:
        scope_, scope_id = (RiskScope.ACCOUNT, body.account_id) if body.account_id else (RiskScope.GLOBAL, "")
        now = clock.now_ns()
        cmd: Any = (
            TripKillSwitch(scope_, scope_id, body.reason, k.name, now)
            if body.action == "trip"
            else ResetKillSwitch(scope_, scope_id, k.name, now)
        )
        services.publisher.publish(RISK_COMMANDS, cmd)
        return {"kill_switch": body.action, "scope": scope_.value, "scope_id": scope_id}

    app.include_router(control.router(services.publisher, services.db, services.reload, services.replay_dirs))
    app.include_router(admin_keys.router())
    web.install(app)  # /ui, /docs, /redoc, /v1/me
    return app
