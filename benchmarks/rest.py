"""REST API under load from a second process on loopback: order submission throughput and
GET /v1/orders/{id} latency, against a running `meltica up`."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


UNLIMITED = {"MELTICA_API_RATE_TRADE": "1000000/s", "MELTICA_API_RATE_READ": "1000000/s"}
"""The per-key rate limits (default 100/s trading, 200/s reads) lifted: the benchmark's one key
would otherwise measure its own rate limit (the 108 submissions/s once reported here)."""


def _env(data_dir: str, port: int, limits: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")}
    env |= {
        "MELTICA_DATA_DIR": data_dir,
        "MELTICA_API_PORT": str(port),
        **(UNLIMITED if limits is None else limits),
    }
    return env


def _clients(work: Callable[[int], None], workers: int, seconds: float, stop: threading.Event) -> None:
    """`work(worker)` on `workers` threads until `stop` is set, `seconds` from now."""
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()


def _submissions(base: str, headers: dict[str, str], seconds: float, workers: int) -> tuple[float, list[str]]:
    """Orders posted by `workers` client threads for `seconds`: accepted per second, and their ids."""
    ids: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def submit(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                body = {
                    "account_id": "DEMO",
                    "instrument_id": "BTCUSDT.SIM",
                    "side": "BUY" if n % 2 else "SELL",
                    "type": "MARKET",
                    "quantity": "0.001",
                    "client_order_id": f"w{worker}-{n}",
                }
                r = client.post("/v1/orders", json=body)
                if r.status_code == 202:
                    with lock:
                        ids.append(r.json()["order_id"])

    began = time.perf_counter()
    _clients(submit, workers, seconds, stop)
    return len(ids) / (time.perf_counter() - began), ids


def _reads(
    base: str, headers: dict[str, str], seconds: float, workers: int, ids: list[str]
) -> dict[str, float]:
    """GET /v1/orders/{id} by `workers` client threads for `seconds`: latency percentiles."""
    latencies: list[float] = []
    stop = threading.Event()
    lock = threading.Lock()

    def read(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            i = worker
            while not stop.is_set():
                started = time.perf_counter()
                r = client.get(f"/v1/orders/{ids[i % len(ids)]}")
                elapsed = (time.perf_counter() - started) * 1000
                if r.status_code == 200:
                    with lock:
                        latencies.append(elapsed)
                i += workers

    _clients(read, workers, seconds, stop)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"get_p50_ms": q[49], "get_p99_ms": q[98], "gets": len(latencies)}


def _started(command: list[str], env: dict[str, str], ready: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if ready in line:
            break
    else:
        raise RuntimeError(f"{' '.join(command)} did not start (exit {proc.wait()})")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
    return proc


def meltica_up(data_dir: str, limits: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int, str]:
    """`meltica up` on a free port with `data_dir` (`limits`: the API's rate limits, default
    lifted), once it is up: the process, its port and a trading key for account DEMO."""
    port = _port()
    env = _env(data_dir, port, limits)
    up = _started(
        [sys.executable, "-m", "meltica", "up", "--no-demo", "--tick-ms", "200"], env, "Meltica is up"
    )
    key = subprocess.run(
        [sys.executable, "-m", "meltica", "keys", "create", "--name", "bench", "--accounts", "DEMO"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return up, port, key


def measure(seconds: float = 5.0, workers: int = 8, limits: dict[str, str] | None = None) -> dict[str, float]:
    """Submissions/s and GET latencies with `workers` clients (`limits`: the API's rate limits,
    default lifted)."""
    with tempfile.TemporaryDirectory() as tmp:
        up, port, key = meltica_up(tmp, limits)
        base = f"http://127.0.0.1:{port}"
        headers = {"X-API-Key": key}
        submit_rate, ids = _submissions(base, headers, seconds, workers)
        time.sleep(2)  # let the projector catch up
        reads = _reads(base, headers, seconds, workers, ids)
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        return {"submit_per_s": submit_rate, **reads}


def anchor(seconds: float = 5.0, workers: int = 8) -> dict[str, float]:
    """The same clients against `benchmarks.rest_anchor`: FastAPI and uvicorn as `meltica up` runs
    them, with nothing behind the two routes. What this machine's HTTP stack and clients reach."""
    port = _port()
    server = _started(
        [sys.executable, "-m", "benchmarks.rest_anchor", str(port)], dict(os.environ), "Uvicorn running"
    )
    try:
        base = f"http://127.0.0.1:{port}"
        submit_rate, ids = _submissions(base, {}, seconds, workers)
        return {"submit_per_s": submit_rate, **_reads(base, {}, seconds, workers, ids)}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def results() -> list[Any]:
    from benchmarks.run import Result

    out = []
    for workers in (8, 64):
        m = measure(workers=workers)
        group = f"REST API ({workers} clients, loopback)"
        out += [
            Result(group, "order submissions/s (202)", m["submit_per_s"], 2000 if workers == 8 else None),
            Result(group, "GET /v1/orders/{id} p50 ms", m["get_p50_ms"], lower_is_better=True),
            Result(
                group,
                "GET /v1/orders/{id} p99 ms",
                m["get_p99_ms"],
                10 if workers == 8 else None,
                lower_is_better=True,
            ),
        ]
    bare = anchor()
    group = "REST anchor: bare FastAPI app (8 clients, loopback)"
    out += [
        Result(group, "POST submissions/s (202, nothing behind)", bare["submit_per_s"]),
        Result(group, "GET p50 ms", bare["get_p50_ms"], lower_is_better=True),
        Result(group, "GET p99 ms", bare["get_p99_ms"], lower_is_better=True),
    ]
    return out
