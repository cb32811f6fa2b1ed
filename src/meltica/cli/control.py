"""`meltica venues`, `meltica strategies`, `meltica config reload`: the control plane over the REST API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from meltica.cli.rest import JsonFlag, LimitOption, call, items, show

venues_app = typer.Typer(help="Venue and market-data connections (the venue registry).", no_args_is_help=True)
strategies_app = typer.Typer(
    help="Strategy instances: create, reconfigure, start, stop.", no_args_is_help=True
)
out = Console()

VENUE_COLUMNS = (
    "venue",
    "adapter",
    "state",
    "reason",
    "received",
    "published",
    "duplicates",
    "gaps",
    "resyncs",
)
STRATEGY_COLUMNS = ("strategy_id", "kind", "account_id", "instrument_id", "state", "reason", "params")
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value (repeatable).")]


def _params(raw: list[str] | None) -> dict[str, str]:
    params = {}
    for item in raw or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected name=value, got {item!r}")
        params[name] = value
    return params


def _done(answer: dict[str, str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer))
    else:
        out.print(" ".join(answer.values()))


@venues_app.command("list")
def list_venues(limit: LimitOption = None, as_json: JsonFlag = False) -> None:
    """Each connection with its state, the reason, and its market-data counters."""
    rows = items("/v1/venues", limit=limit)
    show(
        rows if as_json else [{**r, "params": json.dumps(r["params"])} for r in rows], as_json, VENUE_COLUMNS
    )


@venues_app.command("add")
def add_venue(
    name: Annotated[str, typer.Argument(help="Connection name (several may share one adapter).")],
    adapter: Annotated[str, typer.Argument(help="synthetic, replay or binance (GET /v1/venues/adapters).")],
    param: Params = None,
    start: Annotated[bool, typer.Option(help="Connect at once.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Add a connection (admin key)."""
    body = {"name": name, "adapter": adapter, "params": _params(param), "start": start}
    _done(call("POST", "/v1/venues", body=body), as_json)


@venues_app.command("update")
def update_venue(name: str, param: Params = None, as_json: JsonFlag = False) -> None:
    """Change parameters; a running connection restarts with them (admin key)."""
    _done(call("PATCH", f"/v1/venues/{name}", body={"params": _params(param)}), as_json)


@strategies_app.command("list")
def list_strategies(limit: LimitOption = None, as_json: JsonFlag = False) -> None:
    """Each strategy instance with its state and parameters."""
    rows = items("/v1/strategies", limit=limit)
    show(
        rows if as_json else [{**r, "params": json.dumps(r["params"])} for r in rows],
        as_json,
        STRATEGY_COLUMNS,
    )


@strategies_app.command("catalog")
def strategy_catalog(as_json: JsonFlag = False) -> None:
    """The strategies one can create, with their parameters and defaults."""
    found = call("GET", "/v1/strategies/catalog")
    rows = [
        {"kind": k, "params": ", ".join(f"{p}={d or '(required)'}" for p, d in v.items())}
        for k, v in found.items()
    ]
    show(found if as_json else rows, as_json, ("kind", "params"))


@strategies_app.command("create")
def create_strategy(
    strategy_id: Annotated[str, typer.Argument(help="Name of the instance.")],
    kind: Annotated[str, typer.Argument(help="Catalog name (meltica strategies catalog).")],
    account: Annotated[str, typer.Option(help="The account it trades.")],
    instrument: Annotated[str, typer.Option(help="The instrument it trades, SYMBOL.VENUE.")],
    param: Params = None,
    start: Annotated[bool, typer.Option(help="Start it at once.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Create a strategy instance (trade key)."""
    body = {
        "strategy_id": strategy_id,
        "kind": kind,
        "account_id": account,
        "instrument_id": instrument,
        "params": _params(param),
        "start": start,
    }
    _done(call("POST", "/v1/strategies", body=body), as_json)


@strategies_app.command("update")
def update_strategy(strategy_id: str, param: Params = None, as_json: JsonFlag = False) -> None:
    """Change parameters (the others keep their values)."""
    _done(call("PATCH", f"/v1/strategies/{strategy_id}", body={"params": _params(param)}), as_json)


LIFECYCLE = {
    "start": ("POST", "/start", "Start {it}: a stopped or failed {noun} runs again."),
    "stop": ("POST", "/stop", "Stop {it} ({noun} stays declared; `start` resumes it)."),
    "remove": ("DELETE", "", "Stop and remove {it}."),
}


def _lifecycle(app: typer.Typer, noun: str, collection: str) -> None:
    """`start`, `stop` and `remove` commands of one kind of thing."""

    def command_for(method: str, suffix: str, doc: str) -> Callable[..., None]:
        def command(name: str, as_json: JsonFlag = False) -> None:
            _done(call(method, f"{collection}/{name}{suffix}"), as_json)

        command.__doc__ = doc.format(it=f"a {noun}", noun=noun)
        return command

    for action, (method, suffix, doc) in LIFECYCLE.items():
        app.command(action)(command_for(method, suffix, doc))


_lifecycle(venues_app, "venue", "/v1/venues")
_lifecycle(strategies_app, "strategy", "/v1/strategies")


def reload_config(as_json: JsonFlag = False) -> None:
    """Ask the running Meltica to reload its configuration file (admin key; like SIGHUP)."""
    report = call("POST", "/v1/admin/reload")
    if as_json:
        print(json.dumps(report))
        return
    out.print(f"applied: {', '.join(report['applied']) or 'nothing (no changes)'}")
    if report["restart_required"]:
        out.print(f"[yellow]needs a restart (not applied):[/yellow] {', '.join(report['restart_required'])}")
