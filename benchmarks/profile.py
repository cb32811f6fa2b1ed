"""Where the order path spends its time, by layer: a cProfile of a benchmark path, each function's
own time charged to the layer of its module (time in C built-ins - Decimal, dict, sqlite3 - to
the layer that called them).

    python -m benchmarks.profile embedded    # the embedded engine draining 5,000 orders
    python -m benchmarks.profile domain      # order lifecycles through the deciders
    python -m benchmarks.profile rest        # `meltica up` under 8 REST clients, sampled by py-spy
    python -m benchmarks.profile embedded --top 25 --out profile.json

`rest` samples every thread of a `meltica up` process (py-spy, only the thread holding the GIL:
the process runs Python on one core at a time) while the REST benchmark's clients submit orders,
and charges each sample to the thread's role and to the layer of its innermost known frame.

The embedded engine runs the same step and processors as the fused Kafka service, so its layers
are the fused service's less the broker's commits (which `benchmarks.kafka_anchor` measures).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

OTHER = "python: stdlib and other libraries"

# (substring of a module's path, layer), first match wins
LAYERS: tuple[tuple[str, str], ...] = (
    ("meltica/venues/sim", "sim venue matching"),
    ("meltica/domain/risk", "domain: risk"),
    ("meltica/domain/orders", "domain: orders"),
    ("meltica/domain/portfolio", "domain: portfolio"),
    ("meltica/domain/routing", "domain: routing"),
    ("meltica/domain", "domain: other"),
    ("meltica/strategies", "strategies"),
    ("meltica/processors", "processors (adapters)"),
    ("meltica/events", "events: Avro encode/decode"),
    ("fastavro", "events: Avro encode/decode"),
    ("<avro ", "events: Avro encode/decode"),  # the codec's compiled encoders and decoders
    ("meltica/telemetry", "tracing"),
    ("opentelemetry", "tracing"),
    ("meltica/log", "log: SQLite/Kafka I/O"),
    ("sqlite3", "log: SQLite/Kafka I/O"),
    ("meltica/runtime/step", "step: routing between processors"),
    ("meltica/runtime", "engine: batching, commits, metrics"),
    ("prometheus_client", "engine: batching, commits, metrics"),
    ("meltica/api", "API: Meltica's routes, auth, idempotency, audit"),
    ("meltica/projections", "projector and read-model queries"),
    ("meltica/control", "control plane (venue manager)"),
    ("meltica/", "meltica: other"),
    ("sqlalchemy", "SQLAlchemy"),
    ("fastapi", "FastAPI, Starlette, pydantic"),
    ("starlette", "FastAPI, Starlette, pydantic"),
    ("pydantic", "FastAPI, Starlette, pydantic"),
    ("anyio", "FastAPI, Starlette, pydantic"),
    ("uvicorn", "uvicorn, h11, asyncio"),
    ("h11", "uvicorn, h11, asyncio"),
    ("asyncio", "uvicorn, h11, asyncio"),
)

# (substring of any frame's file, role of the thread), first match from the root wins
ROLES: tuple[tuple[str, str], ...] = (
    ("runtime/engine.py", "engine thread"),
    ("projections/projector.py", "projector thread"),
    ("control/venues.py", "venue manager thread"),
    ("api/audit.py", "audit writer thread"),
    ("anyio/_backends", "API handler threads (sync routes)"),
    ("uvicorn/", "API event loop"),
    ("asyncio/", "API event loop"),
)


def layer_of(filename: str) -> str:
    name = filename.replace("\\", "/")
    for part, layer in LAYERS:
        if part in name:
            return layer
    return OTHER


def by_layer(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per layer; a built-in's time goes to its callers' layers."""
    out: dict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        if filename == "~" and callers:  # a C built-in: per caller, the time spent in it from there
            for (caller_file, _l, _n), caller_stats in callers.items():
                out[layer_of(caller_file)] += caller_stats[2]
        else:
            out[layer_of(filename)] += tottime
    return dict(out)


def embedded(orders: int) -> tuple[Callable[[], Any], Callable[[], dict[str, float]]]:
    """The engine set up with `orders` orders waiting; the timed part drains them."""
    from benchmarks.pipeline import loaded

    tmp = tempfile.TemporaryDirectory()
    pub, engine = loaded(Path(tmp.name) / "log.db", orders)

    def run() -> Any:
        return engine.drain(max_steps=1000)

    def done() -> dict[str, float]:
        pub.log.close()
        tmp.cleanup()
        return {"orders": orders, "events": engine.stats.outputs}

    return run, done


def domain(orders: int) -> tuple[Callable[[], Any], Callable[[], dict[str, float]]]:
    from benchmarks.domain import Lifecycles

    life = Lifecycles(with_portfolio=True)
    inputs = [life.inputs() for _ in range(orders)]

    def run() -> Any:
        for item in inputs:
            life.run(item)

    return run, lambda: {"orders": orders}


PATHS = {"embedded": embedded, "domain": domain}


