"""The request body limit, enforced on the bytes actually received.

`BodyLimit` is pure ASGI and the outermost of the API's middlewares: it refuses a declared
`Content-Length` over the limit before anything reads the body, and wraps `receive` so that a
body without one (chunked) fails with 413 as soon as the limit is crossed, whoever reads it (the
audit middleware, FastAPI's body parsing). No one, authenticated or not, can make the server
hold more than `limit` bytes of one request body."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meltica.api.problems import BodyTooLarge

ARRIVED = "meltica.arrived"
"""Scope key: `time.monotonic()` when the request arrived (deadlines count from it)."""


class BodyLimit:
    """Answer 413 problem+json to any request whose body is, or becomes, larger than `limit`."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[ARRIVED] = time.monotonic()
        too_large = BodyTooLarge(self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (
            not declared.isdigit() or len(declared) > 12 or int(declared) > self.limit
        ):
            await too_large.problem().response(scope["path"])(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            if started:
                raise
            await too_large.problem().response(scope["path"])(scope, receive, send)
