"""Commands that write to the log as a client or operator would: orders, deposits, kill switch."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console

from meltica.api.numbers import parse_decimal
from meltica.bootstrap import build
from meltica.cli.rest import ORDER_COLUMNS, JsonFlag, LimitOption, call, items, show
from meltica.config import Settings
from meltica.domain.amounts import amount_problem
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.values import OrderSide, OrderType, TimeInForce
from meltica.errors import MelticaError
from meltica.topics import PORTFOLIO_COMMANDS

orders_app = typer.Typer(
    help="Submit, cancel and amend orders (as commands in the log).", no_args_is_help=True
)
risk_app = typer.Typer(help="Operator controls of pre-trade risk.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


COUNT_LIMITS = frozenset(
    {"throttle_burst", "max_open_orders", "circuit_breaker_breaches", "circuit_breaker_window_ns"}
)


def _decimal(value: str | None, what: str, *, positive: bool = True) -> Decimal | None:
    if value is None:
        return None
    try:
        parsed = parse_decimal(value)  # the API's one decimal syntax
    except ValueError as error:
        raise typer.BadParameter(f"{what}: {error}") from None
    if positive and parsed <= 0:
        raise typer.BadParameter(f"{what} must be a positive number, got {value!r}")
    return parsed


def _publish(topic: str, event: object) -> None:
    try:
        app = build(Settings(), create_topics=True)
    except MelticaError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    try:
        app.publisher.publish(topic, event)
    finally:
        app.close()


def _now() -> int:
    from meltica.clock import LiveClock

    return LiveClock().now_ns()


@orders_app.command("submit")
def submit(
    instrument: Annotated[str, typer.Option(help="Instrument id, SYMBOL.VENUE.")],
    side: Annotated[OrderSide, typer.Option(case_sensitive=False)],
    quantity: Annotated[str, typer.Option(help="Decimal quantity.")],
    price: Annotated[str | None, typer.Option(help="Limit price.")] = None,
    order_type: Annotated[OrderType, typer.Option("--type", case_sensitive=False)] = OrderType.LIMIT,
    trigger_price: Annotated[str | None, typer.Option(help="Stop trigger price.")] = None,
    trailing_offset: Annotated[
        str | None, typer.Option(help="Trailing stop: the trigger's distance from the best price, in price.")
    ] = None,
    trailing_bps: Annotated[
        str | None, typer.Option(help="Trailing stop: the same distance in basis points (below 10000).")
    ] = None,
    limit_offset: Annotated[
        str | None, typer.Option(help="Trailing stop-limit: the limit's distance from the fired trigger.")
    ] = None,
    activation_price: Annotated[
        str | None, typer.Option(help="Trailing stop: start trailing once the market reaches this price.")
    ] = None,
    display_quantity: Annotated[
        str | None, typer.Option(help="Iceberg: the quantity shown at a time (below the quantity).")
    ] = None,
    tif: Annotated[TimeInForce, typer.Option(case_sensitive=False)] = TimeInForce.GTC,
    account: Annotated[str, typer.Option(help="Account id.")] = "DEMO",
    client_order_id: Annotated[str | None, typer.Option(help="Idempotency key (default: new).")] = None,
    wait: Annotated[str | None, typer.Option(help="accepted, acknowledged or filled.")] = None,
    wait_timeout: Annotated[
        float | None,
        typer.Option(help="With --wait: answer within this many seconds (API default 5, at most 10)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Submit an order through the REST API; risk decides, the venue executes."""
    qty = _decimal(quantity, "quantity")
    body: dict[str, object] = {
        "account_id": account,
        "instrument_id": instrument,
        "side": side.value,
        "type": order_type.value,
        "quantity": str(qty),
        "time_in_force": tif.value,
    }
    if trailing_offset is not None and trailing_bps is not None:
        raise typer.BadParameter("give --trailing-offset or --trailing-bps, not both")
    if trailing_bps is not None:
        body["trailing_offset_type"] = "BASIS_POINTS"
    for name, value in (
        ("price", price),
        ("trigger_price", trigger_price),
        ("trailing_offset", trailing_offset if trailing_bps is None else trailing_bps),
        ("activation_price", activation_price),
        ("display_quantity", display_quantity),
    ):
        if value is not None:
            body[name] = str(_decimal(value, name.replace("_", " ")))
    if limit_offset is not None:
        body["limit_offset"] = str(_decimal(limit_offset, "limit offset", positive=False))
    if client_order_id:
        body["client_order_id"] = client_order_id
    params: dict[str, object] = {}
    if wait:
        params["wait"] = wait
        if wait_timeout is not None:
            params["timeout"] = wait_timeout
    elif wait_timeout is not None:
        raise typer.BadParameter("--wait-timeout goes with --wait")
    result = call("POST", "/v1/orders", body=body, params=params or None)
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"order [bold]{result['order_id']}[/bold]: {result['status']}")


@orders_app.command("cancel")
def cancel(order_id: str) -> None:
    """Ask to cancel an open order."""
    call("DELETE", f"/v1/orders/{order_id}")
    out.print(f"cancel requested for [bold]{order_id}[/bold]")


