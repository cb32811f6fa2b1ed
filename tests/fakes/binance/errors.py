"""Binance's error answers: ``{"code": -1022, "msg": ...}`` with the HTTP status Binance uses."""

from __future__ import annotations


class BinanceError(Exception):
    """An error Binance would answer; ``status`` is the HTTP status of the REST answer."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def bad_signature() -> BinanceError:
    return BinanceError(400, -1022, "Signature for this request is not valid.")


def outside_recv_window() -> BinanceError:
    return BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def ahead_of_server(ms: int) -> BinanceError:
    return BinanceError(400, -1021, f"Timestamp for this request was {ms}ms ahead of the server's time.")


def invalid_api_key() -> BinanceError:
    return BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")


def missing(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_param(name: str) -> BinanceError:
    return BinanceError(
        400,
        -1100,
        f"Illegal characters found in parameter '{name}'; "
        "legal range is '^[0-9]{1,20}(\\.[0-9]{1,20})?$'.",
    )


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(400, -1013, f"Filter failure: {name}")


def insufficient_balance() -> BinanceError:
    return BinanceError(400, -2010, "Account has insufficient balance for requested action.")


def unknown_order_cancel() -> BinanceError:
    return BinanceError(400, -2011, "Unknown order sent.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(400, -2013, "Order does not exist.")


def duplicate_order() -> BinanceError:
    return BinanceError(400, -2010, "Duplicate order sent.")


def internal_error(status: int = 503) -> BinanceError:
    return BinanceError(status, -1001, "Internal error; unable to process your request. Please try again.")


def too_many_requests(limit: int, retry_after: int) -> BinanceError:
    return BinanceError(
        429,
        -1003,
        f"Too many requests; current limit of IP(127.0.0.1) request weight is {limit} per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        {"Retry-After": str(retry_after)},
    )
