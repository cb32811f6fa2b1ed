"""The execution-adapter port: what Meltica asks of a live venue, and what a venue answers.

A live venue (Binance through ccxt, later OKX) does I/O, so it is not stepped inside the
deterministic engine as the simulator is: a gateway (`venues/gateway.py`) hosts an adapter beside
the engine, turns venue requests into calls of this port, and the port's answers and user-data
updates into execution reports on `venue.reports`. Everything here speaks Meltica's terms: its
instrument ids, its order ids (which travel to the venue as its client order id), exact decimals
and nanosecond times. Mapping to and from the venue's symbols, signing, precision and error codes
is the adapter's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.values import LiquiditySide, OrderSide
from meltica.errors import MelticaError


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue sees it."""

    order_id: str  # Meltica's order id (from the venue's client order id)
    venue_order_id: str
    instrument_id: str
    side: OrderSide
    status: OrderStatus  # NEW (resting), PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED or REJECTED
    quantity: Decimal
    price: Decimal | None
    filled_qty: Decimal
    avg_px: Decimal | None
    ts: int  # the venue's time of its last change, ns
    reason: str = ""


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One fill of one of our orders, as the venue reports it."""

    trade_id: str  # the venue's trade id: unique per instrument at the venue
    order_id: str | None  # Meltica's, when the venue reports the client order id
    venue_order_id: str
    instrument_id: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: LiquiditySide
    ts: int


@dataclass(frozen=True, slots=True)
class VenueBalance:
    """One asset of the account at the venue."""

    asset: str
    free: Decimal
    locked: Decimal


VenueUpdate = VenueOrder | VenueTrade | tuple[VenueBalance, ...]
"""What the venue's user-data stream sends: an order changed, a fill, the account's balances."""


class VenueError(MelticaError):
    """A venue call failed."""


class VenueRejectedError(VenueError):
    """The venue refused the request. `reason` is one of `REJECT_REASONS`; `detail` is the venue's text."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class VenueThrottledError(VenueError):
    """The venue refused the request for its rate limits (HTTP 429/418): retry after `retry_after` s."""

    def __init__(self, retry_after: float, detail: str) -> None:
        super().__init__(f"throttled for {retry_after:g} s: {detail}")
        self.retry_after = retry_after


class VenueUnavailableError(VenueError):
    """The venue could not be reached or failed (network, 5xx, a dropped stream): try again later.
    Whether a request that failed this way took effect is unknown until it is queried."""


REJECT_REASONS = {
    "insufficient_balance": "the venue account has not enough of the asset",
    "min_notional": "below the venue's minimum notional",
    "price_filter": "price outside the venue's price filter or not on its tick size",
    "lot_size": "quantity outside the venue's lot size or not on its step",
    "duplicate_order": "the venue already has an open order with this client order id",
    "unknown_order": "the venue does not know the order",
    "would_take": "a post-only order would have taken liquidity",
    "unknown_instrument": "the venue does not list the instrument",
    "venue_rejected": "the venue refused it (see the detail)",
}
"""The reasons a venue rejection is mapped to (the report's reason starts with one of them)."""


class ExecutionAdapter(Protocol):
    """A live venue's execution API. Every method raises `VenueRejectedError`,
    `VenueThrottledError` or `VenueUnavailableError`; nothing else escapes."""

    venue: str  # Meltica's venue code, the suffix of its instrument ids (e.g. "BINANCE")

    @property
    def weight_used(self) -> int:
        """The request weight the venue last reported as used in its current window."""
        ...

    async def connect(self) -> None:
        """Check the credentials and load the venue's instruments."""

    async def close(self) -> None:
        """Release connections and sockets."""

    async def instruments(self) -> list[Instrument]:
        """The venue's instruments, with its tick size, lot size and minimum notional."""
        ...

    async def submit(self, order: OrderSpec) -> VenueOrder:
        """Place `order`; its order id travels as the client order id."""
        ...

    async def cancel(self, order_id: str, instrument_id: str) -> VenueOrder:
        """Cancel the order Meltica knows as `order_id`."""
        ...

    async def amend(self, order: OrderSpec, quantity: Decimal, price: Decimal | None) -> VenueOrder:
        """Change a resting order's quantity and/or price (cancel-replace where the venue has no amend).
        The answer is the order as it now rests (it may have a new venue order id)."""
        ...

    async def order(self, order_id: str, instrument_id: str) -> VenueOrder | None:
        """The order Meltica knows as `order_id`, or None when the venue has never seen it."""
        ...

    async def open_orders(self) -> list[VenueOrder]:
        """Every open order of the account (Meltica's and any placed outside it)."""
        ...

    async def trades_since(self, instrument_id: str, after_trade_id: str | None) -> list[VenueTrade]:
        """The account's fills in `instrument_id` after `after_trade_id` (all recent: None), oldest first."""
        ...

    async def balances(self) -> tuple[VenueBalance, ...]:
        """The account's balances."""
        ...

    def updates(self) -> AsyncIterator[VenueUpdate]:
        """The user-data stream. It ends by raising `VenueUnavailableError` when the stream drops;
        updates sent while nobody listened are not replayed (reconcile after reconnecting)."""
        ...
