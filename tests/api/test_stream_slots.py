"""`/v1/stream` over a real server: one key holds at most `MAX_STREAMS_PER_KEY` open streams (each
polls the log while it lives); one more is 429 `rate-limited` with Retry-After, other keys are not
affected, and a stream the client closes frees its slot."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import uvicorn

from meltica.api.stream_slots import MAX_STREAMS_PER_KEY
from tests.api.conftest import Api


@pytest.fixture
def served(api: Api) -> Iterator[str]:
    """The API of `api` served by uvicorn on a free port, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api.client.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _open(client: httpx.Client, stack: ExitStack, url: str, key: str) -> httpx.Response:
    """A stream opened and held (until `stack` closes); its answer, once the headers are in."""
    answer = stack.enter_context(client.stream("GET", f"{url}/v1/stream", headers={"X-API-Key": key}))
    if answer.status_code == 200:
        lines = answer.iter_lines()  # held by `stack`: a dropped line iterator closes the response
        stack.callback(lines.close)
        assert next(lines) == ": connected"
    return answer


def test_a_key_holds_a_bounded_number_of_streams(api: Api, served: str) -> None:
    trader, viewer = api.keys["trader"], api.keys["viewer"]
    with httpx.Client(timeout=30) as client, ExitStack() as held:
        first = ExitStack()
        held.enter_context(first)
        assert _open(client, first, served, trader).status_code == 200
        for _ in range(MAX_STREAMS_PER_KEY - 1):
            assert _open(client, held, served, trader).status_code == 200
        one_more = _open(client, held, served, trader)
        assert one_more.status_code == 429
        assert one_more.headers["content-type"].startswith("application/problem+json")
        assert int(one_more.headers["Retry-After"]) >= 1
        one_more.read()
        assert one_more.json()["type"] == "urn:meltica:problem:rate-limited"
        assert _open(client, held, served, viewer).status_code == 200  # another key's slots

        first.close()  # the client leaves: its slot is free once the server notices
        deadline = time.monotonic() + 30
        while True:
            attempt = ExitStack()
            status = _open(client, attempt, served, trader).status_code
            if status == 200:
                held.enter_context(attempt)
                break
            attempt.close()
            assert time.monotonic() < deadline, "the closed stream's slot was never freed"
            time.sleep(0.05)
