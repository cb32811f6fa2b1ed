"""OKX's failures as the port's errors.

OKX answers a refused request with `{"code", "msg", "data"}`; an order call's own outcome is in
`data[i].sCode`/`sMsg` (with `code` "1"). The client raises every such answer as an `OkxHttpError`
(HTTP status, both codes, both messages) before ccxt guesses a class; failures without an answer
(a refused connection, a timeout, a dropped socket) arrive as ccxt's classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ccxt

from meltica.venues.common import from_ccxt
from meltica.venues.port import VenueError, VenueRejectedError, VenueThrottledError, VenueUnavailableError

DEFAULT_RETRY_AFTER = 2.0
"""Seconds to keep off after a throttle that named no Retry-After (OKX counts requests per 2 s)."""


@dataclass(frozen=True, slots=True)
class OkxAnswer:
    """A failed REST answer: the request's `code`/`msg`, and the order's `sCode`/`sMsg` if any."""

    status: int
    code: str
    msg: str
    s_code: str = ""
    s_msg: str = ""
    retry_after: float | None = None


class OkxHttpError(ccxt.ExchangeError):  # type: ignore[misc]
    """A failed REST answer, raised by the client in place of ccxt's guess at a class."""

    def __init__(self, answer: OkxAnswer) -> None:
        super().__init__(f"okx {answer.status} {answer.s_code or answer.code}: {answer.s_msg or answer.msg}")
        self.answer = answer


CODE_REASONS: Mapping[str, str] = {
    "51008": "insufficient_balance",  # Order failed. Insufficient {ccy} balance
    "51020": "lot_size",  # Your order should meet or exceed the minimum order amount
    "51121": "lot_size",  # Order quantity must be a multiple of the lot size
    "51006": "price_filter",  # Order price is not within the price limit
    "51016": "duplicate_order",  # Duplicated client order ID
    "51603": "unknown_order",  # Order does not exist
    "51400": "unknown_order",  # Cancellation failed: the order was filled, canceled or does not exist
    "51503": "unknown_order",  # Amend failed: the order was filled, canceled or does not exist
    "51001": "unknown_instrument",  # Instrument ID does not exist
}
PARAMETER_REASONS: Mapping[str, str] = {
    "px": "price_filter",
    "sz": "lot_size",
    "newPx": "price_filter",
    "newSz": "lot_size",
}
"""51000 `Parameter {name} error`: the parameter -> the reason."""

THROTTLED_CODES = frozenset({"50011", "50061"})  # too many requests; the order rate limit
UNAVAILABLE_CODES = frozenset({"50001", "50004", "50013", "50026", "50102"})
"""Service unavailable, endpoint timeout (outcome unknown), busy, system error, timestamp expired."""


def reason_of(code: str, msg: str) -> str:
    """The port's reject reason for OKX's `code` (an sCode or a code) and its message."""
    if code == "51000":
        name = msg.removeprefix("Parameter ").removesuffix(" error")
        return PARAMETER_REASONS.get(name, "venue_rejected")
    return CODE_REASONS.get(code, "venue_rejected")


def from_answer(answer: OkxAnswer) -> VenueError:
    code, msg = (answer.s_code, answer.s_msg) if answer.s_code not in ("", "0") else (answer.code, answer.msg)
    detail = f"{code}: {msg}" if code else f"HTTP {answer.status}: {msg}"
    if answer.status == 429 or code in THROTTLED_CODES:
        retry = answer.retry_after if answer.retry_after is not None else DEFAULT_RETRY_AFTER
        return VenueThrottledError(retry, detail)
    if answer.status >= 500 or code in UNAVAILABLE_CODES:
        return VenueUnavailableError(detail)
    return VenueRejectedError(reason_of(code, msg), detail)


def from_exception(exc: BaseException) -> VenueError:
    """The port's error for anything a venue call raised."""
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, OkxHttpError):
        return from_answer(exc.answer)
    return from_ccxt(exc, DEFAULT_RETRY_AFTER, lambda text, exc: "venue_rejected")
