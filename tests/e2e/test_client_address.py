"""`meltica up` takes a client's address from its connection, never from headers the client writes:
a brute-forcer that sends a new X-Forwarded-For (or X-Real-IP, Forwarded) with every guess still
meets the failed-authentication limit of its address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.up_process import free_port, meltica_up

FAILURES_ALLOWED = 5


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`meltica up` on a free port, allowing `FAILURES_ALLOWED` failed authentications a minute."""
    data: Path = tmp_path_factory.mktemp("client-address") / "data"
    port = free_port()
    with meltica_up(data, port, MELTICA_API_RATE_AUTH_FAILURES=f"{FAILURES_ALLOWED}/m"):
        yield f"http://127.0.0.1:{port}"


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
