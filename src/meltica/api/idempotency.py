"""Idempotency keys: a `client_order_id` names one order of its account. The same body again is
that order (202, nothing new); another body under the same key is a 409 naming what differs.

What an order was submitted with comes from this process's memory of its recent submissions
(which covers the moment before the projector has seen them) or from the read models: the
`OrderAccepted` event's spec (the order as submitted, whatever amends followed) or, before
that, the `orders` row."""

from __future__ import annotations

import threading
from collections import OrderedDict
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Engine

from meltica.domain.orders.model import OrderSpec
from meltica.projections import queries

FIELDS = {  # request field -> OrderSpec field
    "instrument_id": "instrument_id",
    "side": "side",
    "type": "order_type",
    "quantity": "quantity",
    "price": "price",
    "trigger_price": "trigger_price",
    "trigger_type": "trigger_type",
    "trailing_offset": "trailing_offset",
    "trailing_offset_type": "trailing_offset_type",
    "limit_offset": "limit_offset",
    "activation_price": "activation_price",
    "display_quantity": "display_quantity",
    "time_in_force": "time_in_force",
    "expire_time_ns": "expire_time_ns",
    "post_only": "post_only",
    "reduce_only": "reduce_only",
}
DECIMALS = frozenset(
    {
        "quantity",
        "price",
        "trigger_price",
        "trailing_offset",
        "limit_offset",
        "activation_price",
        "display_quantity",
    }
)
Terms = dict[str, Any]


def _canonical(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DECIMALS:
        return Decimal(str(value))
    return value.value if isinstance(value, Enum) else value


def terms(spec: OrderSpec) -> Terms:
    """What a request said about its order, comparable with what the read models recorded."""
    return {name: _canonical(name, getattr(spec, field)) for name, field in FIELDS.items()}


def recorded(db: Engine, order_id: str) -> Terms | None:
    """What the read models know the order was submitted with, if it exists."""
    found = queries.submitted(db, order_id)
    if found is None:
        return None
    if found.accepted_spec is not None:
        spec = found.accepted_spec
        return {name: _canonical(name, spec.get(field)) for name, field in FIELDS.items()}
    fields = found.row
    return {name: _canonical(name, fields[field]) for name, field in FIELDS.items() if field in fields}


class Keys:
    """The terms of this process's recent submissions by order id (the newest `capacity`)."""

    def __init__(self, db: Engine, capacity: int = 100_000) -> None:
        self.db, self.capacity = db, capacity
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, Terms] = OrderedDict()

    def differences(self, order_id: str, now: Terms) -> list[str]:
        """The fields in which `now` differs from the order already under this id (none if new).
        A new id is claimed for `now` at once: a concurrent request under the same key with
        another body, checked before either order is in the log, is told the difference too."""
        with self._lock:
            before = self._seen.get(order_id)
        if before is None:
            before = recorded(self.db, order_id)
        self.remember(order_id, now if before is None else before)
        with self._lock:
            first = self._seen.get(order_id, now)
        return [name for name, value in now.items() if name in first and first[name] != value]

    def remember(self, order_id: str, submitted: Terms) -> None:
        """Note what the order under `order_id` was submitted with (the first time wins)."""
        with self._lock:
            self._seen.setdefault(order_id, submitted)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
