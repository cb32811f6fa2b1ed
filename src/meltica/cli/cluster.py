"""`meltica cluster`: every service of the distributed shape on one machine, supervised.

Each service is a `meltica run` child process under a stable `--instance` name (a static group
member, so a restarted service takes its partitions back at once) with its own health port. A
child that exits is started again after a delay (1 s, doubling to 30 s; back to 1 s once it has
run for a minute). SIGTERM or SIGINT stops every child with SIGTERM (SIGKILL after a grace
period) and then the cluster. `meltica cluster seed` (run by `meltica cluster` first) defines the
demo instruments, limits, funds and market once, as `meltica up` does on its first start.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404 # starts `meltica run` children
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from meltica.config import Settings, load_settings

out = Console(stderr=True, soft_wrap=True)

SERVICES = (
    "risk",
    "orders",
    "venue",
    "router",
    "portfolio",
    "strategies",
    "bars",
    "projector",
    "api",
    "venues",
)
KNOWN = (*SERVICES, "pipeline")  # the fused shape: --service pipeline --service bars ... instead
# Started once the others are ready: market data is what makes the demo strategy trade, and its
# first orders must find the funds applied (else risk denies them and trips the kill switch).
LATER = ("strategies", "venues")
LATER_AFTER_S = 120.0  # ... or after this long, ready or not
NEEDS_DATABASE = ("projector", "api")
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_S = 60.0  # a child that ran this long restarts after the first delay again
GRACE_S = 30.0  # SIGTERM, then this long before SIGKILL

cluster_app = typer.Typer(
    help="Every service of the distributed shape on this machine, restarted when one exits."
)


@dataclass
class Child:
    """One supervised service."""

    service: str
    args: list[str]
    health_port: int | None
    proc: subprocess.Popen[bytes] | None = None
    state: str = "stopped"
    restarts: int = 0
    started_at: float = 0.0
    delay: float = FIRST_DELAY_S
    restart_at: float | None = None
    ready: bool = False
    later: bool = False  # started once the other children are ready


@dataclass
class Supervisor:
    """Starts the children, restarts those that exit, stops them all on request."""

    children: list[Child]
    env: dict[str, str]
    log_dir: Path | None = None
    report: Callable[[str], None] = field(default=lambda line: out.print(line, highlight=False))
    _began: float = field(default=0.0, init=False)

    def start(self) -> None:
        self._began = time.monotonic()
        for child in self.children:
            if not child.later:
                self._spawn(child)

    def _start_later(self) -> None:
        waiting = [c for c in self.children if c.later and c.proc is None and c.state == "stopped"]
        first = [c for c in self.children if not c.later]
        if waiting and (all(c.ready for c in first) or time.monotonic() - self._began > LATER_AFTER_S):
            for child in waiting:
                self._spawn(child)

    def _spawn(self, child: Child) -> None:
        stream: int | IO[bytes] = subprocess.PIPE
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stream = (self.log_dir / f"{child.service}.log").open("ab")
        child.proc = subprocess.Popen(  # nosec B603 # argv of our own services, no shell
            _command(child.args),
            env=self.env,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops the children in turn
        )
        if self.log_dir is not None and not isinstance(stream, int):
            stream.close()
        else:
            threading.Thread(target=self._forward, args=(child, child.proc), daemon=True).start()
        child.started_at = time.monotonic()
        child.restart_at = None
        child.ready = False
        self._set(child, "starting", f"pid {child.proc.pid}")

    def _forward(self, child: Child, proc: subprocess.Popen[bytes]) -> None:
        """The child's output, each line prefixed with its name."""
        assert proc.stdout is not None  # nosec B101 # typing; spawned with PIPE
        for raw in proc.stdout:
            sys.stderr.write(f"{child.service:>10} | {raw.decode(errors='replace')}")

    def _set(self, child: Child, state: str, detail: str = "") -> None:
        if child.state != state:
            child.state = state
            self.report(f"cluster: {child.service:<10} {state}{f' ({detail})' if detail else ''}")

    def check(self) -> None:
        """Start the later children when the others are ready; restart what exited (after its
        delay); note readiness."""
        self._start_later()
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is not None and (code := proc.poll()) is not None:
                child.proc = None
                if now - child.started_at >= STABLE_S:
                    child.delay = FIRST_DELAY_S
                child.restart_at = now + child.delay
                self._set(child, "exited", f"status {code}; restarting in {child.delay:.0f} s")
                child.delay = min(MAX_DELAY_S, child.delay * 2)
            elif child.proc is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
            elif proc is not None:
                ready = _answers(child.health_port)
                if ready != child.ready:
                    child.ready = ready
                    self._set(child, "ready" if ready else "running", f"pid {proc.pid}")

    def stop(self) -> None:
        """SIGTERM to every child; SIGKILL to any still running after the grace period."""
        running = [c for c in self.children if c.proc is not None]
        for child in running:
            assert child.proc is not None  # nosec B101 # typing; filtered above
            child.proc.send_signal(signal.SIGTERM)
            self._set(child, "stopping")
        deadline = time.monotonic() + GRACE_S
        for child in running:
            assert child.proc is not None  # nosec B101 # typing; filtered above
            try:
                code = child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                code = child.proc.wait()
            child.proc = None
            self._set(child, "stopped", f"status {code}")

    def run(self, stop: threading.Event, every_s: float = 0.5) -> None:
        self.start()
        try:
            while not stop.wait(every_s):
                self.check()
        finally:
            self.stop()

    def table(self) -> str:
        return "\n".join(
            f"  {c.service:<10} {c.state:<9} restarts {c.restarts}"
            + (f"  health http://127.0.0.1:{c.health_port}/readyz" if c.health_port else "")
            for c in self.children
        )


