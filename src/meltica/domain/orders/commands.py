"""Order commands: what clients (REST, CLI, strategies) ask for. Imperative names."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    order: OrderSpec
    ts: int


@dataclass(frozen=True, slots=True)
class SubmitOrderList:
    """Several orders at once: a bulk submit, or an OCO / OTO (bracket) list."""

    order_list_id: str
    account_id: str
    orders: tuple[OrderSpec, ...]
    ts: int


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: str
    account_id: str
    instrument_id: str
    ts: int


@dataclass(frozen=True, slots=True)
class AmendOrder:
    order_id: str
    account_id: str
    instrument_id: str
    ts: int
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CancelAllOrders:
    account_id: str
    ts: int
    instrument_id: str | None = None
    side: OrderSide | None = None


OrderCommand = SubmitOrder | SubmitOrderList | CancelOrder | AmendOrder | CancelAllOrders
