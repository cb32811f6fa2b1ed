"""`/v1/orders`: submit (one, or a list), cancel, amend, and read orders and their events."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from meltica.api.deps import Commands, IdempotencyKeys, Now, ReadKey, ReadModels, TradeKey, Waiter
from meltica.api.idempotency import Keys, terms
from meltica.api.keys import ApiKey
from meltica.api.limits import ARRIVED
from meltica.api.order_lists import linked, list_id_of
from meltica.api.order_specs import lot_problem, spec_of
from meltica.api.pagination import DEFAULT_LIMIT, Cursor, Limit, after, page
from meltica.api.problems import Problem, not_found
from meltica.api.schemas import Accepted, AmendRequest, BulkRequest, CancelAllRequest, OrderRequest, Page
from meltica.api.waiting import OrderWaiter
from meltica.clock import Clock
from meltica.domain.orders.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    SubmitOrder,
    SubmitOrderList,
)
from meltica.domain.orders.model import TERMINAL, OrderSpec, OrderStatus
from meltica.projections import queries
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS

S = OrderStatus
WAIT_FOR = {
    "accepted": frozenset({S.ACCEPTED, S.SUBMITTED, S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.TRIGGERED}),
    "acknowledged": frozenset({S.NEW, S.PARTIALLY_FILLED, S.FILLED}),
    "filled": frozenset({S.FILLED}),
}
"""`?wait=`: the statuses each choice waits for (a terminal status ends every wait)."""

router = APIRouter(tags=["orders"])


READ_YOUR_WRITES_S = 2.0
"""How long a read waits for the read models to show what an order's committed events say."""


def seen_order(db: Engine, order_id: str, key: ApiKey, waiter: OrderWaiter | None = None) -> dict[str, Any]:
    """The order, if `key` may see its account; else 404, as if it did not exist. With the
    `waiter`: when the committed events say more than the read models show yet (a `?wait=` answered
    from the events a moment ago), the read waits for the projection, briefly: read your writes."""
    row = queries.order(db, order_id)
    committed = waiter.status(order_id) if waiter is not None else None
    deadline = time.monotonic() + READ_YOUR_WRITES_S
    while (
        committed is not None and (row is None or row["status"] != committed) and time.monotonic() < deadline
    ):
        time.sleep(0.005)
        row = queries.order(db, order_id)
    if row is None or not key.may_use(row["account_id"]):
        raise not_found(f"order {order_id}")
    return row


def open_order(db: Engine, order_id: str, key: ApiKey, waiter: OrderWaiter) -> dict[str, Any]:
    """The order, if `key` may see it and it is not closed (else 404 or 409); one acknowledged
    a moment ago that the read models do not show yet is known to the waiter."""
    row = queries.order(db, order_id) or waiter.order(order_id)
    if row is None or not key.may_use(row["account_id"]):
        raise not_found(f"order {order_id}")
    if row["status"] in TERMINAL:
        raise Problem(409, "conflict", "Order is closed", f"order {order_id} is {row['status']}")
    return row


def defined(db: Engine, instrument_id: str) -> None:
    if not queries.instrument_defined(db, instrument_id):
        raise Problem(422, "unknown-instrument", "Unknown instrument", f"{instrument_id} is not defined")


def idempotent(keys: Keys, spec: OrderSpec) -> None:
    """409 if the spec's client order id is an order submitted with another body."""
    differ = keys.differences(spec.order_id, terms(spec))
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


def submit(body: OrderRequest, k: ApiKey, db: Engine, commands: Publisher, keys: Keys, clock: Clock) -> str:
    """Check one order and write its SubmitOrder; its order id."""
    k.require_account(body.account_id)
    defined(db, body.instrument_id)
    spec = spec_of(body, k)
    problem = spec.problems() or lot_problem(db, spec)
    if problem:
        raise Problem(422, "validation", "Invalid order", problem)
    if body.client_order_id:
        idempotent(keys, spec)
    commands.publish(ORDER_COMMANDS, SubmitOrder(spec, clock.now_ns()))
    keys.remember(spec.order_id, terms(spec))
    return spec.order_id


