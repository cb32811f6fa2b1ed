"""Request and response bodies. Decimals travel as JSON strings in one syntax (`numbers`); ids,
lists and free text are bounded, and unknown fields are refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, ValidationInfo, field_validator, model_validator

from meltica.api.numbers import Amount, Positive
from meltica.control.specs import Id, LimitsRequest, Strict
from meltica.domain.values import OrderSide, OrderType, TimeInForce, TriggerType

Qty = Positive
Px = Positive
Offset = Annotated[Amount, Field(ge=0)]
"""A distance from a price: zero or more."""
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
    trailing_offset: Positive | None = Field(
        default=None,
        description="Trailing stops: how far the trigger trails the best price seen, in "
        "`trailing_offset_type` units (a price distance, or basis points below 10000).",
    )
    trailing_offset_type: Literal["PRICE", "BASIS_POINTS"] = "PRICE"
    limit_offset: Offset | None = Field(
        default=None, description="TRAILING_STOP_LIMIT: the limit's distance from the fired trigger."
    )
    activation_price: Px | None = Field(
        default=None,
        description="Trailing stops: the trail starts once the market reaches this price "
        "(above the market for a sell, below it for a buy).",
    )
    display_quantity: Qty | None = Field(
        default=None,
        description="Iceberg: the quantity the venue shows at a time (below `quantity`, a multiple "
        "of the lot size); the rest is shown slice by slice as the shown part fills.",
    )
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: Nanos | None = None
    post_only: StrictBool = False
    reduce_only: StrictBool = False
    client_order_id: Id | None = Field(
        default=None, description="Idempotency key: the same key is the same order."
    )

    # What a new order may not say, though the order it becomes may: a quantity amended to the
    # shown one or below, a trigger on a trailing stop whose activation price was reached.
    @field_validator("display_quantity")
    @classmethod
    def _below_quantity(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        quantity = info.data.get("quantity")
        if value is not None and quantity is not None and value >= quantity:
            raise ValueError("display_quantity must be below the quantity")
        return value

    @field_validator("activation_price")
    @classmethod
    def _no_trigger(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is not None and info.data.get("trigger_price") is not None:
            raise ValueError(
                "a trailing stop with an activation_price trails from there: give no trigger_price"
            )
        return value


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
