"""The order as submitted (`OrderSpec`), its status, and its live state (`Order`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from meltica.domain.values import (
    BPS,
    ROUTER_VENUE,
    ZERO,
    ContingencyType,
    OrderSide,
    OrderType,
    TimeInForce,
    TrailingOffsetType,
    TriggerType,
)


class OrderStatus(StrEnum):
    PENDING_NEW = "PENDING_NEW"
    DENIED = "DENIED"
    ACCEPTED = "ACCEPTED"
    SUBMITTED = "SUBMITTED"
    NEW = "NEW"
    REJECTED = "REJECTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    PENDING_REPLACE = "PENDING_REPLACE"
    REPLACED = "REPLACED"
    TRIGGERED = "TRIGGERED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """Everything that defines an order as submitted; mirrors the Avro `OrderSpec`."""

    order_id: str
    client_order_id: str
    account_id: str
    instrument_id: str
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    trigger_type: TriggerType = TriggerType.DEFAULT
    trailing_offset: Decimal | None = None
    trailing_offset_type: TrailingOffsetType = TrailingOffsetType.NONE
    limit_offset: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: int | None = None
    display_quantity: Decimal | None = None
    post_only: bool = False
    reduce_only: bool = False
    contingency_type: ContingencyType = ContingencyType.NONE
    order_list_id: str | None = None
    linked_order_ids: tuple[str, ...] = ()
    parent_order_id: str | None = None
    strategy_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    activation_price: Decimal | None = None
    """Trailing stops: the market price at which the trail starts (None: at once)."""

    @property
    def venue(self) -> str:
        """The venue part of `SYMBOL.VENUE`."""
        return self.instrument_id.rpartition(".")[2]

    def problems(self) -> str | None:
        """What makes this order malformed, if anything."""
        t = self.order_type
        if self.quantity <= ZERO:
            return "quantity must be positive"
        if t.has_limit_price and t is OrderType.LIMIT and (self.price is None or self.price <= ZERO):
            return f"{t} order needs a positive price"
        if t is OrderType.STOP_LIMIT and (self.price is None or self.price <= ZERO):
            return "STOP_LIMIT order needs a positive price"
        if t in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT) and (
            self.trigger_price is None or self.trigger_price <= ZERO
        ):
            return f"{t} order needs a positive trigger_price"
        if t.is_trailing:
            if self.trailing_offset is None or self.trailing_offset <= ZERO:
                return "trailing-stop order needs a positive trailing_offset"
            if self.trailing_offset_type is TrailingOffsetType.NONE:
                return "trailing-stop order needs trailing_offset_type PRICE or BASIS_POINTS"
            if self.trailing_offset_type is TrailingOffsetType.BASIS_POINTS and self.trailing_offset >= BPS:
                return f"trailing_offset in basis points must be below {BPS}"
            if t is OrderType.TRAILING_STOP_LIMIT and self.limit_offset is None:
                return "TRAILING_STOP_LIMIT order needs a limit_offset"
        elif self.trailing_offset is not None or self.limit_offset is not None:
            return "trailing_offset and limit_offset apply to trailing-stop orders"
        if self.activation_price is not None:
            if not t.is_trailing:
                return "activation_price applies to trailing-stop orders"
            if self.activation_price <= ZERO:
                return "activation_price must be positive"
        if t is OrderType.MARKET and self.price is not None:
            return "MARKET order takes no price"
        if self.time_in_force is TimeInForce.GTD and self.expire_time_ns is None:
            return "GTD order needs expire_time_ns"
        if self.display_quantity is not None:
            if not ZERO < self.display_quantity <= self.quantity:
                return "display_quantity must be positive and at most the quantity"
            if not t.has_limit_price:
                return "display_quantity (an iceberg) applies to orders with a limit price"
            if self.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                return "an iceberg rests: it cannot be IOC or FOK"
        if self.post_only and t is not OrderType.LIMIT:
            return "post-only applies to LIMIT orders"
        if self.post_only and self.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            return "post-only orders cannot be IOC or FOK"
        if self.venue == ROUTER_VENUE:
            return self._routing_problem()
        return None

    def _routing_problem(self) -> str | None:
        """What a smart-routed order (at venue SOR) cannot be."""
        if self.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            return "a routed (SOR) order is MARKET or LIMIT"
        if self.time_in_force is TimeInForce.FOK:
            return "a routed (SOR) order cannot be FOK: its children fill at several venues"
        if self.post_only or self.display_quantity is not None:
            return "a routed (SOR) order cannot be post-only or an iceberg"
        if self.parent_order_id is not None or self.contingency_type is not ContingencyType.NONE:
            return "a routed (SOR) order cannot be part of a contingent order list"
        return None


def amend_problem(
    order_type: OrderType,
    filled: Decimal,
    new_quantity: Decimal,
    quantity: Decimal | None,
    price: Decimal | None,
    trigger_price: Decimal | None,
) -> str | None:
    """What makes an amend (None: that term unchanged) of an order meaningless, if anything."""
    if new_quantity <= filled:
        return f"quantity {new_quantity} is not above the filled quantity {filled}"
    if price is not None and not order_type.has_limit_price:
        return f"{order_type} order has no price to amend"
    if trigger_price is not None and not order_type.has_trigger:
        return f"{order_type} order has no trigger to amend"
    if quantity is None and price is None and trigger_price is None:
        return "nothing to amend"
    return None


@dataclass(slots=True)
class Order:
    """An order's current state, built by evolving its events."""

    spec: OrderSpec
    status: OrderStatus
    quantity: Decimal
    price: Decimal | None
    trigger_price: Decimal | None
    expire_time_ns: int | None
    ts_accepted: int
    filled_qty: Decimal = ZERO
    avg_px: Decimal | None = None
    venue_order_id: str | None = None
    trade_ids: set[str] = field(default_factory=set)
    previous_status: OrderStatus | None = None
    triggered: bool = False
    routed: bool = False
    ts_acknowledged: int | None = None
    ts_last_fill: int | None = None
    version: int = 1

    @property
    def order_id(self) -> str:
        return self.spec.order_id

    @property
    def leaves_qty(self) -> Decimal:
        return self.quantity - self.filled_qty

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def at_venue(self) -> bool:
        """Sent to the venue (so cancels and amends go through it)."""
        return self.routed


TERMINAL = frozenset(
    {OrderStatus.DENIED, OrderStatus.REJECTED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
)