@orders_app.command("amend")
def amend(
    order_id: str,
    quantity: Annotated[str | None, typer.Option()] = None,
    price: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Ask to change the quantity or price of an open order."""
    if quantity is None and price is None:
        raise typer.BadParameter("give --quantity and/or --price")
    body = {k: str(_decimal(v, k)) for k, v in (("quantity", quantity), ("price", price)) if v is not None}
    call("PATCH", f"/v1/orders/{order_id}", body=body)
    out.print(f"amend requested for [bold]{order_id}[/bold]")


@orders_app.command("list")
def list_orders(
    account: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    parent: Annotated[str | None, typer.Option(help="Only the children of this order.")] = None,
    limit: LimitOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Orders from the read model, oldest first."""
    query = {"account_id": account, "status": status, "parent_order_id": parent}
    show(items("/v1/orders", query, limit), as_json, ORDER_COLUMNS)


@orders_app.command("show")
def show_order(order_id: str, as_json: JsonFlag = False) -> None:
    """One order and its audit trail."""
    order = call("GET", f"/v1/orders/{order_id}")
    events = items(f"/v1/orders/{order_id}/events")
    if as_json:
        print(json.dumps({"order": order, "events": events}))
        return
    show(order, False, ORDER_COLUMNS)
    if order.get("parent_order_id"):
        out.print(f"parent: {order['parent_order_id']}", soft_wrap=True)
    if order.get("child_order_ids"):
        out.print(f"children: {', '.join(order['child_order_ids'])}", soft_wrap=True)
    show(events, False, ("ts_event", "type", "payload"))


def positions(
    account: Annotated[str | None, typer.Option()] = None,
    limit: LimitOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Positions per account and instrument."""
    rows = items("/v1/positions", {"account_id": account}, limit)
    show(
        rows,
        as_json,
        (
            "account_id",
            "instrument_id",
            "side",
            "quantity",
            "avg_px",
            "realized_pnl",
            "unrealized_pnl",
            "fees",
            "mark_px",
        ),
    )


def pnl(
    account: Annotated[str | None, typer.Option()] = None,
    limit: LimitOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Marked PnL and equity per account and instrument."""
    rows = items("/v1/pnl", {"account_id": account}, limit)
    show(
        rows,
        as_json,
        (
            "account_id",
            "instrument_id",
            "realized_pnl",
            "unrealized_pnl",
            "fees",
            "equity",
            "currency",
            "mark_px",
        ),
    )


def balances(
    account: Annotated[str | None, typer.Option()] = None,
    limit: LimitOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Balances per account and asset, free and locked."""
    rows = items("/v1/balances", {"account_id": account}, limit)
    show(rows, as_json, ("account_id", "asset", "total", "free", "locked"))


def deposit(
    account: str,
    asset: str,
    amount: str,
) -> None:
    """Credit (or, negative, debit) an asset to an account."""
    delta = _decimal(amount, "amount", positive=False)
    assert delta is not None  # nosec B101 # typing; amount is required
    problem = amount_problem(delta)  # the portfolio would refuse it; say so before writing it
    if problem:
        raise typer.BadParameter(f"amount: {problem}")
    _publish(
        PORTFOLIO_COMMANDS,
        AdjustBalance(account, asset, delta, "deposit" if delta > 0 else "withdrawal", _now()),
    )
    out.print(  # the portfolio may still refuse it (a total it cannot hold exactly): say so
        f"{account}: {delta:+f} {asset} submitted; the portfolio applies it unless the new balance "
        "cannot be held exactly; check with `meltica balances`"
    )


@risk_app.command("kill-switch")
def kill_switch(
    action: Annotated[str, typer.Argument(help="trip or reset")],
    account: Annotated[str | None, typer.Option(help="Only this account (default: everything).")] = None,
    reason: Annotated[str, typer.Option()] = "operator",
) -> None:
    """Trip the kill switch (halts trading and cancels open orders) or reset it. Needs an admin key."""
    if action not in ("trip", "reset"):
        raise typer.BadParameter("action is trip or reset")
    body: dict[str, object] = {"action": action, "reason": reason}
    if account:
        body["account_id"] = account
    call("POST", "/v1/risk/kill-switch", body=body)
    out.print(f"kill switch {action} sent for {account or 'all accounts'}")


@risk_app.command("events")
def risk_events(limit: LimitOption = None, as_json: JsonFlag = False) -> None:
    """Limit changes, trading-state changes and kill switches."""
    show(items("/v1/risk/events", limit=limit), as_json, ("ts_event", "type", "scope", "scope_id", "payload"))


@risk_app.command("limits")
def risk_limits(
    scope: Annotated[
        str | None, typer.Option(help="Set limits of this scope: GLOBAL, ACCOUNT, PORTFOLIO, INSTRUMENT.")
    ] = None,
    scope_id: Annotated[str, typer.Option(help="Account, portfolio or instrument id of the scope.")] = "",
    limit: Annotated[
        list[str] | None, typer.Option("--set", help="name=value, e.g. max_position=5 (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the limits in force, or change the limits of a scope (admin key)."""
    if scope is None:
        rows = call("GET", "/v1/risk/limits")
        if as_json:
            print(json.dumps(rows))
            return
        for row in rows:
            shown = {k: v for k, v in row["limits"].items() if v is not None}
            out.print(f"[bold]{row['scope']}[/bold] {row['scope_id']}: {shown}")
        return
    body: dict[str, object] = {"scope": scope.upper(), "scope_id": scope_id}
    for item in limit or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set takes name=value, got {item!r}")
        name, value = name.strip(), value.strip()
        # counts travel as JSON integers, decimals as strings (the API's one decimal syntax)
        body[name] = int(value) if name in COUNT_LIMITS and value.isascii() and value.isdigit() else value
    call("PUT", "/v1/risk/limits", body=body)
    out.print(f"limits change sent for {scope.upper()} {scope_id}")