# On Linux a child is started through this, which asks the kernel for SIGTERM when its parent
# (the supervisor) dies, even by SIGKILL, before it becomes `meltica`: no service outlives it.
_LAUNCH = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(0)  # the supervisor is gone already\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'meltica', *sys.argv[2:]])"
)


def _command(args: list[str]) -> list[str]:
    """`meltica ARGS` as a child's command line (tied to this process's life on Linux)."""
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", _LAUNCH, str(os.getpid()), *args]
    return [sys.executable, "-m", "meltica", *args]


def _answers(port: int | None) -> bool:
    if port is None:
        return True
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:  # nosec B310 # fixed http URL
            return int(response.status) == 200
    except OSError:
        return False


def children(
    settings: Settings, *, services: list[str], health_base: int, prefix: str, demo: bool
) -> list[Child]:
    """The `meltica run` arguments of each service, with its instance name and health port."""
    out_: list[Child] = []
    for i, service in enumerate(services):
        args = ["run", service, "--instance", f"{prefix}-{service}"]
        port: int | None = None
        if service == "api":
            port = settings.api_port
        else:
            port = health_base + i
            args += ["--health-port", str(port)]
        if service in ("strategies", "pipeline") and demo:
            args.append("--demo")
        out_.append(Child(service, args, port, later=service in LATER))
    return out_


def seed(settings: Settings) -> list[str]:
    """On an empty log: the demo instruments, limits, funds and market of `meltica up`; what it did."""
    from meltica.bootstrap import build
    from meltica.domain.risk.limits import RiskLimits
    from meltica.seeding import seed_demo, seed_market

    app = build(settings)
    try:
        clock, publisher = app.clock, app.publisher
        # as `meltica up`, and more open orders: here a cancel takes several hops to complete, so
        # the demo's resting orders outnumber the default 6 for a moment (3 breaches trip the kill
        # switch)
        demo = RiskLimits(throttle_rate=Decimal(50), throttle_burst=20, max_open_orders=50)
        done = seed_demo(app.log, publisher, clock, "seed", demo)
        params = {"seed": "7", "tick_ms": "500"}
        if not settings.venues and seed_market(app.log, publisher, clock, "seed", params):
            done.append("venue sim (synthetic market)")
    finally:
        app.close()
    return done


