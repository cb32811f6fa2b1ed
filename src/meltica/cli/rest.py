"""CLI commands that talk to the REST API of a running `meltica up` (MELTICA_API_URL, MELTICA_API_KEY)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from meltica.config import Settings

out = Console()
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="At most this many (default: every one, page by page).")
]
PAGE = 500  # items per request when following a list's cursors (the API's largest page)


def call(
    method: str, path: str, *, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
) -> Any:
    """One API call; problems and connection errors become one readable line and exit 1."""
    settings = Settings()
    if not settings.api_key:
        err.print("[red]error:[/red] set MELTICA_API_KEY (`meltica keys create --name me --accounts DEMO`)")
        raise typer.Exit(1)
    try:
        r = httpx.request(
            method,
            settings.api_url + path,
            json=body,
            params=params,
            timeout=15,
            headers={"X-API-Key": settings.api_key},
        )
    except httpx.HTTPError as e:
        err.print(
            f"[red]error:[/red] cannot reach the API at {settings.api_url} ({e}); is `meltica up` running?"
        )
        raise typer.Exit(1) from e
    if r.status_code >= 400:
        try:
            problem = r.json()
            message = f"{problem.get('title')}: {problem.get('detail', '')}"
            if problem.get("errors"):
                message += " — " + "; ".join(f"{e['field']}: {e['message']}" for e in problem["errors"])
        except ValueError:
            message = r.text
        err.print(f"[red]error {r.status_code}:[/red] {message}")
        raise typer.Exit(1)
    return r.json()


def items(path: str, params: dict[str, Any] | None = None, limit: int | None = None) -> list[Any]:
    """Every item of a paged list, following `next_cursor` to the end (or the first `limit`)."""
    query = {k: v for k, v in (params or {}).items() if v is not None}
    found: list[Any] = []
    while limit is None or len(found) < limit:
        query["limit"] = PAGE if limit is None else min(PAGE, limit - len(found))
        page = call("GET", path, params=query)
        found += page["items"]
        if not page.get("next_cursor"):
            break
        query["cursor"] = page["next_cursor"]
    return found


def show(rows: Any, as_json: bool, columns: tuple[str, ...]) -> None:
    """Rows as a table for people, or JSON for scripts."""
    if as_json:
        print(json.dumps(rows))
        return
    items = rows if isinstance(rows, list) else [rows]
    table = Table(*columns)
    for row in items:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


ORDER_COLUMNS = (
    "order_id",
    "account_id",
    "instrument_id",
    "side",
    "order_type",
    "quantity",
    "price",
    "status",
    "filled_qty",
    "avg_px",
)
