"""Binance's failures as the port's errors: codes and messages, HTTP statuses, ccxt's classes."""

from __future__ import annotations

import ccxt
import pytest

from meltica.venues.binance.errors import (
    DEFAULT_RETRY_AFTER,
    BinanceAnswer,
    BinanceHttpError,
    from_answer,
    from_exception,
)
from meltica.venues.port import REJECT_REASONS, VenueRejectedError, VenueThrottledError, VenueUnavailableError


@pytest.mark.parametrize(
    ("code", "msg", "reason"),
    [
        (-2010, "Account has insufficient balance for requested action.", "insufficient_balance"),
        (-1013, "Filter failure: NOTIONAL", "min_notional"),
        (-1013, "Filter failure: MIN_NOTIONAL", "min_notional"),
        (-1013, "Filter failure: PRICE_FILTER", "price_filter"),
        (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE", "price_filter"),
        (-1013, "Filter failure: LOT_SIZE", "lot_size"),
        (-1013, "Filter failure: MARKET_LOT_SIZE", "lot_size"),
        (-2010, "Duplicate order sent.", "duplicate_order"),
        (-2010, "Order would immediately match and take.", "would_take"),
        (-2011, "Unknown order sent.", "unknown_order"),
        (-2013, "Order does not exist.", "unknown_order"),
        (-2011, "Some other text", "unknown_order"),
        (-1121, "Invalid symbol.", "unknown_instrument"),
        (-1013, "Filter failure: MAX_NUM_ORDERS", "venue_rejected"),
        (-1022, "Signature for this request is not valid.", "venue_rejected"),
    ],
)
def test_rejections(code: int, msg: str, reason: str) -> None:
    error = from_answer(BinanceAnswer(400, code, msg))
    assert isinstance(error, VenueRejectedError)
    assert (error.reason, error.detail) == (reason, f"{code}: {msg}")
    assert error.reason in REJECT_REASONS


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "expected"),
    [
        (429, -1003, 7.0, 7.0),
        (418, -1003, 120.0, 120.0),
        (429, None, None, DEFAULT_RETRY_AFTER),
        (400, -1015, None, 60.0),
    ],
)
def test_throttles_keep_retry_after(
    status: int, code: int | None, retry_after: float | None, expected: float
) -> None:
    error = from_answer(BinanceAnswer(status, code, "Too many requests", retry_after))
    assert isinstance(error, VenueThrottledError)
    assert error.retry_after == expected


@pytest.mark.parametrize(
    ("status", "code"), [(503, -1001), (502, None), (500, None), (400, -1021), (408, -1007)]
)
def test_server_failures_and_clock_trouble_are_unavailable(status: int, code: int | None) -> None:
    assert isinstance(from_answer(BinanceAnswer(status, code, "x")), VenueUnavailableError)


def test_a_failed_cancel_replace_names_the_failing_half() -> None:
    cancel_failed = BinanceAnswer(
        400,
        -2022,
        "Order cancel-replace failed.",
        data={
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
            "newOrderResponse": None,
        },
    )
    new_failed = BinanceAnswer(
        409,
        -2021,
        "Order cancel-replace partially failed.",
        data={
            "cancelResult": "SUCCESS",
            "newOrderResult": "FAILURE",
            "cancelResponse": {"orderId": 1},
            "newOrderResponse": {
                "code": -2010,
                "msg": "Account has insufficient balance for requested action.",
            },
        },
    )
    reasons = []
    for answer in (cancel_failed, new_failed):
        error = from_answer(answer)
        assert isinstance(error, VenueRejectedError)
        reasons.append(error.reason)
    assert reasons == ["unknown_order", "insufficient_balance"]


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (
            BinanceHttpError(BinanceAnswer(400, -2013, "Order does not exist.")),
            VenueRejectedError,
            "unknown_order",
        ),
        (
            ccxt.InsufficientFunds("binance Account has insufficient balance"),
            VenueRejectedError,
            "insufficient_balance",
        ),
        (ccxt.OrderNotFound("binance gone"), VenueRejectedError, "unknown_order"),
        (
            ccxt.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: LOT_SIZE"}'),
            VenueRejectedError,
            "lot_size",
        ),
        (ccxt.AuthenticationError("binance bad key"), VenueRejectedError, "venue_rejected"),
        (ccxt.RateLimitExceeded("binance slow down"), VenueThrottledError, None),
        (ccxt.DDoSProtection("binance 418"), VenueThrottledError, None),
        (ccxt.RequestTimeout("binance GET"), VenueUnavailableError, None),
        (ccxt.ExchangeNotAvailable("binance GET"), VenueUnavailableError, None),
        (ccxt.NetworkError("Connection closed by remote server"), VenueUnavailableError, None),
        (ccxt.InvalidNonce("binance -1021"), VenueUnavailableError, None),
        (OSError("connection reset"), VenueUnavailableError, None),
        (TimeoutError(), VenueUnavailableError, None),
        (KeyError("orderId"), VenueUnavailableError, None),
    ],
)
def test_exceptions(exc: Exception, kind: type[Exception], reason: str | None) -> None:
    error = from_exception(exc)
    assert isinstance(error, kind)
    if reason is not None:
        assert isinstance(error, VenueRejectedError)
        assert error.reason == reason
    assert from_exception(error) is error
