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


def measure(seconds: float = 5.0, workers: int = 8, limits: dict[str, str] | None = None) -> dict[str, float]:
    """Submissions/s and GET latencies with `workers` clients (`limits`: the API's rate limits,
    default lifted)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        env = _env(tmp, port, limits)
        up = subprocess.Popen(
            [sys.executable, "-m", "meltica", "up", "--no-demo", "--tick-ms", "200"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert up.stdout is not None
        for line in up.stdout:
            if "Meltica is up" in line:
                break
        key = subprocess.run(
            [sys.executable, "-m", "meltica", "keys", "create", "--name", "bench", "--accounts", "DEMO"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        base = f"http://127.0.0.1:{port}"
        headers = {"X-API-Key": key}
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

        threads = [threading.Thread(target=submit, args=(w,)) for w in range(workers)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        submit_rate = len(ids) / (time.perf_counter() - began)

        time.sleep(2)  # let the projector catch up
        latencies: list[float] = []
        stop.clear()

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

        threads = [threading.Thread(target=read, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        return {"submit_per_s": submit_rate, "get_p50_ms": q[49], "get_p99_ms": q[98], "gets": len(latencies)}


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
    return out
