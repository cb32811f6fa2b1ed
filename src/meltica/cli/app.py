"""`meltica`: inspect the event log, create topics, check schemas, migrate, run dev services."""

from __future__ import annotations

import json
import logging
import os
import subprocess  # nosec B404 # runs the bundled dev scripts only
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from meltica import __version__, structured_logs
from meltica.bootstrap import build, build_log
from meltica.cli.backtest import backtest_app
from meltica.cli.cluster import cluster_app
from meltica.cli.config import ConfigOption, config_app, use_config
from meltica.cli.control import reload_config, strategies_app, venues_app
from meltica.cli.data import data_app
from meltica.cli.feeds import feed_app
from meltica.cli.run import run
from meltica.cli.snapshot import snapshot_app
from meltica.cli.trading import balances, deposit, orders_app, pnl, positions, risk_app
from meltica.cli.up import up
from meltica.config import Settings, load_settings
from meltica.config_file import CONFIG_PATH_ENV, ConfigFileError
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import json_default
from meltica.log.base import Record
from meltica.resources import resource_dir
from meltica.topics import TOPICS, topic_specs

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(help="Meltica: an event-sourced order management and trading system.", no_args_is_help=True)
topics_app = typer.Typer(help="Topics of the event log.", no_args_is_help=True)
schemas_app = typer.Typer(help="The Avro contract.", no_args_is_help=True)
db_app = typer.Typer(help="Read-model database.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the REST API.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models.", no_args_is_help=True)
dev_app = typer.Typer(help="Local Kafka and PostgreSQL for development and tests.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(db_app, name="db")
app.add_typer(dev_app, name="dev")
app.add_typer(keys_app, name="keys")
app.add_typer(projections_app, name="projections")
app.add_typer(orders_app, name="orders")
app.add_typer(risk_app, name="risk")
app.add_typer(feed_app, name="feed")
app.add_typer(backtest_app, name="backtest")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(venues_app, name="venues")
app.add_typer(strategies_app, name="strategies")
app.add_typer(cluster_app, name="cluster")
config_app.command("reload")(reload_config)


@app.callback()
def main(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Meltica: an event-sourced order management and trading system."""
    use_config(config)
    if os.environ.get(CONFIG_PATH_ENV):
        try:
            load_settings()  # a bad file stops every command up front, naming key and line
        except ConfigFileError as error:
            err.print(str(error), highlight=False, markup=False)
            raise typer.Exit(2) from None
    _configure_logs(ctx.invoked_subcommand)


def _configure_logs(command: str | None) -> None:
    """Every entry point's logs, in MELTICA_LOG_FORMAT; services log INFO, one-shot commands WARNING."""
    try:
        log_format = load_settings().log_format
    except (ValidationError, ConfigFileError):  # the command itself reports bad settings
        log_format = "json" if os.environ.get("MELTICA_LOG_FORMAT") == "json" else "text"
    service = os.environ.get("OTEL_SERVICE_NAME") or command or "meltica"
    level = logging.INFO if command in ("run", "up") else logging.WARNING
    structured_logs.configure(log_format, service, level)


app.command()(up)
app.command()(run)
app.command()(deposit)
app.command()(positions)
app.command()(pnl)
app.command()(balances)

out = Console()
err = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(error: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {error}")
    return typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def info(as_json: JsonFlag = False) -> None:
    """Show the configuration and every topic with its partitions and records."""
    settings = Settings()
    try:
        log = build_log(settings)
    except MelticaError as e:
        raise _fail(e) from e
    with log:
        rows = [
            (name, n, sum(log.end_offset(name, p) for p in range(n)))
            for name, n in sorted(log.topics().items())
        ]
    if as_json:
        doc = {
            "version": __version__,
            "log_backend": settings.log_backend,
            "log": str(settings.log_path) if settings.log_backend == "sqlite" else settings.kafka_bootstrap,
            "topics": [{"name": n, "partitions": p, "records": r} for n, p, r in rows],
        }
        out.print_json(data=doc)
        return
    where = settings.log_path if settings.log_backend == "sqlite" else settings.kafka_bootstrap or "memory"
    out.print(f"Meltica {__version__} — log backend [bold]{settings.log_backend}[/bold] at {where}")
    table = Table("topic", "partitions", "records")
    for name, n, records in rows:
        table.add_row(name, str(n), str(records))
    out.print(table)


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(help="Partitions per topic (default from settings).")
    ] = None,
) -> None:
    """Create every topic of the system and its dead-letter topic (idempotent)."""
    settings = Settings()
    try:
        with build_log(settings) as log:
            for spec in topic_specs(partitions or settings.partitions):
                log.create_topic(spec)
    except MelticaError as e:
        raise _fail(e) from e
    out.print(f"{len(TOPICS)} topics and their dead-letter topics are ready.")


@topics_app.command("terraform")
def topics_terraform(
    acls: Annotated[
        bool, typer.Option("--acls", help="The services' ACLs and quotas (acls.tf.json) instead.")
    ] = False,
) -> None:
    """Print the topics as Terraform (deploy/terraform/topics.tf.json is this output)."""
    from meltica.deploy.terraform import render, render_acls

    typer.echo(render_acls() if acls else render(), nl=False)


@topics_app.command("list")
def topics_list() -> None:
    """The topics the system uses, with their keys and contents."""
    table = Table("topic", "key", "holds")
    for t in TOPICS:
        table.add_row(t.name, t.key, t.doc)
    out.print(table)


@app.command()
def tail(
    topic: str,
    partition: Annotated[int | None, typer.Option(help="Only this partition.")] = None,
    offset: Annotated[int, typer.Option("--from", help="First offset to show.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many records per partition and read.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records until Ctrl-C.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Decode and print events of a topic; records that do not decode are shown as errors."""
    settings = Settings()
    try:
        application = build(settings, create_topics=False)
    except MelticaError as e:
        raise _fail(e) from e
    with application.log as log:
        try:
            parts = [partition] if partition is not None else list(range(log.partitions(topic)))
        except MelticaError as e:
            raise _fail(e) from e
        positions = dict.fromkeys(parts, offset)
        while True:
            records = [r for p in parts for r in log.read(topic, p, positions[p], limit)]
            for rec in sorted(records, key=lambda r: (r.seq, r.partition, r.offset)):
                positions[rec.partition] = rec.offset + 1
                _print_record(application.codec, rec, as_json)
            if not follow:
                return
            try:
                time.sleep(0.5)
            except KeyboardInterrupt:
                return


def _print_record(codec: Codec, rec: Record, as_json: bool) -> None:
    try:
        name, fields = codec.decode_record(rec)
    except MelticaError as e:
        doc = {"partition": rec.partition, "offset": rec.offset, "error": str(e)}
    else:
        doc = {"partition": rec.partition, "offset": rec.offset, "type": name, "event": fields}
    if as_json:
        print(json.dumps(doc, default=json_default), flush=True)
    else:
        out.print(doc)


@schemas_app.command("list")
def schemas_list() -> None:
    """Every schema of the contract with its fingerprint."""
    from meltica.events.catalog import default_catalog

    table = Table("schema", "kind", "fingerprint")
    for entry in default_catalog().entries():
        kind = "event" if entry.is_event else entry.schema["type"]
        table.add_row(entry.name, kind, entry.fingerprint.hex())
    out.print(table)


@schemas_app.command("check")
def schemas_check() -> None:
    """Register this build's schemas with the log's registry; fails on an incompatible change."""
    try:
        application = build(Settings(), create_topics=False)
        application.close()
    except MelticaError as e:
        raise _fail(e) from e
    out.print("schemas are compatible with every version registered in the log")


def _keys_db() -> Engine:
    """The read-model database (migrated), where the keys are."""
    from sqlalchemy import create_engine

    from meltica.projections.migrations import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.read_model_url)
    return create_engine(settings.read_model_url)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, trade, admin.")] = "read,trade",
    accounts: Annotated[
        str | None, typer.Option(help="Comma-separated accounts the key may act on and read.")
    ] = None,
    all_accounts: Annotated[
        bool, typer.Option("--all-accounts", help="A trade key that may act on every account.")
    ] = False,
    expires: Annotated[str | None, typer.Option(help="Expiry: 2027-01-01 or an ISO time (UTC).")] = None,
    ttl: Annotated[str | None, typer.Option(help="Time to live instead: 90m, 12h, 30d, 2w.")] = None,
    rate: Annotated[str | None, typer.Option(help="This key's rate for every scope, e.g. 50/s.")] = None,
) -> None:
    """Create an API key; it is printed once and stored only as a hash. A key that may trade names
    its accounts (--accounts) or --all-accounts; admin keys act on every account."""
    from meltica.api.keys import check_scopes, choose_accounts, create_key, parse_expiry
    from meltica.api.ratelimit import parse_rate

    try:
        chosen = check_scopes(scopes.split(","))
        bound = choose_accounts(chosen, accounts.split(",") if accounts else None, all_accounts)
        secret = create_key(
            _keys_db(),
            name,
            chosen,
            bound,
            parse_expiry(expires, ttl),
            None if rate is None else parse_rate(rate),
        )
    except ValueError as e:
        raise _fail(e) from e
    out.print(secret, highlight=False, soft_wrap=True)


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """Every key: name, prefix, scopes, accounts, created, last used, expiry (never a secret)."""
    from meltica.api.keys import list_keys

    docs = [k.document() for k in list_keys(_keys_db())]
    if as_json:
        print(json.dumps(docs))
        return
    table = Table("name", "prefix", "scopes", "accounts", "rate", "created", "last used", "expires", "state")
    for d in docs:
        accounts = d["accounts"] if isinstance(d["accounts"], str) else ",".join(d["accounts"])
        state = "revoked" if d["revoked"] else "active"
        if d["previous_valid_until"]:
            state += f" (old secret until {d['previous_valid_until'][:19]})"
        table.add_row(
            d["name"],
            d["prefix"],
            ",".join(d["scopes"]),
            accounts,
            d["rate"] or "",
            d["created_at"][:19],
            (d["last_used_at"] or "never")[:19],
            (d["expires_at"] or "never")[:19],
            state,
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's name or id.")]) -> None:
    """Revoke a key: a running API refuses it (401) within its key cache time (about a second)."""
    from meltica.api.keys import KeyNotFoundError, revoke_key

    try:
        record = revoke_key(_keys_db(), key)
    except KeyNotFoundError as e:
        raise _fail(e) from e
    out.print(f"revoked {record.name} ({record.key_id})")


@keys_app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="The key's name or id.")],
    overlap: Annotated[str, typer.Option(help="How long the old secret still works: 0s, 15m, 1h.")] = "0s",
) -> None:
    """A new secret for the key (printed once); the old one keeps working for --overlap."""
    from meltica.api.keys import KeyNotFoundError, parse_duration, rotate_key

    try:
        secret = rotate_key(_keys_db(), key, parse_duration(overlap))
    except (KeyNotFoundError, ValueError) as e:
        raise _fail(e) from e
    out.print(secret, highlight=False, soft_wrap=True)


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Empty the read models and project the whole log again."""
    from meltica.log.single_writer import WriterLock

    settings = Settings()
    try:
        lock = WriterLock(settings.data_dir, "projections rebuild").acquire()  # not under a running `up`
    except MelticaError as e:
        raise _fail(e) from None
    with lock:
        application = build(settings, create_topics=False)
        n = application.projector(application.read_models(settings.read_model_url)).rebuild()
        application.close()
    out.print(f"projected {n} records")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the read-model database (MELTICA_DATABASE_URL, else SQLite in the data directory)."""
    from meltica.projections.migrations import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.read_model_url, revision)
    out.print(f"read models at revision {revision}")


def _script(name: str) -> Path:
    return resource_dir("scripts", "scripts") / name


@dev_app.command("kafka")
def dev_kafka(
    action: Annotated[
        str, typer.Argument(help="install, start, stop, status, sasl-bootstrap or sasl-password-file")
    ],
) -> None:
    """Single-node KRaft Kafka from Maven Central jars (needs Java 17+ and Maven)."""
    raise typer.Exit(subprocess.call(["bash", str(_script("kafka.sh")), action]))  # nosec B603 B607 # bundled script


@dev_app.command("postgres")
def dev_postgres(action: Annotated[str, typer.Argument(help="install, start, stop or status")]) -> None:
    """PostgreSQL from Debian's packages (needs root or sudo)."""
    raise typer.Exit(subprocess.call(["bash", str(_script("postgres.sh")), action]))  # nosec B603 B607 # bundled script
