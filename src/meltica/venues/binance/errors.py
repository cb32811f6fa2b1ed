"""Binance's failures as the port's errors: one table for codes and messages, one for ccxt's classes.

Every failed REST answer reaches us as a `BinanceHttpError` (the client raises it with the HTTP
status, Binance's `{"code", "msg"}` and the `Retry-After` header before ccxt guesses a class);
failures without an answer (a refused connection, a timeout, a dropped socket) as ccxt's classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt

from meltica.venues.common import from_ccxt
from meltica.venues.port import (
    VenueError,
    VenueRejectedError,
    VenueThrottledError,
    VenueUnavailableError,
)

DEFAULT_RETRY_AFTER = 60.0
"""Seconds to keep off the venue after a 429/418 that named no Retry-After (Binance's weight window)."""


@dataclass(frozen=True, slots=True)
class BinanceAnswer:
    """A failed REST answer."""

    status: int  # HTTP status
    code: int | None  # Binance's error code (negative), when the body had one
    msg: str
    retry_after: float | None = None  # the Retry-After header, s
    data: Mapping[str, Any] = field(default_factory=dict)  # cancelReplace: both halves' outcomes


class BinanceHttpError(ccxt.ExchangeError):  # type: ignore[misc]
    """A failed REST answer, raised by the client in place of ccxt's guess at a class."""

    def __init__(self, answer: BinanceAnswer) -> None:
        super().__init__(f"binance {answer.status} {answer.code}: {answer.msg}")
        self.answer = answer


MESSAGE_REASONS: tuple[tuple[str, str], ...] = (
    ("insufficient balance", "insufficient_balance"),
    ("MIN_NOTIONAL", "min_notional"),
    ("Filter failure: NOTIONAL", "min_notional"),
    ("PERCENT_PRICE", "price_filter"),
    ("PRICE_FILTER", "price_filter"),
    ("LOT_SIZE", "lot_size"),  # and MARKET_LOT_SIZE
    ("Duplicate order", "duplicate_order"),
    ("immediately match and take", "would_take"),
    ("Unknown order", "unknown_order"),
    ("Order does not exist", "unknown_order"),
    ("Invalid symbol", "unknown_instrument"),
)
"""A fragment of Binance's message (case-insensitive) -> the reject reason; the first match wins."""

CODE_REASONS: Mapping[int, str] = {
    -2011: "unknown_order",  # cancel of an order the venue does not know (or no longer has open)
    -2013: "unknown_order",  # query of an order that does not exist
    -1121: "unknown_instrument",
}

THROTTLED_STATUSES = frozenset({418, 429})
THROTTLED_CODES = frozenset({-1003, -1015})  # too much weight; too many new orders
UNAVAILABLE_CODES = frozenset({-1001, -1006, -1007, -1008, -1021})
"""Disconnected, unexpected answer, backend timeout (send status unknown), overloaded, clock off."""

CLASS_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (ccxt.InsufficientFunds, "insufficient_balance"),
    (ccxt.OrderNotFound, "unknown_order"),
    (ccxt.DuplicateOrderId, "duplicate_order"),
    (ccxt.OrderImmediatelyFillable, "would_take"),
    (ccxt.BadSymbol, "unknown_instrument"),
)
"""ccxt's classes that name a reject reason (checked after the message table)."""


def reason_of(code: int | None, msg: str) -> str:
    """The port's reject reason for Binance's `code` and `msg`."""
    lowered = msg.lower()
    for fragment, reason in MESSAGE_REASONS:
        if fragment.lower() in lowered:
            return reason
    if code is not None and code in CODE_REASONS:
        return CODE_REASONS[code]
    return "venue_rejected"


def from_answer(answer: BinanceAnswer) -> VenueError:
    """The port's error for a failed REST answer."""
    detail = (
        f"{answer.code}: {answer.msg}" if answer.code is not None else f"HTTP {answer.status}: {answer.msg}"
    )
    if answer.status in THROTTLED_STATUSES or answer.code in THROTTLED_CODES:
        retry = answer.retry_after if answer.retry_after is not None else DEFAULT_RETRY_AFTER
        return VenueThrottledError(retry, detail)
    if answer.status >= 500 or answer.code in UNAVAILABLE_CODES:
        return VenueUnavailableError(detail)
    failed = failed_half(answer.data)
    if failed is not None:  # cancelReplace: the reason is the failed half's
        code, msg = failed
        return VenueRejectedError(reason_of(code, msg), f"{detail} ({code}: {msg})")
    return VenueRejectedError(reason_of(answer.code, answer.msg), detail)


def failed_half(data: Mapping[str, Any]) -> tuple[int | None, str] | None:
    """A failed cancelReplace's failing half as (code, msg): the cancel if it failed, else the new order."""
    for result, response in (("cancelResult", "cancelResponse"), ("newOrderResult", "newOrderResponse")):
        body = data.get(response)
        if data.get(result) == "FAILURE" and isinstance(body, Mapping):
            code = body.get("code")
            return (code if isinstance(code, int) else None), str(body.get("msg", ""))
    return None


def from_exception(exc: BaseException) -> VenueError:
    """The port's error for anything a venue call raised."""
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, BinanceHttpError):
        return from_answer(exc.answer)
    return from_ccxt(exc, DEFAULT_RETRY_AFTER, _reason_of_class)


def _reason_of_class(text: str, exc: BaseException) -> str:
    """A reject's reason by its message, else by ccxt's class."""
    reason = reason_of(None, text)
    if reason == "venue_rejected":
        reason = next((r for cls, r in CLASS_REASONS if isinstance(exc, cls)), reason)
    return reason
