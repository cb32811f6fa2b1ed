"""What the ccxt-backed venue adapters (Binance, OKX) share: exact decimal strings, a REST answer's
headers, the user stream's sinks, ccxt's failure classes as the port's errors, and the throttle gate
that refuses calls until a venue's retry time has passed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Generic, TypeVar

from meltica.venues.port import VenueError, VenueRejectedError, VenueThrottledError, VenueUnavailableError

T = TypeVar("T")
Item = TypeVar("Item")


def dec(value: Any) -> Decimal:
    """A venue's decimal string without its trailing zeros ("0.00300000" -> 0.003, "8477.00" -> 8477)."""
    d = Decimal(str(value))
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d.normalize()


def text(value: Decimal) -> str:
    """A decimal as the venues take it: plain notation, no exponent."""
    return f"{value.normalize():f}"


def places(increment: Decimal) -> int:
    """The decimal places of a price or size increment."""
    return max(0, -int(increment.normalize().as_tuple().exponent))


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header of an answer by its lower-case `name` (headers are case-insensitive)."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """An answer's `Retry-After` in seconds; None when absent or not a number."""
    retry = header(headers, "retry-after")
    try:
        return float(retry) if retry is not None else None
    except ValueError:
        return None


class Sinks(Generic[Item]):
    """The queues a client's stream items go to, each item to every listener."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[Item]] = set()

    def add(self, queue: asyncio.Queue[Item]) -> None:
        self.queues.add(queue)

    def discard(self, queue: asyncio.Queue[Item]) -> None:
        self.queues.discard(queue)

    def send(self, item: Item) -> None:
        for queue in self.queues:
            queue.put_nowait(item)

    def __bool__(self) -> bool:
        return bool(self.queues)


def from_ccxt(
    exc: BaseException, default_retry_after: float, reason: Callable[[str, BaseException], str]
) -> VenueError:
    """The port's error for a failure without a venue answer: ccxt's throttle, network and other
    classes (`reason` names a reject's reason from its text), anything else an unknown outcome."""
    import ccxt  # here: market data uses this module's decimals without the ccxt extra

    text_ = str(exc)
    if isinstance(exc, (ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
        return VenueThrottledError(default_retry_after, text_)
    if isinstance(exc, ccxt.NetworkError):  # RequestTimeout, ExchangeNotAvailable, InvalidNonce
        return VenueUnavailableError(text_ or type(exc).__name__)
    if isinstance(exc, ccxt.BaseError):
        return VenueRejectedError(reason(text_, exc), text_)
    # aiohttp, OSError, timeouts, an answer of an unexpected shape: the outcome is unknown
    return VenueUnavailableError(f"{type(exc).__name__}: {text_}")


class ThrottleGate:
    """After a throttle, every call is refused until the venue's retry time has passed."""

    def __init__(
        self,
        name: str,
        clock: Callable[[], float],
        to_port: Callable[[BaseException], VenueError],
        log: logging.Logger,
        refusal: str,
    ) -> None:
        self._name, self._clock, self._to_port, self._log = name, clock, to_port, log
        self._refusal = refusal
        self.refuse_until = 0.0

    def check(self) -> None:
        """Raise the throttle while the gate is closed."""
        left = self.refuse_until - self._clock()
        if left > 0:
            raise VenueThrottledError(left, self._refusal)

    async def guard(self, call: Awaitable[T]) -> T:
        """Await a venue call; every failure becomes the port's error, a throttle closes the gate."""
        try:
            return await call
        except Exception as exc:
            error = self._to_port(exc)
            if isinstance(error, VenueThrottledError):
                self.refuse_until = max(self.refuse_until, self._clock() + error.retry_after)
                self._log.warning("%s throttled us for %g s: %s", self._name, error.retry_after, error)
            raise error from exc


class CheckedAnswers:
    """A ccxt client mixin: every REST answer goes to `check_answer` (which raises the venue's own
    error for a failed one) before ccxt guesses a class; WebSocket errors come without a method."""

    def check_answer(
        self, code: int, headers: Mapping[str, str] | None, body: str | None, response: Any
    ) -> None:
        raise NotImplementedError

    def handle_errors(
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Mapping[str, str] | None,
        body: str | None,
        response: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        if method:  # a REST answer
            self.check_answer(code, headers, body, response)
        return super().handle_errors(  # type: ignore[misc] # the ccxt exchange this is mixed into
            code, reason, url, method, headers, body, response, request_headers, request_body
        )