def _frames(line: str) -> tuple[list[str], int]:
    """A py-spy raw line: its frames' files (root first) and its sample count."""
    stack, count = line.rsplit(" ", 1)
    files = [f[f.rfind("(") + 1 : f.rfind(":")] for f in stack.split(";")[1:]]  # the first is the thread
    return files, int(count)


def rest(
    seconds: float = 8.0, workers: int = 8, keep: Path | None = None, extra: tuple[str, ...] = ("--gil",)
) -> dict[str, Any]:
    """`meltica up` sampled by py-spy while `workers` clients submit orders for `seconds`."""
    import shutil
    import signal
    import subprocess

    from benchmarks.rest import _submissions, meltica_up

    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("benchmarks.profile rest needs py-spy: pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "spy.txt"
        up, port, key = meltica_up(tmp)
        spy_args = [*extra, "--threads", "--format", "raw", "--rate", "250", "--duration", str(int(seconds))]
        recording = subprocess.Popen([spy, "record", *spy_args, "-o", str(raw), "--pid", str(up.pid)])
        rate_per_s, _ids = _submissions(f"http://127.0.0.1:{port}", {"X-API-Key": key}, seconds, workers)
        recording.wait(timeout=120)
        up.send_signal(signal.SIGINT)
        up.wait(timeout=120)
        lines = raw.read_text().splitlines()
        if keep is not None:
            keep.write_text(raw.read_text())
    return {"path": "rest", "submissions_per_s_under_py_spy": rate_per_s, **summarize(lines)}


def summarize(lines: list[str]) -> dict[str, Any]:
    """py-spy raw samples by the thread's role and by the layer of the innermost frame that has one."""
    layers: dict[str, float] = defaultdict(float)
    roles: dict[str, float] = defaultdict(float)
    for line in lines:
        files, count = _frames(line)
        role = next((r for f in files for part, r in ROLES if part in f), "other threads (start-up, signals)")
        roles[role] += count
        known = [layer for layer in map(layer_of, files) if layer != OTHER]
        layers[known[-1] if known else OTHER] += count
    total = sum(roles.values()) or 1.0
    return {
        "samples": total,
        "roles": {k: v / total for k, v in sorted(roles.items(), key=lambda kv: -kv[1])},
        "layers": {k: v / total for k, v in sorted(layers.items(), key=lambda kv: -kv[1])},
    }


def show_rest(report: dict[str, Any]) -> None:
    console = Console(width=160)
    title = (
        f"meltica up under 8 REST clients: {report['submissions_per_s_under_py_spy']:.0f} submissions/s, "
        f"{report['samples']:.0f} samples of the thread holding the GIL"
    )
    for name in ("roles", "layers"):
        table = Table(title=f"{title}: by {name[:-1]}")
        table.add_column(name[:-1])
        table.add_column("share of the GIL", justify="right")
        for k, v in report[name].items():
            table.add_row(k, f"{v:.1%}")
        console.print(table)


def profile(path: str, orders: int) -> dict[str, Any]:
    run, done = PATHS[path](orders)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.runcall(run)
    elapsed = time.perf_counter() - began
    counts = done()
    stats = pstats.Stats(profiler)
    layers = by_layer(stats)
    total = sum(layers.values())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)
    return {
        "path": path,
        "orders": counts["orders"],
        "profiled_seconds": elapsed,
        "orders_per_s_under_profiler": counts["orders"] / elapsed,
        "layers": {
            k: {"seconds": v, "share": v / total} for k, v in sorted(layers.items(), key=lambda kv: -kv[1])
        },
        "functions": [
            {"function": f"{Path(f).name}:{line} {name}", "own_s": s[2], "calls": s[1], "layer": layer_of(f)}
            for (f, line, name), s in top[:60]
        ],
        "per_order_us": {k: v / counts["orders"] * 1e6 for k, v in layers.items()},
    }


def show(report: dict[str, Any], top: int) -> None:
    console = Console(width=160)
    seconds = report["profiled_seconds"]
    table = Table(title=f"{report['path']}: {report['orders']} orders, {seconds:.2f} s under cProfile")
    for col in ("layer", "share", "µs per order"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for name, row in report["layers"].items():
        table.add_row(name, f"{row['share']:.1%}", f"{report['per_order_us'][name]:.0f}")
    console.print(table)
    funcs = Table(title=f"top {top} functions by own time")
    for col in ("function", "layer", "calls", "own s"):
        funcs.add_column(col, justify="left" if col in ("function", "layer") else "right")
    for row in report["functions"][:top]:
        funcs.add_row(row["function"], row["layer"], str(row["calls"]), f"{row['own_s']:.3f}")
    console.print(funcs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", choices=sorted([*PATHS, "rest"]))
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--raw", type=Path, help="rest: keep py-spy's raw samples here")
    args = parser.parse_args()
    if args.path == "rest":
        report = rest(keep=args.raw)
        show_rest(report)
    else:
        report = profile(args.path, args.orders)
        show(report, args.top)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