def _kafka_settings() -> Settings:
    settings = load_settings()
    if not settings.kafka_bootstrap:
        out.print(
            "[red]error:[/red] the cluster needs MELTICA_KAFKA_BOOTSTRAP (or kafka_bootstrap in the file)"
        )
        raise typer.Exit(2)
    return settings.model_copy(update={"log_backend": "kafka"})


@cluster_app.command("seed")
def seed_command() -> None:
    """Define the demo instruments, set limits, fund DEMO and add the `sim` market, on an empty log."""
    settings = _kafka_settings()
    try:
        done = seed(settings)
    except Exception as err:  # the cluster is not there: say so, without a traceback
        out.print(f"[red]error:[/red] cannot seed the log on {settings.kafka_bootstrap}: {err}")
        raise typer.Exit(1) from err
    out.print(f"seeded: {'; '.join(done)}" if done else "nothing to seed: the log has instruments already")


@cluster_app.callback(invoke_without_command=True)
def cluster(
    ctx: typer.Context,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="Run only these services (repeatable).")
    ] = None,
    health_base: Annotated[
        int, typer.Option(help="Health port of the first service; the others follow it.")
    ] = 9101,
    prefix: Annotated[str, typer.Option(help="Instance names are PREFIX-SERVICE.")] = "cluster",
    demo: Annotated[bool, typer.Option(help="Run the demo strategy in the strategies service.")] = True,
    seed_log: Annotated[bool, typer.Option("--seed/--no-seed", help="Seed an empty log first.")] = True,
    log_dir: Annotated[
        Path | None, typer.Option(help="Write each service's output to DIR/SERVICE.log (default: here).")
    ] = None,
) -> None:
    """Run every service (risk, orders, venue, router, portfolio, strategies, bars, projector, api, venues)
    as child processes on MELTICA_KAFKA_BOOTSTRAP and MELTICA_DATABASE_URL; Ctrl-C stops them all."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _kafka_settings()
    services = list(service or SERVICES)
    unknown = [s for s in services if s not in KNOWN]
    if unknown:
        raise typer.BadParameter(f"unknown services {unknown}; of {', '.join(KNOWN)}")
    fused = set(services) & {"risk", "orders", "venue", "router", "portfolio", "strategies"}
    if "pipeline" in services and fused:
        raise typer.BadParameter(f"pipeline already runs {', '.join(sorted(fused))}: name one or the other")
    if not settings.database_url and any(s in NEEDS_DATABASE for s in services):
        out.print("[red]error:[/red] the projector and the API need MELTICA_DATABASE_URL")
        raise typer.Exit(2)
    if settings.database_url and any(s in NEEDS_DATABASE for s in services):
        from meltica.projections import migrations

        migrations.upgrade(settings.database_url)
    if seed_log:
        try:
            done = seed(settings)
        except Exception as err:  # the cluster is not there: say so, without a traceback
            out.print(f"[red]error:[/red] cannot seed the log on {settings.kafka_bootstrap}: {err}")
            raise typer.Exit(1) from err
        out.print(f"cluster: seeded {'; '.join(done)}" if done else "cluster: the log is seeded already")
    env = {**os.environ, "MELTICA_LOG_BACKEND": "kafka", "PYTHONUNBUFFERED": "1"}
    supervisor = Supervisor(
        children(settings, services=services, health_base=health_base, prefix=prefix, demo=demo),
        env,
        log_dir,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out.print(f"cluster: {len(services)} services on {settings.kafka_bootstrap}; Ctrl-C stops them all")
    supervisor.run(stop)
    out.print("cluster: stopped\n" + supervisor.table())
