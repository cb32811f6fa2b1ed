"""`meltica config`: validate and show the configuration (YAML file under `MELTICA_*` variables)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console

from meltica.config import SECRETS, Settings, load_settings
from meltica.config_file import CONFIG_PATH_ENV, ConfigFileError

config_app = typer.Typer(help="The configuration: YAML file (--config) under MELTICA_* variables.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML configuration file (default: MELTICA_CONFIG_PATH)."),
]


def use_config(path: Path | None) -> None:
    """Make `path` the configuration file of this process (and of the processes it starts)."""
    if path is not None:
        os.environ[CONFIG_PATH_ENV] = str(path)


def mask(value: Any) -> Any:
    """A secret with its secret part hidden: a URL keeps scheme, host and path, but not credentials."""
    if not isinstance(value, str) or not value:
        return value
    parts = urlsplit(value)
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        netloc = (f"{parts.username}:***@" if parts.password else "") + host
        netloc += f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return "***"


def shown(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready data, secrets masked."""
    data: dict[str, Any] = json.loads(settings.model_dump_json())
    for key in SECRETS:
        data[key] = mask(data.get(key))
    return data


def _load(config: Path | None) -> Settings:
    use_config(config)
    try:
        return load_settings()
    except ConfigFileError as error:
        err.print(f"[red]{error}[/red]", highlight=False, markup=False)
        raise typer.Exit(2) from None


@config_app.command("check")
def check(config: ConfigOption = None) -> None:
    """Validate the configuration; every problem is listed with its key and file line."""
    settings = _load(config)
    source = os.environ.get(CONFIG_PATH_ENV) or "environment only (no --config file)"
    out.print(
        f"configuration OK: {source} — {len(settings.venues)} venues, {len(settings.strategies)} "
        f"strategies, {len(settings.risk)} risk limit scopes, {len(settings.instruments)} instruments"
    )


@config_app.command("show")
def show(config: ConfigOption = None) -> None:
    """Print the effective configuration as JSON (secrets masked)."""
    out.print_json(json.dumps(shown(_load(config))))
