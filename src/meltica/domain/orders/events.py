"""Order events (past tense), venue requests and venue reports. Each mirrors its Avro schema."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.risk.checks import DenyReason
from meltica.domain.values import ExecType, LiquiditySide, OrderSide


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    venue_order_id: str | None
    side: OrderSide
    last_qty: Decimal
    last_px: Decimal
    fee: Decimal
    fee_currency: str
    liquidity_side: LiquiditySide
    ts_fill: int
    reconciled: bool = False  # found by reconciliation with the venue, not reported live


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    order: OrderSpec
    ts: int

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def account_id(self) -> str:
        return self.order.account_id


@dataclass(frozen=True, slots=True)
class _OrderEvent:
    order_id: str
    client_order_id: str
    account_id: str
    instrument_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class OrderDenied(_OrderEvent):
    """Pre-trade risk refused the order (its Avro record carries the reason's value)."""

    reason: DenyReason
    message: str = ""


@dataclass(frozen=True, slots=True)
class OrderSubmitted(_OrderEvent):
    venue: str


@dataclass(frozen=True, slots=True)
class OrderAcknowledged(_OrderEvent):
    venue_order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected(_OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class _FillEvent(_OrderEvent):
    fill: Fill
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal


@dataclass(frozen=True, slots=True)
class OrderPartiallyFilled(_FillEvent):
    """Part of the order traded."""


@dataclass(frozen=True, slots=True)
class OrderFilled(_FillEvent):
    """The order traded in full."""


@dataclass(frozen=True, slots=True)
class OrderPendingCancel(_OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderCanceled(_OrderEvent):
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderCancelRejected(_OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class OrderPendingReplace(_OrderEvent):
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderReplaced(_OrderEvent):
    quantity: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderAmendAccepted(_OrderEvent):
    """Pre-trade risk judged the order as amended and let the amend through (None: unchanged)."""

    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderAmendRejected(_OrderEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class OrderTriggered(_OrderEvent):
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderTriggerUpdated(_OrderEvent):
    """A trailing stop's trigger moved with the market."""

    trigger_price: Decimal


@dataclass(frozen=True, slots=True)
class OrderExpired(_OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderTransitionRejected(_OrderEvent):
    """An input the order's status does not allow: recorded for operators, not applied."""

    from_status: OrderStatus
    attempted: str
    reason: str


# -- venue traffic ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VenueSubmitOrder:
    venue: str
    order: OrderSpec
    ts: int


@dataclass(frozen=True, slots=True)
class VenueCancelOrder:
    venue: str
    order_id: str
    venue_order_id: str | None
    account_id: str
    instrument_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class VenueAmendOrder:
    venue: str
    order_id: str
    venue_order_id: str | None
    account_id: str
    instrument_id: str
    ts: int
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What a venue said about an order (FIX ExecutionReport)."""

    venue: str
    exec_type: ExecType
    order_id: str
    account_id: str
    instrument_id: str
    order_status: OrderStatus
    ts_venue: int
    ts: int
    venue_order_id: str | None = None
    fill: Fill | None = None
    cum_qty: Decimal | None = None
    leaves_qty: Decimal | None = None
    avg_px: Decimal | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    reason: str = ""


OrderEvent = (
    OrderAccepted
    | OrderDenied
    | OrderSubmitted
    | OrderAcknowledged
    | OrderRejected
    | OrderPartiallyFilled
    | OrderFilled
    | OrderPendingCancel
    | OrderCanceled
    | OrderCancelRejected
    | OrderPendingReplace
    | OrderReplaced
    | OrderAmendAccepted
    | OrderAmendRejected
    | OrderTriggered
    | OrderTriggerUpdated
    | OrderExpired
    | OrderTransitionRejected
)
VenueRequest = VenueSubmitOrder | VenueCancelOrder | VenueAmendOrder
OrderOutput = OrderEvent | VenueRequest  # what the order decider emits

ORDER_EVENT_TYPES: tuple[type, ...] = (
    OrderAccepted,
    OrderDenied,
    OrderSubmitted,
    OrderAcknowledged,
    OrderRejected,
    OrderPartiallyFilled,
    OrderFilled,
    OrderPendingCancel,
    OrderCanceled,
    OrderCancelRejected,
    OrderPendingReplace,
    OrderReplaced,
    OrderAmendAccepted,
    OrderAmendRejected,
    OrderTriggered,
    OrderTriggerUpdated,
    OrderExpired,
    OrderTransitionRejected,
)
