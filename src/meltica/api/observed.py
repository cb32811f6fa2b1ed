"""Request counts and the audit trail as one pure ASGI middleware.

Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) runs the rest of the app in a task
group with memory streams for every request; two of them were a third of the event loop's time
per order submission. This wraps `receive` and `send` instead: it counts every answered request
(`meltica_api_requests` by method, route and status) and records each state-changing call made
with a valid key, its outcome and the SHA-256 of its body, in `audit.events` (queued: the event
loop never waits for the log)."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meltica.api.audit import AuditTrail
from meltica.clock import Clock
from meltica.domain.audit import ApiCallAudited

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Observed:
    """Counts requests and audits state-changing calls around `app`."""

    def __init__(self, app: ASGIApp, trail: AuditTrail, clock: Clock, requests: Any) -> None:
        self.app, self.trail, self.clock, self.requests = app, trail, clock, requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        changes = scope["method"] in CHANGES
        body = b""
        if changes:  # read first, whoever reads it later (and the limit holds: BodyLimit is outside)
            body, receive = await _buffered(receive)
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        path = getattr(scope.get("route"), "path", "unmatched")
        self.requests.add(1, {"method": scope["method"], "route": path, "status": str(status)})
        key = scope.get("state", {}).get("api_key")
        if changes and key is not None:
            request = Request(scope)
            self.trail.record(
                ApiCallAudited(
                    key.key_id,
                    key.name,
                    scope["method"],
                    request.url.path,
                    status,
                    hashlib.sha256(body).hexdigest(),
                    request.client.host if request.client else "",
                    self.clock.now_ns(),
                )
            )


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that gives it again (then what comes after)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            if message["type"] != "http.request":
                return message
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again
