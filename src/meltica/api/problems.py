"""RFC 9457 problem details: every error the API returns, each with a stable `type`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from meltica.errors import EncodeError, LogError

RETRY_AFTER_S = 2

MEDIA_TYPE = "application/problem+json"
BASE = "urn:meltica:problem:"


class Problem(Exception):  # noqa: N818 - the RFC 9457 name
    """An error answered as problem+json."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.kind, self.title, self.detail, self.extra = status, kind, title, detail, extra

    def response(self, instance: str) -> JSONResponse:
        body = {"type": BASE + self.kind, "title": self.title, "status": self.status, "instance": instance}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        headers = {"WWW-Authenticate": "ApiKey"} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, media_type=MEDIA_TYPE, headers=headers)


class BodyTooLarge(StarletteHTTPException):
    """A request body over the limit (raised by `limits.BodyLimit`'s `receive` as it crosses it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"bodies are limited to {limit} bytes")
        self.limit = limit

    def problem(self) -> Problem:
        return Problem(413, "too-large", "Request too large", str(self.detail), limit=self.limit)


def log_unavailable(err: Exception) -> Problem:
    """The event log did not take a command (down, or slower than the API's deadline)."""
    return Problem(
        503,
        "log-unavailable",
        "Event log unavailable",
        f"{err}. The request may or may not have been recorded: retry after Retry-After seconds "
        "(with the same client_order_id, an order retry is the same order).",
    )


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"{what} does not exist")


def strategy_not_allowed(detail: str) -> Problem:
    """403 `strategy-not-allowed`: a `module:Class` strategy outside the operator's `strategy_modules`."""
    return Problem(403, "strategy-not-allowed", "Strategy module not allowed", detail)


def install(app: FastAPI) -> None:
    """Route every error through problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            malformed = Problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
            return malformed.response(request.url.path)
        problem = Problem(
            422, "validation", "Invalid request", "the request does not match the API", errors=errors
        )
        return problem.response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return exc.problem().response(request.url.path)
        kinds = {
            400: "malformed-json",  # a body FastAPI could not parse: not UTF-8, nested too deep
            401: "unauthorized",
            404: "not-found",
            405: "method-not-allowed",
            413: "too-large",
        }
        problem = Problem(
            exc.status_code, kinds.get(exc.status_code, "http"), str(exc.detail), str(exc.detail)
        )
        return problem.response(request.url.path)

    @app.exception_handler(LogError)
    async def _log_down(request: Request, exc: LogError) -> JSONResponse:
        response = log_unavailable(exc).response(request.url.path)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(EncodeError)
    async def _unencodable(request: Request, exc: EncodeError) -> JSONResponse:
        return Problem(422, "validation", "Invalid request", exc.reason).response(request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return Problem(500, "internal", "Internal error", type(exc).__name__).response(request.url.path)
