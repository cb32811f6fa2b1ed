"""Commands that write to the log as a client or operator would: orders, deposits, kill switch."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.console import Console

from meltica.bootstrap import build
from meltica.config import Settings
from meltica.domain.orders.commands import AmendOrder, CancelOrder, SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.risk.events import ResetKillSwitch, TripKillSwitch
from meltica.domain.values import OrderSide, OrderType, RiskScope, TimeInForce
from meltica.errors import MelticaError
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, PORTFOLIO_COMMANDS, RISK_COMMANDS

orders_app = typer.Typer(
    help="Submit, cancel and amend orders (as commands in the log).", no_args_is_help=True
)
risk_app = typer.Typer(help="Operator controls of pre-trade risk.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _decimal(value: str | None, what: str, *, positive: bool = True) -> Decimal | None:
    if value is None:
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{what} must be a decimal number, got {value!r}") from None
    if not parsed.is_finite() or (positive and parsed <= 0):
        raise typer.BadParameter(f"{what} must be a positive number, got {value!r}")
    return parsed


def _publish(topic: str, event: object) -> None:
    try:
        app = build(Settings(), create_topics=True)
    except MelticaError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    try:
        Publisher(app.log, app.codec).publish(topic, event)
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
    tif: Annotated[TimeInForce, typer.Option(case_sensitive=False)] = TimeInForce.GTC,
    account: Annotated[str, typer.Option(help="Account id.")] = "DEMO",
    client_order_id: Annotated[str | None, typer.Option(help="Idempotency key (default: new).")] = None,
) -> None:
    """Submit an order: risk decides, the venue executes; follow it with `meltica tail orders.events`."""
    client_id = client_order_id or f"cli-{uuid.uuid4().hex[:12]}"
    qty = _decimal(quantity, "quantity")
    assert qty is not None
    spec = OrderSpec(
        order_id=client_id,
        client_order_id=client_id,
        account_id=account,
        instrument_id=instrument,
        side=side,
        order_type=order_type,
        quantity=qty,
        price=_decimal(price, "price"),
        trigger_price=_decimal(trigger_price, "trigger price"),
        time_in_force=tif,
    )
    problem = spec.problems()
    if problem:
        raise typer.BadParameter(problem)
    _publish(ORDER_COMMANDS, SubmitOrder(spec, _now()))
    out.print(f"submitted order [bold]{spec.order_id}[/bold]")


@orders_app.command("cancel")
def cancel(
    order_id: str,
    instrument: Annotated[str, typer.Option(help="Instrument id of the order.")],
    account: Annotated[str, typer.Option()] = "DEMO",
) -> None:
    """Ask to cancel an open order."""
    _publish(ORDER_COMMANDS, CancelOrder(order_id, account, instrument, _now()))
    out.print(f"cancel requested for [bold]{order_id}[/bold]")


@orders_app.command("amend")
def amend(
    order_id: str,
    instrument: Annotated[str, typer.Option(help="Instrument id of the order.")],
    quantity: Annotated[str | None, typer.Option()] = None,
    price: Annotated[str | None, typer.Option()] = None,
    account: Annotated[str, typer.Option()] = "DEMO",
) -> None:
    """Ask to change the quantity or price of an open order."""
    if quantity is None and price is None:
        raise typer.BadParameter("give --quantity and/or --price")
    cmd = AmendOrder(
        order_id, account, instrument, _now(), _decimal(quantity, "quantity"), _decimal(price, "price")
    )
    _publish(ORDER_COMMANDS, cmd)
    out.print(f"amend requested for [bold]{order_id}[/bold]")


def deposit(
    account: str,
    asset: str,
    amount: str,
) -> None:
    """Credit (or, negative, debit) an asset to an account."""
    delta = _decimal(amount, "amount", positive=False)
    assert delta is not None
    _publish(
        PORTFOLIO_COMMANDS,
        AdjustBalance(account, asset, delta, "deposit" if delta > 0 else "withdrawal", _now()),
    )
    out.print(f"{account}: {delta:+} {asset}")


@risk_app.command("kill-switch")
def kill_switch(
    action: Annotated[str, typer.Argument(help="trip or reset")],
    account: Annotated[str | None, typer.Option(help="Only this account (default: everything).")] = None,
    reason: Annotated[str, typer.Option()] = "operator",
    operator: Annotated[str, typer.Option()] = "cli",
) -> None:
    """Trip the kill switch (halts trading and cancels open orders) or reset it."""
    scope, scope_id = (RiskScope.ACCOUNT, account) if account else (RiskScope.GLOBAL, "")
    if action == "trip":
        _publish(RISK_COMMANDS, TripKillSwitch(scope, scope_id, reason, operator, _now()))
    elif action == "reset":
        _publish(RISK_COMMANDS, ResetKillSwitch(scope, scope_id, operator, _now()))
    else:
        raise typer.BadParameter("action is trip or reset")
    out.print(f"kill switch {action} sent for {scope_id or 'all accounts'}")
