"""Request and response bodies. Decimals travel as JSON strings (exact) and are accepted as
strings or numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from meltica.control.specs import Id, Int32, LimitsRequest, Nanos, Px, Strict
from meltica.domain.values import OrderSide, OrderType, TimeInForce, TriggerType

Qty = Annotated[Decimal, Field(gt=0, max_digits=38, decimal_places=18, allow_inf_nan=False)]

__all__ = ["Id", "Int32", "LimitsRequest", "Nanos", "Px", "Qty", "Strict"]


class OrderRequest(Strict):
    account_id: Id
    instrument_id: Id
    side: OrderSide
    type: OrderType = OrderType.LIMIT
    quantity: Qty
    price: Px | None = None
    trigger_price: Px | None = None
    trigger_type: TriggerType = TriggerType.DEFAULT
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: Nanos | None = None
    post_only: bool = False
    reduce_only: bool = False
    client_order_id: Id | None = Field(
        default=None, description="Idempotency key: the same key is the same order."
    )


class BulkRequest(Strict):
    orders: list[OrderRequest] = Field(min_length=1, max_length=100)
    contingency: Literal["NONE", "OCO", "BRACKET"] = Field(
        default="NONE",
        description="OCO: the orders cancel each other; BRACKET: entry, take-profit, stop-loss.",
    )


class CancelAllRequest(Strict):
    account_id: Id
    instrument_id: Id | None = None
    side: OrderSide | None = None


class AmendRequest(Strict):
    quantity: Qty | None = None
    price: Px | None = None
    trigger_price: Px | None = None


class KillSwitchRequest(Strict):
    action: Literal["trip", "reset"]
    account_id: Id | None = None
    reason: str = Field(default="operator", max_length=500)


class Accepted(BaseModel):
    order_id: str
    status: str
    location: str


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None