@router.post("/v1/orders", status_code=202, response_model=Accepted)
async def submit_order(
    request: Request,
    body: OrderRequest,
    response: Response,
    k: TradeKey,
    db: ReadModels,
    commands: Commands,
    keys: IdempotencyKeys,
    clock: Now,
    waiter: Waiter,
    wait: Literal["accepted", "acknowledged", "filled"] | None = None,
    timeout: Annotated[float, Query(gt=0, le=10)] = 5.0,
) -> Accepted:
    """With `wait`, answers once the order reaches that status or closes, or at the latest
    `timeout` seconds after the request arrived, with its status so far."""
    order_id = await run_in_threadpool(submit, body, k, db, commands, keys, clock)
    location = f"/v1/orders/{order_id}"
    response.headers["Location"] = location
    status: str = OrderStatus.PENDING_NEW.value
    if wait is not None:
        left = request.scope.get(ARRIVED, time.monotonic()) + timeout - time.monotonic()
        status = await waiter.wait(order_id, WAIT_FOR[wait], left)
        if status == OrderStatus.DENIED:
            reason = waiter.denial(order_id)
            if reason is None:  # denied before this process saw it: the read models know why
                row = await run_in_threadpool(queries.order, db, order_id)
                if row is None:
                    raise not_found(f"order {order_id}")
                reason = row.get("reason")
            raise Problem(422, "risk-denied", "Denied by pre-trade risk", str(reason), order_id=order_id)
    return Accepted(order_id=order_id, status=status, location=location)


@router.post("/v1/orders/bulk", status_code=202)
def submit_bulk(
    body: BulkRequest, k: TradeKey, db: ReadModels, commands: Commands, keys: IdempotencyKeys, clock: Now
) -> dict[str, Any]:
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
        defined(db, o.instrument_id)
    plain = [spec_of(o, k) for o in body.orders]
    ids = [s.order_id for s in plain]
    list_id = list_id_of(ids)
    specs = linked(plain, body.contingency, list_id)
    for s in specs:
        problem = s.problems() or lot_problem(db, s)
        if problem:
            raise Problem(422, "validation", "Invalid order", f"{s.client_order_id}: {problem}")
    for s, o in zip(specs, body.orders, strict=True):
        if o.client_order_id:
            idempotent(keys, s)
    commands.publish(ORDER_COMMANDS, SubmitOrderList(list_id, accounts.pop(), tuple(specs), clock.now_ns()))
    for s in specs:
        keys.remember(s.order_id, terms(s))
    return {"order_list_id": list_id, "order_ids": ids}


@router.post("/v1/orders/cancel-all", status_code=202)
def cancel_all(body: CancelAllRequest, k: TradeKey, commands: Commands, clock: Now) -> dict[str, str]:
    k.require_account(body.account_id)
    commands.publish(
        ORDER_COMMANDS, CancelAllOrders(body.account_id, clock.now_ns(), body.instrument_id, body.side)
    )
    return {"account_id": body.account_id, "status": "cancel-all requested"}


@router.get("/v1/orders", response_model=Page)
def list_orders(
    k: ReadKey,
    db: ReadModels,
    account_id: str | None = None,
    instrument_id: str | None = None,
    status: str | None = None,
    parent_order_id: Annotated[
        str | None,
        Query(max_length=128, description="Only the children of this order (OTO children, routed slices)."),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    """Orders, oldest first; each carries `parent_order_id` (null for an order without a parent)."""
    found = queries.orders(
        db,
        limit=limit,
        after=after(queries.ORDERS, cursor),
        accounts=k.visible,
        account_id=account_id,
        instrument_id=instrument_id,
        status=status.upper() if status else None,
        parent_order_id=parent_order_id,
    )
    return page(queries.ORDERS, found)


@router.get("/v1/orders/{order_id}")
def get_order(order_id: str, k: ReadKey, db: ReadModels, waiter: Waiter) -> dict[str, Any]:
    """The order, with its `parent_order_id` (null for none) and `child_order_ids`: the orders
    whose parent it is, oldest first (empty for none)."""
    row = seen_order(db, order_id, k, waiter)
    return {**row, "child_order_ids": queries.child_order_ids(db, row)}


@router.get("/v1/orders/{order_id}/events", response_model=Page)
def order_events(
    order_id: str,
    k: ReadKey,
    db: ReadModels,
    waiter: Waiter,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page:
    seen_order(db, order_id, k, waiter)
    found = queries.order_events(db, order_id, limit=limit, after=after(queries.ORDER_EVENTS, cursor))
    return page(queries.ORDER_EVENTS, found)


@router.delete("/v1/orders/{order_id}", status_code=202)
def cancel_order(
    order_id: str, k: TradeKey, db: ReadModels, commands: Commands, clock: Now, waiter: Waiter
) -> dict[str, str]:
    row = open_order(db, order_id, k, waiter)
    commands.publish(
        ORDER_COMMANDS, CancelOrder(order_id, row["account_id"], row["instrument_id"], clock.now_ns())
    )
    return {"order_id": order_id, "status": "cancel requested"}


@router.patch("/v1/orders/{order_id}", status_code=202)
def amend_order(
    order_id: str,
    body: AmendRequest,
    k: TradeKey,
    db: ReadModels,
    commands: Commands,
    clock: Now,
    waiter: Waiter,
) -> dict[str, str]:
    row = open_order(db, order_id, k, waiter)
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
    commands.publish(ORDER_COMMANDS, cmd)
    return {"order_id": order_id, "status": "amend requested"}
