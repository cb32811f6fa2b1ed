"""`meltica up` takes a client's address from its connection, never from headers the client writes:
a brute-forcer that sends a new X-Forwarded-For (or X-Real-IP, Forwarded) with every guess still
meets the failed-authentication limit of its address."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FAILURES_ALLOWED = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`meltica up` on a free port, allowing `FAILURES_ALLOWED` failed authentications a minute."""
    data: Path = tmp_path_factory.mktemp("client-address") / "data"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MELTICA_")} | {
        "MELTICA_DATA_DIR": str(data),
        "MELTICA_API_PORT": str(port),
        "MELTICA_API_RATE_AUTH_FAILURES": f"{FAILURES_ALLOWED}/m",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica", "up", "--no-demo", "--tick-ms", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    said = []
    for line in proc.stdout:
        said.append(line)
        if "REST API:" in line:
            break
    else:
        raise AssertionError(f"meltica up did not start ({proc.wait()}):\n{''.join(said)}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(said) + out


def test_forwarding_headers_do_not_escape_the_failed_authentication_limit(api: str) -> None:
    statuses = []
    with httpx.Client(timeout=30) as client:
        for i in range(FAILURES_ALLOWED + 5):
            spoofed = {
                "X-API-Key": "mk_0000000000000000_wrong",
                "X-Forwarded-For": f"203.0.113.{i}",
                "X-Real-IP": f"198.51.100.{i}",
                "Forwarded": f"for=192.0.2.{i}",
            }
            answer = client.get(f"{api}/v1/orders", headers=spoofed)
            statuses.append(answer.status_code)
    assert statuses[:FAILURES_ALLOWED] == [401] * FAILURES_ALLOWED
    assert statuses[-1] == 429, statuses
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "urn:meltica:problem:rate-limited"
    assert int(answer.headers["Retry-After"]) >= 1
