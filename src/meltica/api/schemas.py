"""Request and response bodies. Decimals travel as JSON strings in one syntax (`numbers`); ids,
lists and free text are bounded, and unknown fields are refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, model_validator

from meltica.api.numbers import Positive
from meltica.control.specs import Id, LimitsRequest, Strict
from meltica.domain.values import OrderSide, OrderType, TimeInForce, TriggerType

Qty = Positive
Px = Positive
Text = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
"""Free text (reasons): bounded, without control characters."""
Count = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
"""A whole number from 1, as a JSON integer (not "5", not 5.0)."""
Nanos = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
"""Integer nanoseconds since the epoch, as a JSON integer."""
MAX_BULK = 100

__all__ = ["Count", "Id", "LimitsBody", "Nanos", "Px", "Qty", "Strict"]


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
    post_only: StrictBool = False
    reduce_only: StrictBool = False
    client_order_id: Id | None = Field(
        default=None, description="Idempotency key: the same key is the same order."
    )


class BulkRequest(Strict):
    orders: list[OrderRequest] = Field(min_length=1, max_length=MAX_BULK)
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
    reason: Text = "operator"


class LimitsBody(LimitsRequest):
    """`PUT /v1/risk/limits`: the configuration file's limits, with the API's decimal syntax and bounds."""

    scope_id: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9._:\-]*$")
    accounts: list[Id] = Field(
        default_factory=list, max_length=1000, description="PORTFOLIO scope: the accounts it groups."
    )
    throttle_rate: Positive | None = None
    price_band: Positive | None = None
    max_order_notional: Positive | None = None
    max_position: Positive | None = None
    max_gross_exposure: Positive | None = None
    max_net_exposure: Positive | None = None
    min_quantity: Positive | None = None
    max_quantity: Positive | None = None
    allowed_instruments: list[Id] | None = Field(default=None, max_length=10_000)
    allowed_order_types: list[OrderType] | None = Field(default=None, max_length=len(OrderType))
    throttle_burst: Count | None = None
    max_open_orders: Count | None = None
    circuit_breaker_breaches: Count | None = None
    circuit_breaker_window_ns: Nanos | None = None

    @model_validator(mode="after")
    def _scope_id(self) -> LimitsBody:
        if (self.scope == "GLOBAL") != (self.scope_id == ""):
            raise ValueError("scope_id names the account, portfolio or instrument; GLOBAL has none")
        return self


class Accepted(BaseModel):
    order_id: str
    status: str
    location: str


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None
